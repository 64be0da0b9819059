// Package spans holds what the domain packages do alike with their OpenTelemetry spans:
// mark one failed, record its outcome, start a messaging one. It imports only the
// OpenTelemetry API, so every package may use it (telemetry, which installs the SDK, is
// cmd/boxoffice's alone).
package spans

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracer returns the tracer name of tp, the provider a component was given; nil is
// tracing off (OpenTelemetry's no-op tracer). Components take their provider from
// their constructor, never from the global one, so that a process (or a test) decides
// where each one's spans go.
func Tracer(tp trace.TracerProvider, name string) trace.Tracer {
	if tp == nil {
		return noop.NewTracerProvider().Tracer(name)
	}
	return tp.Tracer(name)
}

// Fail marks span as failed with err, when err is not nil.
func Fail(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}

// Record gives span the outcome of its work: attrs when it is recording, and a failure
// when err is not nil. Its caller ends the span.
func Record(span trace.Span, err error, attrs ...attribute.KeyValue) {
	if len(attrs) > 0 && span.IsRecording() {
		span.SetAttributes(attrs...)
	}
	Fail(span, err)
}

// StartMessaging starts the span "<name> <destination>" of kind with t, holding the
// OpenTelemetry messaging attributes messaging.operation.type (op: "send", "receive",
// "process") and messaging.destination.name. Its caller ends it.
func StartMessaging(ctx context.Context, t trace.Tracer, kind trace.SpanKind, name, op, destination string) (context.Context, trace.Span) {
	ctx, span := t.Start(ctx, name+" "+destination, trace.WithSpanKind(kind))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("messaging.operation.type", op),
			attribute.String("messaging.destination.name", destination),
		)
	}
	return ctx, span
}
