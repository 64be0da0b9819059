// Package redis implements boxoffice's ports on Redis: the distributed lock of the task
// and ingest packages (Locker), the announcements of new catalog versions between
// processes (Notifier, a catalog.Notifier), the API's shared search response cache
// (Cache, the second tier under the in-process one), price quotes (PriceCache) and the
// market events channel (Bus), over one connection pool (Client). Each passes its
// port's contract suite, as the in-process adapters of package memory do.
//
// Concepts:
//
//   - A lock is a key, "<prefix>:lock:<name>" (the recalculation's is
//     "boxoffice:lock:pricing:recalculate"), holding a random token with an expiry, set
//     only if the key is absent. Only the owner of the token may extend or delete it, each check-and-act in
//     one Lua script, so a lock that expired and passed to another owner is never
//     refreshed or released by the old one.
//   - A catalog version announcement is a message on the Pub/Sub channel
//     "<prefix>:catalog:version" whose payload is the version in decimal, so an operator
//     can send one with `redis-cli publish boxoffice:catalog:version 42`. Pub/Sub is
//     fire and forget: a process that is not subscribed when a version is published,
//     because it starts later or is reconnecting, never receives it. Announcements only
//     make readers refresh sooner; readers still poll the store's catalog version.
//   - Market events are published on a Pub/Sub channel of their own (MARKET_EVENTS_CHANNEL,
//     "market_events" by default), as other services expect it; like announcements,
//     they only wake the listener sooner: the events themselves are in the store.
//   - A price quote lookup is one MGET of the entry and the current pricing version.
//     Concurrent lookups share pipelines (lookups): one write and one read for all
//     those that queued meanwhile, each caller bounded by its own deadline.
//
// Every key and channel lives under a prefix ("boxoffice" in production, a unique one
// per test), so several deployments or tests can share one Redis.
package redis
