// Package httpapi is boxoffice's HTTP API on net/http: the routes, their handlers, the
// error format and the OpenAPI document.
//
// Search never touches a database. A Catalog (in production a *catalog.Searcher) keeps
// an in-memory catalog.Index that holds each plan's JSON object, encoded once
// per change of the plan by EncodeEvent. A search parses the window (ParseWindow),
// takes the current index, and concatenates the matching documents into
// {"data":{"events":[…]},"error":null} through pooled buffers, with an exact
// Content-Length and no reflection.
//
// Responses are cached whole in L1, an in-process cache bounded by bytes and keyed by
// the index's catalog version and the window, with their gzipped form and an ETag
// that names both, from their second use (see doorkeeper; a first use is copied from
// the index): a new version misses, so nothing is invalidated, and If-None-Match
// gets a 304 without a lookup. Without an index (before the first load) searches read
// a Store through L1 and a shared Cache (L2, Redis), the version read before the
// plans. boxoffice_search_cache_requests_total{tier,result} counts hits and misses per
// tier at /metrics.
//
// Errors are translated once, at the boundary, by writeError: bad input is a 400
// bad_request, an unknown route a 404 not_found, a wrong method a 405
// method_not_allowed, a catalog not loaded yet a 503 unavailable, anything else a 500
// internal_error whose detail is logged, never shown. The body is always
// {"data":null,"error":{"code":"…","message":"…"}}.
//
// With Config.TracerProvider, each request but the operations routes is a server span
// (otelhttp) named after its route; without one, the handler has no tracing layer.
//
// openapi.yaml, embedded and served as /openapi.json, is the provider-search spec we
// were given, extended, never broken: every path, schema and field of it is kept
// (TestSpecExtendsOriginal), only descriptions are extended and its mock server is
// replaced by this one. The contract test checks the handlers against it.
package httpapi
