package httpapi

import (
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// cachedGatherer gathers the metrics of g at most once per opsMaxAge: scrapes within
// that share one collection, so scraping hard does not multiply the work of the
// collectors (pool statistics, queue depths asked of the broker). The families it
// returns are shared by those scrapes, which only read them.
type cachedGatherer struct {
	g   prometheus.Gatherer
	now func() time.Time

	mu  sync.Mutex // guards the fields below; held while a collection runs
	at  time.Time
	mfs []*dto.MetricFamily
	err error
}

func (c *cachedGatherer) Gather() ([]*dto.MetricFamily, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mfs == nil && c.err == nil || c.now().Sub(c.at) >= opsMaxAge {
		c.mfs, c.err = c.g.Gather()
		c.at = c.now()
	}
	return c.mfs, c.err
}

// OpsHandler serves the operations endpoints for a listener of their own (OPS_ADDR):
// GET /health, /ready and /metrics, as on the API, and Go's profiler under
// /debug/pprof/. It has no rate limits, load shedding or deadlines: it is meant for a
// private network, where the profiler, which can slow the process while it profiles,
// belongs.
func (h *Handler) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", h.serveHealth)
	mux.HandleFunc("GET /ready", h.serveReady)
	mux.Handle("GET /metrics", h.metricsHandler)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index) // the named profiles: heap, goroutine, allocs…
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header(), r)
		mux.ServeHTTP(w, r)
	})
}
