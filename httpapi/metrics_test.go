package httpapi

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRequestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	plans := testPlans(t)
	cat := newTestHandler(t, plans).catalog
	h := New(cat, slog.New(slog.DiscardHandler), Config{Metrics: reg})
	serve(h, http.MethodGet, "/search")
	serve(h, http.MethodGet, "/search?starts_at=2021-06-30")
	serve(h, http.MethodGet, "/search?starts_at=nope")
	serve(h, http.MethodGet, "/no/such/path/123")
	serve(h, http.MethodGet, "/no/such/path/456")
	serve(h, "BREW", "/search")
	panicky := New(panickyCatalog{}, slog.New(slog.DiscardHandler), Config{Metrics: reg})
	serve(panicky, http.MethodGet, "/search")

	want := `
# HELP boxoffice_http_requests_total HTTP requests by route, method and status.
# TYPE boxoffice_http_requests_total counter
boxoffice_http_requests_total{method="GET",route="/search",status="200"} 2
boxoffice_http_requests_total{method="GET",route="/search",status="400"} 1
boxoffice_http_requests_total{method="GET",route="/search",status="500"} 1
boxoffice_http_requests_total{method="GET",route="unmatched",status="404"} 2
boxoffice_http_requests_total{method="other",route="unmatched",status="405"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "boxoffice_http_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(h.requests.duration); n != 5 {
		t.Errorf("%d duration series, want 5 (one per route, method and status)", n)
	}
	if v := testutil.ToFloat64(h.requests.inFlight); v != 0 {
		t.Errorf("in flight = %v after every request ended, want 0", v)
	}
	body := serve(h, http.MethodGet, "/metrics").Body.String()
	if !strings.Contains(body, `boxoffice_http_request_duration_seconds_bucket{method="GET",route="/search",status="200",le="0.05"} `) {
		t.Errorf("/metrics lacks the 50 ms bucket of /search:\n%s", body)
	}
}
