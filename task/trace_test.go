package task_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"boxoffice/sqlite"
	"boxoffice/task"
	"boxoffice/telemetry/telemetrytest"
	"boxoffice/testenv"
)

// openBroker opens an embedded broker on a temporary directory, closed by t.Cleanup.
func openBroker(t *testing.T, retry task.RetryPolicy) *sqlite.Broker {
	t.Helper()
	b, err := sqlite.OpenBroker(t.Context(), t.TempDir(), sqlite.BrokerConfig{Retry: retry}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// recordSpans returns an SDK provider that records every span, to give the
// components under test, and installs the W3C propagator until the test ends.
func recordSpans(t *testing.T) (*tracetest.SpanRecorder, trace.TracerProvider) {
	prop := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prop) })
	return telemetrytest.Record(t)
}

// ended returns the ended span named name, failing the test unless there is exactly one.
func ended(t *testing.T, rec *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d ended spans named %q, want 1", len(found), name)
	}
	return found[0]
}

// TestTraceCrossesTheBroker publishes through task.Publish inside a span and checks
// that the handler runs in a consumer span of the same trace, a child of the producer
// span, itself a child of the caller's span; that a retried delivery continues it too;
// and that the publisher's headers are left as they were.
func TestTraceCrossesTheBroker(t *testing.T) {
	rec, tp := recordSpans(t)
	log := slog.New(slog.DiscardHandler)
	broker := openBroker(t, task.RetryPolicy{MaxAttempts: 2, Countdown: time.Millisecond, MaxDelay: time.Millisecond})

	var (
		mu    sync.Mutex
		seen  []trace.SpanContext // the handler's span, per attempt
		heads []map[string]string
	)
	handler := func(ctx context.Context, m task.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, trace.SpanContextFromContext(ctx))
		heads = append(heads, m.Headers)
		if m.Attempt == 1 {
			return errors.New("try again")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- task.NewWorker(broker, map[string]task.Handler{"plans": handler}, task.WorkerConfig{TracerProvider: tp}, log).Run(ctx)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	}()

	parentCtx, parent := tp.Tracer("test").Start(t.Context(), "request")
	headers := map[string]string{"origin": "test"}
	if err := task.Publish(parentCtx, broker, tp, "plans", task.Message{ID: "m1", Body: []byte("{}"), Headers: headers}); err != nil {
		t.Fatal(err)
	}
	parent.End()
	if len(headers) != 1 {
		t.Errorf("Publish changed the caller's headers: %v", headers)
	}
	testenv.Poll(t, "both attempts to end", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, s := range rec.Ended() {
			if s.Name() == "process plans" {
				n++
			}
		}
		return n == 2 && len(seen) == 2
	})

	producer := ended(t, rec, "publish plans")
	if producer.Parent().SpanID() != parent.SpanContext().SpanID() || producer.SpanKind() != trace.SpanKindProducer {
		t.Errorf("producer span %q kind %v has parent %v, want a producer under the caller's span %v",
			producer.Name(), producer.SpanKind(), producer.Parent().SpanID(), parent.SpanContext().SpanID())
	}
	mu.Lock()
	defer mu.Unlock()
	for i, sc := range seen {
		if sc.TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("attempt %d runs in trace %v, want the publisher's %v", i+1, sc.TraceID(), parent.SpanContext().TraceID())
		}
		if heads[i]["origin"] != "test" || heads[i]["traceparent"] == "" {
			t.Errorf("attempt %d headers = %v, want origin and traceparent", i+1, heads[i])
		}
	}
	var consumers []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "process plans" {
			consumers = append(consumers, s)
		}
	}
	for _, c := range consumers {
		if c.Parent().SpanID() != producer.SpanContext().SpanID() || c.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("consumer span kind %v has parent %v, want a consumer under the producer %v",
				c.SpanKind(), c.Parent().SpanID(), producer.SpanContext().SpanID())
		}
		attempt := attr(c, "boxoffice.task.attempt")
		if attr(c, "messaging.destination.name") != "plans" || attr(c, "messaging.message.id") != "m1" || attempt == "" {
			t.Errorf("consumer span attributes = %v, want destination plans, message m1 and the attempt", c.Attributes())
		}
		if failed := c.Status().Code == codes.Error; failed != (attempt == "1") {
			t.Errorf("attempt %s span status %v; want an error on the failed first attempt only", attempt, c.Status())
		}
	}
}

// attr returns the value of a span's attribute key as text, or "".
func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// TestPublishWithoutTracing checks that with tracing off (the no-op provider) Publish
// adds no headers, even with the propagator installed.
func TestPublishWithoutTracing(t *testing.T) {
	tp, prop := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(noop.NewTracerProvider())
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(prop)
	})
	broker := openBroker(t, task.DefaultRetry)
	if err := task.Publish(t.Context(), broker, nil, "plans", task.Message{Body: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	got := make(chan task.Message, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go broker.Subscribe(ctx, "plans", func(_ context.Context, m task.Message) error { got <- m; cancel(); return nil })
	if m := <-got; len(m.Headers) != 0 {
		t.Errorf("headers = %v, want none without a trace", m.Headers)
	}
}

// TestSpansGoToTheGivenProvider publishes and consumes with a provider of their own
// while a recording provider is the global one: every span is the given provider's,
// none the global's.
func TestSpansGoToTheGivenProvider(t *testing.T) {
	global := telemetrytest.RecordGlobal(t)
	rec, tp := recordSpans(t)
	broker := openBroker(t, task.DefaultRetry)
	handled := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- task.NewWorker(broker, map[string]task.Handler{"plans": func(context.Context, task.Message) error {
			close(handled)
			return nil
		}}, task.WorkerConfig{TracerProvider: tp}, slog.New(slog.DiscardHandler)).Run(ctx)
	}()
	if err := task.Publish(t.Context(), broker, tp, "plans", task.Message{ID: "m1", Body: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	<-handled
	testenv.Poll(t, "the consumer span to end", func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == "process plans" {
				return true
			}
		}
		return false
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("worker: %v", err)
	}
	ended(t, rec, "publish plans")
	if spans := global.Ended(); len(spans) != 0 {
		t.Errorf("the global provider recorded %d spans (first %q), want none", len(spans), spans[0].Name())
	}
}
