package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// requestMetrics are the HTTP metrics: requests and their duration by route (the
// mux's pattern without its method, never the raw path), method and status, and
// requests in flight.
type requestMetrics struct {
	inFlight prometheus.Gauge
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	series   sync.Map // seriesKey → *series, so the hot path skips the label hashing
	writers  sync.Pool
}

type seriesKey struct {
	route, method string
	status        int
}

type series struct {
	total    prometheus.Counter
	duration prometheus.Observer
}

// durationBuckets run from 100 µs to 10 s, with 5 ms and 50 ms present: the read path
// answers in microseconds, and alerts watch p99 against 50 ms.
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10}

func newRequestMetrics(reg *prometheus.Registry) *requestMetrics {
	m := &requestMetrics{
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "boxoffice_http_requests_in_flight", Help: "HTTP requests being served.",
		}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boxoffice_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "boxoffice_http_request_duration_seconds", Help: "HTTP request duration by route, method and status.",
			Buckets: durationBuckets,
		}, []string{"route", "method", "status"}),
	}
	m.inFlight = register(reg, m.inFlight)
	m.total = register(reg, m.total)
	m.duration = register(reg, m.duration)
	m.writers.New = func() any { return &statusWriter{} }
	return m
}

// register registers c, or returns the collector already registered under its name: one
// registry may serve several Handlers of a process.
func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
			return are.ExistingCollector.(C)
		}
		panic(err)
	}
	return c
}

// routeOf returns the route label of a mux pattern: "GET /search" → "/search".
func routeOf(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}

// methodOf bounds the method label to the methods HTTP defines.
func methodOf(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

func (m *requestMetrics) observe(route, method string, status int, d time.Duration) {
	k := seriesKey{route, method, status}
	s, ok := m.series.Load(k)
	if !ok {
		code := strconv.Itoa(status)
		s, _ = m.series.LoadOrStore(k, &series{
			total:    m.total.WithLabelValues(route, method, code),
			duration: m.duration.WithLabelValues(route, method, code),
		})
	}
	ss := s.(*series)
	ss.total.Inc()
	ss.duration.Observe(d.Seconds())
}

// statusWriter records the status a handler writes.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument serves r through next, counting and timing it under pattern; at debug
// level it logs the request (request logs stay off the hot path otherwise).
func (h *Handler) instrument(w http.ResponseWriter, r *http.Request, pattern string, next func(http.ResponseWriter, *http.Request, string)) {
	m := h.requests
	m.inFlight.Inc()
	start := time.Now()
	sw := m.writers.Get().(*statusWriter)
	sw.ResponseWriter, sw.status = w, 0
	defer func() {
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		sw.ResponseWriter = nil
		m.writers.Put(sw)
		d := time.Since(start)
		m.inFlight.Dec()
		route := routeOf(pattern)
		m.observe(route, methodOf(r.Method), status, d)
		if h.log.Enabled(r.Context(), slog.LevelDebug) {
			h.log.LogAttrs(r.Context(), slog.LevelDebug, "request", slog.String("method", r.Method),
				slog.String("route", route), slog.String("path", r.URL.Path), slog.Int("status", status),
				slog.Duration("duration", d))
		}
	}()
	next(sw, r, pattern)
}
