package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"boxoffice/catalog"
)

// tracedHandler returns a Handler over plans whose requests are spans of a provider
// recording into the returned recorder.
func tracedHandler(t testing.TB, plans map[string]catalog.Plan) (*Handler, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	list := make([]catalog.Plan, 0, len(plans))
	for _, p := range plans {
		list = append(list, p)
	}
	h := New(fixedCatalog{ix: catalog.NewIndex(1, list, EncodeEvent)}, slog.New(slog.DiscardHandler),
		Config{TracerProvider: tp})
	return h, rec
}

// TestTracedRequests checks the server spans of a traced Handler: named after the route,
// with http.route and the status, continuing the caller's trace from traceparent; none
// for the operations routes; a bare method name for a path no route matches.
func TestTracedRequests(t *testing.T) {
	prop := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prop) })
	h, rec := tracedHandler(t, testPlans(t))

	req := httptest.NewRequest(http.MethodGet, "/search?starts_at=2021-06-30", nil)
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /search = %d, want 200", w.Code)
	}
	for _, target := range []string{"/health", "/ready", "/metrics", "/nowhere"} {
		serve(h, http.MethodGet, target)
	}

	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2 (/search and /nowhere): %v", len(spans), names(spans))
	}
	search, unmatched := spans[0], spans[1]
	if search.Name() != "GET /search" || search.SpanKind() != trace.SpanKindServer {
		t.Errorf("search span %q (%v), want \"GET /search\" (server)", search.Name(), search.SpanKind())
	}
	if got := search.Parent(); got.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || got.SpanID().String() != "00f067aa0ba902b7" || !got.IsRemote() {
		t.Errorf("search span parent = %v, want the caller's span from traceparent", got)
	}
	want := map[string]string{"http.route": "/search", "http.response.status_code": "200", "http.request.method": "GET"}
	for k, v := range want {
		if got := spanAttr(search, k); got != v {
			t.Errorf("search span %s = %q, want %q", k, got, v)
		}
	}
	if unmatched.Name() != "GET" || spanAttr(unmatched, "http.route") != "" || spanAttr(unmatched, "http.response.status_code") != "404" {
		t.Errorf("unmatched span %q with attributes %v, want \"GET\", no route, status 404", unmatched.Name(), unmatched.Attributes())
	}
}

// TestUntracedByDefault checks that a Handler without a TracerProvider starts no span,
// whatever the global provider.
func TestUntracedByDefault(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	h := newTestHandler(t, testPlans(t))
	if w := serve(h, http.MethodGet, "/search"); w.Code != http.StatusOK {
		t.Fatalf("GET /search = %d", w.Code)
	}
	if spans := rec.Ended(); len(spans) != 0 {
		t.Errorf("untraced Handler made spans %v", names(spans))
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name())
	}
	return n
}

func spanAttr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// BenchmarkSearchTraced is BenchmarkSearch's narrow window with tracing on: every
// request sampled and recorded, the spans dropped rather than exported. Tracing off is
// BenchmarkSearch itself.
func BenchmarkSearchTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider() // samples every request; no processor exports
	defer tp.Shutdown(context.Background())
	ix := catalog.NewIndex(1, benchPlans(b, 10_000), EncodeEvent)
	h := New(fixedCatalog{ix: ix}, slog.New(slog.DiscardHandler), Config{TracerProvider: tp})
	benchSearch(b, h, "starts_at=2021-06-01T10:00:00Z&ends_at=2021-06-01T16:00:00Z")
}
