package postgres

import (
	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// Option configures a Store.
type Option func(*options)

type options struct {
	tracing trace.TracerProvider // nil: no spans
}

// WithTracing records the queries, batches, connects and pool acquisitions of both pools
// as client spans of tp (otelpgx), with their SQL text but never its arguments. Only
// work done inside a recording span starts one, so background reads (the index poll,
// replica probes) start no trace of their own. A nil tp leaves the pools
// uninstrumented, at no cost.
func WithTracing(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracing = tp }
}

// queryTracer returns the pgx tracer of o, or nil.
func (o options) queryTracer() pgx.QueryTracer {
	if o.tracing == nil {
		return nil
	}
	// Metrics are Prometheus's business here (Store.Stats); otelpgx's would go nowhere.
	return otelpgx.NewTracer(otelpgx.WithTracerProvider(o.tracing), otelpgx.WithMeterProvider(noop.NewMeterProvider()))
}
