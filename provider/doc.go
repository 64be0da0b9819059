// Package provider reads the catalogs that providers publish: streaming parsers for
// their document formats behind one port (Parser), and an HTTP client that implements
// ingest.Source on top of them.
//
// # Formats
//
// Three formats are known, by name (Formats): planList, the provider's current XML;
// eventList, its legacy XML; and json, a JSON mirror of planList (ParseJSON,
// docs/PROVIDER.md). A Client reads the format it was configured with (WithFormat), or
// detects each response's (Detect): the first byte of the document past white space,
// '<' or '{', and the Content-Type when that byte says nothing. Every format gives the
// same catalog.Plan values for the same content and follows the rules below; a new
// format is one more Parser and a line in the tables of format.go, nothing past this
// package changes.
//
// The current format (2024 on) nests plans in base plans:
//
//	<planList version="1.0">
//	  <output>
//	    <base_plan base_plan_id="291" sell_mode="online" title="Camela en concierto" organizer_company_id="1">
//	      <plan plan_id="291" plan_start_date="2021-06-30T21:00:00" plan_end_date="2021-06-30T22:00:00"
//	            sell_from="2020-07-01T00:00:00" sell_to="2021-06-30T20:00:00" sold_out="false">
//	        <zone zone_id="40" capacity="243" price="20.00" name="Platea" numbered="true"/>
//
// The legacy format (2021-2023) is the same document with other names: the root is
// eventList, base_plan is base_event (base_event_id), and plan is event (event_id,
// event_start_date, event_end_date). Parse tells them apart by the root element and
// gives the same catalog.Plan values for both.
//
// # Parsing rules
//
//   - Streaming: Parse walks the tokens of a hand-written scanner (scan.go) and holds
//     one plan's zones at a time, so its memory does not grow with the document. The
//     scanner reads XML as encoding/xml's Decoder.RawToken does (strict, with the HTML
//     entities): it accepts and rejects the same documents with the same messages,
//     which FuzzParse checks against the parser on encoding/xml kept in the tests, at
//     several times its speed (BenchmarkParse beside BenchmarkParseReference). Limits
//     keep a hostile body from changing that: a token (a tag with its attributes, a run of
//     text) is at most 256 KiB and elements nest at most 64 deep, or the document is
//     malformed; an attribute the parser reads is at most 4 KiB and a plan has at most
//     10 000 zones, or that plan is skipped.
//   - Malformed documents: one that is not well-formed XML (truncated, mismatched tags,
//     an unknown entity, a repeated attribute, text or a second element after the
//     root) or whose root is neither planList nor eventList makes Parse return an
//     error wrapping ingest.ErrMalformed with the line, such as
//     `malformed provider document: line 12: element <plan> closed by </base_plan>`.
//     Plans emitted before that point were emitted: the caller discards the sync.
//   - Broken readers: when the reader itself fails (a reset connection, a body cut
//     short with a known length, a timeout) Parse returns that error, which is not
//     ErrMalformed: a retry may well succeed. Only a clean end of input in the middle
//     of the document is a truncated, malformed document.
//   - Bad plans: a plan with bad data is skipped and counted, never fatal. Required
//     attributes are base_plan_id, sell_mode ("online" or "offline") and title on the
//     base plan; plan_id, the start and the end on the plan; zone_id, capacity and
//     price on each zone. Optional ones are organizer_company_id, sell_from, sell_to,
//     sold_out and numbered (false when absent) and name. An empty attribute counts as
//     absent; an optional attribute that is present must still be valid. Bad data is a
//     missing required attribute, an impossible date (the provider's 2021-09-31), a
//     price that catalog.ParseMoney rejects, a capacity that is not an integer, a
//     boolean other than true, false, 1 or 0, a negative price or capacity, or an end
//     before the start. A bad base plan skips each of its plans. Stats keeps the
//     first 20 reasons, such as
//     `plan 444/1642: plan_start_date: parsing time "2021-09-31T20:00:00": day out of range`.
//   - Times are the provider's wall clock, 2006-01-02T15:04:05 without a zone, kept as
//     UTC instants with the same wall clock.
//   - Identity: plan ids repeat across base plans, so a plan's ID is
//     catalog.NewID(provider, base plan id, plan id). Zone ids repeat inside a plan
//     (a numbered and an unnumbered part of one area): every zone is kept, in document
//     order.
//   - Titles and names may use HTML entities (&aacute;, &amp;, &#233;): they are
//     decoded.
//   - Forward compatible: unknown elements, with everything inside them, and unknown
//     attributes are ignored.
//
// # Fetching
//
// Client.Fetch makes one GET (the syncer retries), conditional on the validators of
// the previous full response, and streams the body into Parse. Its timeout works like
// Python httpx's: it bounds connecting and waiting for the response headers, and then
// each pause while reading the body, not the whole download, so a large healthy body
// may take longer than the timeout while a stalled one is cut. 4xx answers other than
// 408 and 429 are permanent errors; 408, 429, 5xx and network errors are transient.
package provider
