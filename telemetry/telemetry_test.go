package telemetry_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"boxoffice/telemetry"
	"boxoffice/telemetry/telemetrytest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// restoreGlobals puts back the global tracer provider and propagator when the test ends.
func restoreGlobals(t *testing.T) {
	tp, prop := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(prop)
	})
}

// TestSetupOff checks that without an endpoint, or with tracing switched off, Setup
// installs no SDK: spans do not record and nothing is exported. The propagator is
// installed all the same.
func TestSetupOff(t *testing.T) {
	restoreGlobals(t)
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"no variables", nil},
		{"SDK disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"}},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"}},
		{"service name alone", map[string]string{"OTEL_SERVICE_NAME": "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tracing, err := telemetry.Setup(t.Context(), "boxoffice-test", "dev", env(tt.env), discard())
			if err != nil {
				t.Fatalf("Setup() = %v", err)
			}
			if tp := tracing.TracerProvider(); tp != nil {
				t.Errorf("TracerProvider() = %T, want nil", tp)
			}
			if tp, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
				t.Errorf("global tracer provider = %T, want no SDK", tp)
			}
			_, span := otel.Tracer("test").Start(t.Context(), "work")
			if span.IsRecording() || span.SpanContext().IsValid() {
				t.Errorf("a span started without tracing records (%v) or has a context (%v)", span.IsRecording(), span.SpanContext())
			}
			span.End()
			if fields := otel.GetTextMapPropagator().Fields(); !strings.Contains(strings.Join(fields, ","), "traceparent") {
				t.Errorf("propagator fields = %v, want traceparent", fields)
			}
			if err := tracing.Shutdown(t.Context()); err != nil {
				t.Errorf("Shutdown() = %v", err)
			}
		})
	}
}

// TestSetupRejects checks that settings boxoffice cannot honour stop start-up, naming
// the variable.
func TestSetupRejects(t *testing.T) {
	restoreGlobals(t)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"gRPC", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"traces JSON", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{"zipkin", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"},
		{"no scheme", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"no host", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http:///v1/traces"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tracing, err := telemetry.Setup(t.Context(), "boxoffice-test", "dev", env(tt.env), discard())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Setup() = %v, want an error naming %s", err, tt.want)
			}
			if tp := tracing.TracerProvider(); tp != nil {
				t.Errorf("Setup() installed %T despite the error", tp)
			}
		})
	}
}

// TestSetupExports checks that with an endpoint Setup installs a provider that exports
// to it, at <endpoint>/v1/traces or at the traces endpoint as given, with the service
// name of the role unless OTEL_SERVICE_NAME overrides it. Shutdown flushes the spans.
func TestSetupExports(t *testing.T) {
	restoreGlobals(t)
	tests := []struct {
		name        string
		variable    string
		suffix      string
		serviceName string
		compression string
		wantService string
	}{
		{"endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", "/", "", "", "boxoffice-test"},
		{"traces endpoint", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/v1/traces", "", "", "boxoffice-test"},
		{"service name", "OTEL_EXPORTER_OTLP_ENDPOINT", "", "checkout", "", "checkout"},
		{"gzip", "OTEL_EXPORTER_OTLP_ENDPOINT", "", "", "gzip", "boxoffice-test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recv := telemetrytest.NewReceiver(t)
			// Read by the SDK from the process environment, as OpenTelemetry specifies.
			t.Setenv("OTEL_SERVICE_NAME", tt.serviceName)
			t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", tt.compression)
			tracing, err := telemetry.Setup(t.Context(), "boxoffice-test", "v1.2.3",
				env(map[string]string{tt.variable: recv.URL() + tt.suffix}), discard())
			if err != nil {
				t.Fatalf("Setup() = %v", err)
			}
			if tracing.TracerProvider() == nil || otel.GetTracerProvider() != tracing.TracerProvider() {
				t.Fatalf("TracerProvider() = %v, global %v: want the same SDK provider", tracing.TracerProvider(), otel.GetTracerProvider())
			}
			ctx, parent := otel.Tracer("test").Start(t.Context(), "parent")
			_, child := otel.Tracer("test").Start(ctx, "child", trace.WithSpanKind(trace.SpanKindClient))
			child.End()
			parent.End()
			if err := tracing.Shutdown(t.Context()); err != nil {
				t.Fatalf("Shutdown() = %v", err)
			}
			if n := recv.Requests(tt.compression); n == 0 {
				t.Errorf("no export request with Content-Encoding %q", tt.compression)
			}
			spans := recv.Spans()
			if len(spans) != 2 {
				t.Fatalf("received %d spans, want 2: %v", len(spans), spans)
			}
			byName := map[string]telemetrytest.Span{}
			for _, s := range spans {
				byName[s.Name] = s
				if s.Service != tt.wantService {
					t.Errorf("span %s: service.name %q, want %q", s, s.Service, tt.wantService)
				}
			}
			p, c := byName["parent"], byName["child"]
			if p.ParentID != "" || c.ParentID != p.SpanID || c.TraceID != p.TraceID || c.Kind != trace.SpanKindClient {
				t.Errorf("received parent %s and child %s; want the child a client span under the root parent", p, c)
			}
			if p.TraceID != parent.SpanContext().TraceID().String() {
				t.Errorf("trace id %s, want %s", p.TraceID, parent.SpanContext().TraceID())
			}
		})
	}
}

// TestLogHandler checks that records logged with a span's context carry its trace and
// span ids, beside the logger's own attributes, and that others do not.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil))).With("cmd", "api")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	log.InfoContext(trace.ContextWithSpanContext(t.Context(), sc), "traced", "n", 1)
	log.InfoContext(t.Context(), "untraced")
	log.Info("no context")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("logged %d lines, want 3:\n%s", len(lines), buf.String())
	}
	var got []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %s: %v", l, err)
		}
		got = append(got, m)
	}
	want := map[string]any{"msg": "traced", "cmd": "api", "n": 1.0,
		"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}
	for k, v := range want {
		if got[0][k] != v {
			t.Errorf("traced record: %s = %v, want %v (line %s)", k, got[0][k], v, lines[0])
		}
	}
	for i, m := range got[1:] {
		if _, ok := m["trace_id"]; ok || m["cmd"] != "api" {
			t.Errorf("record without a span: %s; want cmd and no trace_id", lines[i+1])
		}
	}
}

// TestPropagatorRoundTrip checks the propagator Setup installs carries a span's
// context through a map, as the broker headers and the market_events payload do.
func TestPropagatorRoundTrip(t *testing.T) {
	restoreGlobals(t)
	if _, err := telemetry.Setup(t.Context(), "boxoffice-test", "dev", env(nil), discard()); err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(trace.ContextWithSpanContext(t.Context(), sc), carrier)
	got := trace.SpanContextFromContext(otel.GetTextMapPropagator().Extract(t.Context(), carrier))
	if !got.Equal(sc.WithRemote(true)) {
		t.Errorf("extracted %v from %v, want %v", got, carrier, sc)
	}
}
