package httpapi

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"boxoffice/catalog"
)

// contentTypeJSON is the Content-Type of every response.
const contentTypeJSON = "application/json; charset=utf-8"

// maxQueryBytes bounds the query string: the API's parameters fit in a few dozen bytes,
// and a larger query is a mistake or an attack on the parser.
const maxQueryBytes = 4 << 10

// defaultStoreReads is Config.StoreReads's default: half the connections of the
// smallest default pools (SQLite's 4 readers, PostgreSQL's 4), so that the catalog
// version read every store-path search begins with, quotes and the index refresh
// always find a connection.
const defaultStoreReads = 2

// defaultReadyTimeout bounds each readiness check when Config.ReadyTimeout is zero.
const defaultReadyTimeout = 2 * time.Second

// Catalog is what searches read: the current in-memory index of the searchable
// catalog. *catalog.Searcher implements it.
type Catalog interface {
	// Index returns the current index, or nil before the first load; the API answers
	// 503 until there is one.
	Index() *catalog.Index
}

var _ Catalog = (*catalog.Searcher)(nil)

// Check reports whether a dependency can serve, such as a store ping; a nil error means
// it can. It should return soon after ctx is done.
type Check func(ctx context.Context) error

// BuildInfo identifies the running build; /health shows it. Empty fields are left out.
type BuildInfo struct {
	Version string
	Commit  string
}

// Config is what New needs besides the catalog and the logger.
type Config struct {
	// Checks are the readiness checks by name, run concurrently by /ready. A check
	// named "catalog", reporting whether the index is loaded, is built in; an entry of
	// that name replaces it.
	Checks map[string]Check

	// ReadyTimeout bounds each readiness check; zero means 2s.
	ReadyTimeout time.Duration

	// Build is shown at /health.
	Build BuildInfo

	// Store answers searches while the catalog has no index (not loaded yet, or beyond
	// its memory budget), through the caches. Nil answers them 503 instead.
	Store Store

	// Cache is the second response cache tier (L2), shared by instances, consulted only
	// on the Store path: with an index, a response costs less to build than to fetch.
	// Nil means none.
	Cache Cache

	// CacheTTL is how long cached responses live, in L1 and L2, and the Cache-Control
	// max-age (at most a minute); zero means 5 minutes.
	CacheTTL time.Duration

	// L1MaxBytes bounds the in-process response cache (L1); zero means 64 MiB. A
	// response larger than a sixteenth of it is served uncached.
	L1MaxBytes int64

	// L2Timeout bounds each L2 call, so a slow or unreachable L2 costs searches little;
	// zero means 50ms.
	L2Timeout time.Duration

	// Metrics is the registry the API registers its metrics on and serves at /metrics;
	// nil means a registry of the Handler's own.
	Metrics *prometheus.Registry

	// Pricing serves the pricing routes under /api/v1; nil leaves them out.
	Pricing Pricing

	// Providers serves GET /api/v1/providers, each provider's last sync; nil leaves it
	// out.
	Providers ProviderLog

	// APIKeys are the keys the write endpoints (recalculate, publish-market-event)
	// accept as "Authorization: Bearer <key>". Empty ones are ignored; with none, the
	// write endpoints serve loopback clients only.
	APIKeys []string

	// AllowUnauthenticatedWrites, with no APIKeys, serves the write endpoints to every
	// client instead of loopback ones only (ALLOW_UNAUTHENTICATED_WRITES). It does
	// nothing when keys are configured.
	AllowUnauthenticatedWrites bool

	// RateLimits limit each client's requests by route class (see Handler.allow); zero
	// rates are no limit.
	RateLimits RateLimits

	// SharedRates, when set, makes the rate limits hold across the instances that share
	// it (Redis); Run reports to it. Nil: each process limits on its own.
	SharedRates SharedRates

	// TrustedProxies are the networks of the reverse proxies whose X-Forwarded-For the
	// rate limits read to find the client (see limiter.clientAddr); none: the
	// connection's address is the client's.
	TrustedProxies []netip.Prefix

	// StoreReads bounds the searches that read the store at once (see readWindow);
	// zero means 2.
	StoreReads int

	// CursorKey signs the cursors of paginated searches (HMAC-SHA256), so that a client
	// cannot alter one unnoticed; instances behind one load balancer need the same key
	// to accept each other's cursors. Empty means a random key of the Handler's own:
	// its cursors are good for it alone, and not after a restart.
	CursorKey []byte

	// Timeouts are the deadlines of requests by route class; see Timeouts.
	Timeouts Timeouts

	// MaxInFlight caps the requests being served at once: past it a request gets 503
	// with Retry-After at once, so that the admitted ones keep their latency. The
	// operations routes (/health, /ready, /metrics) are never shed. Zero means no cap.
	MaxInFlight int

	// Status is what GET /api/v1/status reads besides the catalog index: the pricing
	// version and the dead letters. Nil: the document lists them as unavailable.
	Status StatusSource

	// TracerProvider, when set, serves each request in a server span of its own
	// (otelhttp), named after its route ("GET /search"), continuing the caller's trace
	// when the request carries one (the global propagator: W3C traceparent). The
	// operations routes (/health, /ready, /metrics), which probes and scrapers call all
	// day, are not traced. Nil, the default, adds nothing to a request's cost.
	TracerProvider trace.TracerProvider
}

// Handler is the HTTP API. It is safe for concurrent use.
type Handler struct {
	catalog      Catalog
	log          *slog.Logger
	checks       map[string]Check
	readyTimeout time.Duration
	health       []byte // the /health body, encoded once
	spec         []byte // the OpenAPI document as JSON, converted once
	specETag     string
	mux          *http.ServeMux
	buffers      sync.Pool // *searchBuffers
	contentType  []string  // {contentTypeJSON}, shared by responses' headers, never modified

	// The search response caches and HTTP caching.
	store        Store // nil: no searches without an index
	l1           *otter.Cache[searchKey, *response]
	l1MaxEntry   int // bytes of the largest response L1 keeps
	door         doorkeeper
	l2           Cache // nil: none
	l2Timeout    time.Duration
	l2Down       atomic.Bool  // L2 failed last time: its recovery is logged
	lastVersion  atomic.Int64 // the store's catalog version last read, -1 before
	cacheTTL     time.Duration
	cacheControl []string  // {"public, max-age=N"}, shared like contentType
	vary         []string  // {"Accept-Encoding"}, likewise
	gzipEncoding []string  // {"gzip"}, likewise
	gzips        sync.Pool // *gzip.Writer at gzip.BestSpeed
	metrics      cacheMetrics
	requests     *requestMetrics

	pricing     Pricing     // nil: no pricing routes
	providerLog ProviderLog // nil: no GET /api/v1/providers
	apiKeys     [][32]byte  // SHA-256 of each API key; none: loopback clients only, or all with openWrites
	openWrites  bool        // no keys: the write endpoints serve every client

	traced http.Handler // ServeHTTP in a server span; nil without Config.TracerProvider

	limiter      *limiter           // nil: no rate limits
	keyNames     []string           // the API keys' names in SharedRates
	cursors      *cursorCodec       // signs and checks the cursors of paginated searches
	flights      singleflight.Group // store reads of searches, by window
	storeSem     chan struct{}      // a place per store read running
	storeWaiters atomic.Int64       // searches waiting on a store read, for tests

	ready          readyCache   // the last answer of /ready
	status         StatusSource // nil: no pricing version or dead letters in the status
	statusCache    statusCache  // the last answer of /api/v1/status
	metricsHandler http.Handler // /metrics, gathered at most once a second
	now            func() time.Time

	timeouts    [numClasses]time.Duration
	maxInFlight int64        // 0: no cap
	inFlight    atomic.Int64 // requests admitted under maxInFlight and not done
}

// New returns the API over cat, logging to log. It panics if the embedded OpenAPI
// document does not load, a build mistake the tests catch.
//
// Routes: GET /search, GET /api/v1/status (the catalog at a glance, see serveStatus),
// GET /health (liveness), GET /ready (readiness), GET /metrics (Prometheus, from
// cfg.Metrics), GET /openapi.json, the API docs (see DocsHandler) and the console at /
// (see ConsoleHandler). A nil cat gives the operations API of the roles that serve no
// searches (ingest, worker): the same routes without /search, the status and the
// console. With cfg.Pricing, the pricing routes too: POST /api/v1/price, GET
// /api/v1/events/{id}/products and GET /api/v1/tasks/{task_id}, public, and the write
// endpoints POST /api/v1/recalculate and POST /api/v1/publish-market-event, behind
// cfg.APIKeys (see requireKey). The POST routes read JSON only (415 otherwise, see
// requireJSON). With cfg.Providers, GET /api/v1/providers. Unknown paths get 404 and other methods 405, both in the error format; a
// query string over 4 KiB gets 400; a panic in a handler gets 500. Every response has
// X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer; an error is never
// cached (Cache-Control: no-store).
func New(cat Catalog, log *slog.Logger, cfg Config) *Handler {
	spec, etag, err := openAPIJSON(openAPIYAML)
	if err != nil {
		panic(fmt.Sprintf("httpapi: embedded openapi.yaml: %v", err))
	}
	reg := cfg.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	ttl := cmp.Or(cfg.CacheTTL, defaultCacheTTL)
	l1Max := cmp.Or(cfg.L1MaxBytes, defaultL1MaxBytes)
	maxAge := int64(min(ttl, maxClientAge) / time.Second)
	h := &Handler{
		catalog:      cat,
		log:          log,
		checks:       map[string]Check{},
		readyTimeout: cmp.Or(cfg.ReadyTimeout, defaultReadyTimeout),
		health:       healthBody(cfg.Build),
		spec:         spec,
		specETag:     etag,
		mux:          http.NewServeMux(),
		contentType:  []string{contentTypeJSON},
		store:        cfg.Store,
		l1:           newL1(l1Max, ttl),
		l1MaxEntry:   int(l1Max / l1EntryShare),
		door:         newDoorkeeper(),
		l2:           cfg.Cache,
		l2Timeout:    cmp.Or(cfg.L2Timeout, defaultL2Timeout),
		cacheTTL:     ttl,
		cacheControl: []string{"public, max-age=" + strconv.FormatInt(maxAge, 10)},
		vary:         []string{"Accept-Encoding"},
		gzipEncoding: []string{"gzip"},
		metrics:      newCacheMetrics(reg),
		requests:     newRequestMetrics(reg),
		now:          time.Now,
		storeSem:     make(chan struct{}, cmp.Or(max(cfg.StoreReads, 0), defaultStoreReads)),
		timeouts:     cfg.Timeouts.byClass(),
		maxInFlight:  int64(max(cfg.MaxInFlight, 0)),
		status:       cfg.Status,
	}
	h.lastVersion.Store(-1)
	h.cursors = newCursorCodec(cursorKey(cfg.CursorKey))
	h.apiKeys = hashKeys(cfg.APIKeys)
	h.keyNames = keyNames(h.apiKeys)
	h.limiter = newLimiter(cfg.RateLimits, cfg.TrustedProxies, cfg.SharedRates, log)
	h.gzips.New = newGzipWriter
	if cat != nil {
		h.checks["catalog"] = func(context.Context) error { return catalogLoaded(cat) }
	}
	for name, check := range cfg.Checks {
		h.checks[name] = check
	}
	h.buffers.New = newBuffers
	if cat != nil {
		h.mux.HandleFunc("GET /search", h.search)
		h.mux.HandleFunc("GET /api/v1/status", h.serveStatus)
		console := ConsoleHandler()
		h.mux.Handle("GET /{$}", console)
		h.mux.Handle("GET "+consoleAssetsPrefix, console)
	}
	h.mux.HandleFunc("GET /health", h.serveHealth)
	h.mux.HandleFunc("GET /ready", h.serveReady)
	h.mux.HandleFunc("GET /openapi.json", h.serveOpenAPI)
	h.metricsHandler = promhttp.HandlerFor(&cachedGatherer{g: reg, now: func() time.Time { return h.now() }}, promhttp.HandlerOpts{})
	h.mux.Handle("GET /metrics", h.metricsHandler)
	docs := DocsHandler()
	h.mux.Handle("GET /docs", docs)
	h.mux.Handle("GET /docs/{$}", docs)
	h.mux.Handle("GET /redoc", docs)
	h.mux.Handle("GET /docs/assets/", docs)
	if cfg.Pricing != nil {
		h.pricing = cfg.Pricing
		h.openWrites = cfg.AllowUnauthenticatedWrites
		h.mux.HandleFunc("POST /api/v1/price", h.requireJSON(h.withDeadline(classQuote, h.price)))
		h.mux.HandleFunc("GET /api/v1/events/{id}/products", h.withDeadline(classRead, h.eventProducts))
		h.mux.HandleFunc("GET /api/v1/tasks/{task_id}", h.withDeadline(classRead, h.task))
		h.mux.HandleFunc("POST /api/v1/recalculate", h.requireKey(h.requireJSON(h.withDeadline(classWrite, h.recalculate))))
		h.mux.HandleFunc("POST /api/v1/publish-market-event", h.requireKey(h.requireJSON(h.withDeadline(classWrite, h.publishMarketEvent))))
	}
	if cfg.Providers != nil {
		h.providerLog = cfg.Providers
		h.mux.HandleFunc("GET /api/v1/providers", h.withDeadline(classRead, h.providers))
	}
	if cfg.TracerProvider != nil {
		h.traced = otelhttp.NewMiddleware("boxoffice",
			otelhttp.WithTracerProvider(cfg.TracerProvider),
			otelhttp.WithMeterProvider(noop.NewMeterProvider()), // metrics are Prometheus's (metrics.go)
			otelhttp.WithFilter(tracedPath),
		)(http.HandlerFunc(h.serveTraced))
	}
	return h
}

// cursorKey returns key, or a random key when it is empty.
func cursorKey(key []byte) []byte {
	if len(key) > 0 {
		return key
	}
	return []byte(rand.Text()) // 128 bits of crypto/rand
}

// Run reports the requests admitted to Config.SharedRates until ctx is done, so that the
// rate limits hold across instances; without SharedRates or limits it only waits. It
// returns nil.
func (h *Handler) Run(ctx context.Context) error {
	if h.limiter != nil && h.limiter.shared != nil {
		h.limiter.run(ctx, h.keyNames)
		return nil
	}
	<-ctx.Done()
	return nil
}

// ServeHTTP routes a request, after the checks every request gets: a panic becomes a
// 500, an oversized query a 400, and an unknown route a 404 or 405 in the error format.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.traced != nil {
		h.traced.ServeHTTP(w, r)
		return
	}
	_, pattern := h.mux.Handler(r)
	h.instrument(w, r, pattern, h.serve) //nolint:contextcheck // r carries the request's context
}

// serveTraced is ServeHTTP inside the request's server span: it names the span after
// the route, as the semantic conventions ask ("POST /api/v1/recalculate").
func (h *Handler) serveTraced(w http.ResponseWriter, r *http.Request) {
	_, pattern := h.mux.Handler(r)
	if span := trace.SpanFromContext(r.Context()); pattern != "" && span.IsRecording() {
		route := routeOf(pattern)
		span.SetName(methodOf(r.Method) + " " + route)
		span.SetAttributes(attribute.String("http.route", route))
	}
	h.instrument(w, r, pattern, h.serve) //nolint:contextcheck // r carries the request's context
}

// tracedPath reports whether a request gets a span: all but the operations routes.
func tracedPath(r *http.Request) bool {
	switch r.URL.Path {
	case "/health", "/ready", "/metrics":
		return false
	}
	return true
}

// serve answers r, whose route is pattern ("" when none matches).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, pattern string) {
	defer h.recoverPanic(w, r)
	setSecurityHeaders(w.Header(), r)
	c := classOf(pattern)
	if h.limiter != nil && !h.allow(w, r, c) {
		return
	}
	release, ok := h.shed(c)
	if !ok {
		h.writeError(w, r, errOverloaded)
		return
	}
	if release != nil {
		defer release()
	}
	if n := len(r.URL.RawQuery); n > maxQueryBytes {
		h.writeError(w, r, badRequest(fmt.Errorf("query string: %d bytes, more than the %d accepted", n, maxQueryBytes)))
		return
	}
	if pattern == "" {
		h.unmatched(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}
