package redis

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/extra/redisotel/v9"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// Option configures a Client.
//
// Alike postgres's Option in shape only: each adapter's options are its own; adapters never import each other.
type Option func(*options)

type options struct {
	tracing trace.TracerProvider // nil: no spans
}

// WithTracing records each command as a client span of tp (redisotel), named after the
// command ("publish", "get"…), without its arguments: they hold cached responses and
// lock tokens. Only commands issued inside a recording span start one, so the
// background traffic (subscriptions, health pings, lock renewals) starts no trace of
// its own. A nil tp leaves the client uninstrumented, at no cost.
func WithTracing(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracing = tp }
}

// instrument adds o's instrumentation to rdb.
func (o options) instrument(rdb *goredis.Client) error {
	if o.tracing == nil {
		return nil
	}
	err := redisotel.InstrumentTracing(rdb,
		redisotel.WithTracerProvider(childSpans{tp: o.tracing}),
		redisotel.WithDBStatement(false),
		redisotel.WithCallerEnabled(false), // a stack walk per command
	)
	if err != nil {
		return fmt.Errorf("redis: tracing: %w", err)
	}
	return nil
}

// childSpans is a TracerProvider whose tracers start spans only inside a recording span.
type childSpans struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p childSpans) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childTracer{t: p.tp.Tracer(name, opts...)}
}

type childTracer struct {
	embedded.Tracer
	t trace.Tracer
}

// Start starts a span when ctx has a recording one; otherwise it returns ctx and its
// span (non-recording, or a no-op one), whose End does nothing.
func (t childTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if parent := trace.SpanFromContext(ctx); !parent.IsRecording() {
		return ctx, parent
	}
	return t.t.Start(ctx, name, opts...) //nolint:spancheck // a Tracer: its caller ends the span
}
