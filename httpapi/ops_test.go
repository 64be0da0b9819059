package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// countingCollector counts how often it is collected.
type countingCollector struct {
	desc *prometheus.Desc
	n    atomic.Int64
}

func (c *countingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c *countingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(c.n.Add(1)))
}

// TestOpsAnswersAreAtMostASecondOld checks that probes and scrapes within a second share
// one run of the checks and one collection, concurrent ones included, and that the
// next second runs them again.
func TestOpsAnswersAreAtMostASecondOld(t *testing.T) {
	var checks atomic.Int64
	reg := prometheus.NewRegistry()
	coll := &countingCollector{desc: prometheus.NewDesc("test_collections", "Collections.", nil, nil)}
	reg.MustRegister(coll)
	h := New(nil, slog.New(slog.DiscardHandler), Config{Metrics: reg, Checks: map[string]Check{
		"slow": func(context.Context) error { checks.Add(1); time.Sleep(10 * time.Millisecond); return nil },
	}})
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	h.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if rec := getFrom(h, "/ready", "192.0.2.1:1"); rec.Code != http.StatusOK {
				t.Errorf("GET /ready = %d", rec.Code)
			}
			if rec := getFrom(h, "/metrics", "192.0.2.1:1"); !strings.Contains(rec.Body.String(), "test_collections 1") {
				t.Errorf("GET /metrics within the first second:\n%s", rec.Body)
			}
		})
	}
	wg.Wait()
	if checks.Load() != 1 || coll.n.Load() != 1 {
		t.Errorf("20 probes and scrapes within a second ran the checks %d times and collected %d times, want 1 and 1", checks.Load(), coll.n.Load())
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	getFrom(h, "/ready", "192.0.2.1:1")
	if rec := getFrom(h, "/metrics", "192.0.2.1:1"); !strings.Contains(rec.Body.String(), "test_collections 2") {
		t.Errorf("GET /metrics a second later:\n%s", rec.Body)
	}
	if checks.Load() != 2 {
		t.Errorf("a probe a second later ran the checks %d times in all, want 2", checks.Load())
	}
}

func TestOpsHandler(t *testing.T) {
	h := New(nil, slog.New(slog.DiscardHandler), Config{RateLimits: RateLimits{Read: Rate{PerSecond: 1, Burst: 1}}})
	ops := h.OpsHandler()
	tests := []struct {
		target   string
		want     int
		contains string
	}{
		{"/health", http.StatusOK, "healthy"},
		{"/ready", http.StatusOK, `"status":"ready"`},
		{"/metrics", http.StatusOK, "boxoffice_http_requests_in_flight"},
		{"/debug/pprof/", http.StatusOK, "goroutine"},
		{"/debug/pprof/goroutine?debug=1", http.StatusOK, "goroutine profile"},
		{"/debug/pprof/cmdline", http.StatusOK, ""},
		{"/search", http.StatusNotFound, ""},
		{"/api/v1/tasks/x", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		for range 2 { // twice: the API's rate limits do not apply here
			rec := getFrom(ops, tt.target, "192.0.2.1:1")
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.contains) {
				t.Errorf("GET %s on the ops listener = %d, want %d with %q", tt.target, rec.Code, tt.want, tt.contains)
			}
			if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s: no nosniff", tt.target)
			}
		}
	}
	// The API itself serves no profiler.
	if rec := getFrom(h, "/debug/pprof/", "192.0.2.1:1"); rec.Code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on the API = %d, want 404", rec.Code)
	}
}
