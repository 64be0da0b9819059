package task

import (
	"context"
	"maps"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"boxoffice/spans"
)

// tracerName names the spans of this package.
const tracerName = "boxoffice/task"

// Publish publishes msgs on topic through p inside a producer span ("publish <topic>")
// of tp (nil: none) and writes the span's trace context into each message's Headers, with the global
// propagator (W3C traceparent, tracestate and baggage), so that the Worker's span for
// each message continues the publisher's trace whatever the broker. The callers'
// Headers maps are copied, never changed. Domain code publishes through Publish
// rather than p.Publish. Errors are p's.
func Publish(ctx context.Context, p Publisher, tp trace.TracerProvider, topic string, msgs ...Message) error {
	ctx, span := spans.StartMessaging(ctx, spans.Tracer(tp, tracerName), trace.SpanKindProducer, "publish", "send", topic)
	defer span.End()
	if span.IsRecording() {
		if len(msgs) == 1 && msgs[0].ID != "" {
			span.SetAttributes(attribute.String("messaging.message.id", msgs[0].ID))
		} else if len(msgs) > 1 {
			span.SetAttributes(attribute.Int("messaging.batch.message_count", len(msgs)))
		}
	}
	msgs = inject(ctx, msgs)
	if err := p.Publish(ctx, topic, msgs...); err != nil {
		spans.Fail(span, err)
		return err
	}
	return nil
}

// inject returns msgs with the trace context of ctx in their Headers: msgs itself when
// there is nothing to propagate, else a copy with copied Headers.
func inject(ctx context.Context, msgs []Message) []Message {
	prop := otel.GetTextMapPropagator()
	probe := headerCarrier{}
	prop.Inject(ctx, &probe)
	if len(probe.h) == 0 {
		return msgs
	}
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		h := make(map[string]string, len(m.Headers)+len(probe.h))
		maps.Copy(h, m.Headers)
		maps.Copy(h, probe.h)
		m.Headers = h
		out[i] = m
	}
	return out
}

// headerCarrier collects what a propagator injects, allocating only when it writes.
type headerCarrier struct{ h map[string]string }

func (c *headerCarrier) Get(key string) string { return c.h[key] }

func (c *headerCarrier) Set(key, value string) {
	if c.h == nil {
		c.h = make(map[string]string, 2)
	}
	c.h[key] = value
}

func (c *headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c.h))
	for k := range c.h {
		keys = append(keys, k)
	}
	return keys
}

// Extract returns ctx carrying the trace context that m's Headers hold, as Publish
// wrote it; ctx itself when they hold none.
func Extract(ctx context.Context, m Message) context.Context {
	if len(m.Headers) == 0 {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(m.Headers))
}

// startProcess starts the consumer span of one delivery of m ("process <topic>") with
// t, a child of the span that published it when its Headers say which.
func startProcess(ctx context.Context, t trace.Tracer, m Message) (context.Context, trace.Span) {
	ctx, span := spans.StartMessaging(Extract(ctx, m), t, trace.SpanKindConsumer, "process", "process", m.Topic)
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("messaging.message.id", m.ID),
			attribute.Int("boxoffice.task.attempt", m.Attempt),
		)
	}
	return ctx, span
}
