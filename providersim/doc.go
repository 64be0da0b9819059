// Package providersim simulates the provider that boxoffice integrates: an HTTP
// server of planList documents (or eventList, or JSON: Config.Format) at GET /api/events, for `boxoffice provider-sim`, for
// the embedded mode (which syncs from it when EXTERNAL_API_URL is unset) and for tests.
// Config.Feeds adds more providers, each in its own format at its own path
// (/acme/api/events), so that one simulator stands for several providers at once.
//
// It has three modes (Config.Mode):
//
//   - Rotate serves the provider's three samples in turn, byte for byte: 1, 2, 3, 1, …
//     Samples 2 and 3 are derived from the legacy eventList format (samples/README.md).
//   - Synthetic serves a Catalog of any size generated from a seed, streamed with
//     provider.Writer in constant memory, which churns from call to call: plans vanish
//     and come back, prices, times and sell modes change, and a few dates do not exist.
//     The Catalog tells what any call served, to check what ingest made of it.
//   - Sequence serves a script such as "1,2,malformed,500,slow,3", one step per call,
//     the last step repeating (see ParseSequence).
//
// Faults come on top of any mode, chosen per call from the seed and the call number:
// errors (500 or 503), malformed and truncated documents, hangs, and added latency.
// Server.Step tells what any call gets, so tests can predict every answer.
//
// HTTP: documents are application/xml (application/json in JSON) with a strong ETag; a conditional GET whose
// If-None-Match lists the ETag of what the call would serve gets 304 Not Modified.
// Each answer to /api/events carries its call number in the X-Simulator-Call header.
// Other paths get 404 and other methods 405.
package providersim
