package telemetrytest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Record returns an SDK provider that records every span, to give the components
// under test, and its recorder; the provider shuts down when the test ends.
func Record(t testing.TB) (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return rec, tp
}

// RecordGlobal installs a recording SDK provider as the global one until the test
// ends, and returns its recorder: components given a provider of their own must leave
// it empty.
func RecordGlobal(t testing.TB) *tracetest.SpanRecorder {
	prev := otel.GetTracerProvider()
	rec, tp := Record(t)
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	return rec
}
