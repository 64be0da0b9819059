package pricing_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"boxoffice/pricing"
	"boxoffice/task"
	"boxoffice/telemetry/telemetrytest"
	"boxoffice/testenv"
)

// recordSpans returns an SDK provider that records every span, to give the
// components under test, and installs the W3C propagator until the test ends.
func recordSpans(t *testing.T) (*tracetest.SpanRecorder, trace.TracerProvider) {
	prop := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prop) })
	return telemetrytest.Record(t)
}

// TestMarketEventTraces follows two market events, published by two requests (two
// traces) in one burst, through the bus, the listener and the broker to the worker:
// each is received in a span under its request's producer span; the one enqueue they
// cause is a child of the last one's and links to the other's; the worker processes
// the task in that trace, under the enqueue's producer span, and the run is a span
// under it with the run's account.
func TestMarketEventTraces(t *testing.T) {
	rec, tp := recordSpans(t)
	eachRig(t, func(t *testing.T, r *rig) {
		r.tp = tp
		seed(t, r.store, 2)
		r.work(t, r.store, 1)
		svc := r.service()
		publish := func(ctx context.Context, i int) {
			ev, err := pricing.DecodeEvent(fmt.Appendf(nil, `{"location":"city-%d","multiplier":1.%d}`, i, i), false)
			if err != nil {
				t.Fatal(err)
			}
			if _, notified, err := svc.PublishEvent(ctx, ev); err != nil || !notified {
				t.Fatalf("PublishEvent = notified %v, %v", notified, err)
			}
		}
		// gate, while set, holds the listener in the receipt of an event, so that the
		// next one arrives in the same burst.
		var received atomic.Int64
		var gate atomic.Pointer[chan struct{}]
		ctx, cancel := context.WithCancel(t.Context())
		l := pricing.NewListener(r.store, r.store, r.bus, r.broker, pricing.ListenerConfig{Quiet: 200 * time.Millisecond, TracerProvider: r.tp,
			MaxDelay: 2 * time.Second, Poll: time.Hour, Now: time.Now,
			Received: func(string) {
				received.Add(1)
				if g := gate.Load(); g != nil {
					<-*g
				}
			}}, r.log)
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("listener: %v", err)
			}
		}()
		quiet := func() {
			testenv.Poll(t, "every event applied", func() bool {
				st, err := r.store.PricingState(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				return st.Applied == st.Events && st.Done == st.Requested
			})
		}
		// The bus delivers only to subscriptions open when a payload is published: warm up
		// until the listener hears one.
		testenv.Poll(t, "the listener to hear the bus", func() bool {
			publish(t.Context(), 0)
			return received.Load() > 0
		})
		quiet()

		tracer := tp.Tracer("test")
		ctx1, req1 := tracer.Start(t.Context(), "request 1")
		ctx2, req2 := tracer.Start(t.Context(), "request 2")
		g := make(chan struct{})
		gate.Store(&g)
		before := received.Load()
		publish(ctx1, 1)
		testenv.Poll(t, "the first event received", func() bool { return received.Load() > before })
		publish(ctx2, 2)
		gate.Store(nil)
		close(g)
		req1.End()
		req2.End()
		quiet()

		trace1, trace2 := req1.SpanContext().TraceID(), req2.SpanContext().TraceID()
		chain := []struct {
			name string
			kind trace.SpanKind
		}{
			{"recalculate prices", trace.SpanKindInternal},
			{"process " + pricing.TopicRecalculate, trace.SpanKindConsumer},
			{"publish " + pricing.TopicRecalculate, trace.SpanKindProducer},
			{"enqueue recalculation", trace.SpanKindInternal},
			{"receive " + pricing.Channel, trace.SpanKindConsumer},
			{"publish " + pricing.Channel, trace.SpanKindProducer},
			{"request 2", trace.SpanKindInternal},
		}
		var spans []sdktrace.ReadOnlySpan
		testenv.Poll(t, "the spans of the second request's trace to end", func() bool {
			spans = rec.Ended()
			for _, c := range chain {
				if only(spans, trace2, c.name) == nil {
					return false
				}
			}
			return true
		})
		run := only(spans, trace2, "recalculate prices")
		s := run
		for i, want := range chain {
			if s == nil {
				t.Fatalf("trace of request 2 ends before %q", want.name)
			}
			if s.Name() != want.name || s.SpanKind() != want.kind {
				t.Fatalf("span %d up from the run is %q (%v), want %q (%v)", i, s.Name(), s.SpanKind(), want.name, want.kind)
			}
			if i == len(chain)-1 {
				break
			}
			s = byID(spans, trace2, s.Parent().SpanID())
		}
		if got := attr(run, "boxoffice.pricing.products"); got != "4" || attr(run, "boxoffice.pricing.version") == "" {
			t.Errorf("run span attributes %v, want 4 products and the version", run.Attributes())
		}

		// The first request's event was received under its producer span, and the
		// enqueue links to that receipt.
		recv1 := only(spans, trace1, "receive "+pricing.Channel)
		if recv1 == nil {
			t.Fatalf("no receive span in the first request's trace")
		}
		if p := byID(spans, trace1, recv1.Parent().SpanID()); p == nil || p.Name() != "publish "+pricing.Channel {
			t.Errorf("first receive span's parent is %v, want the request's producer span", p)
		}
		enqueue := only(spans, trace2, "enqueue recalculation")
		linked := false
		for _, link := range enqueue.Links() {
			linked = linked || link.SpanContext.SpanID() == recv1.SpanContext().SpanID()
		}
		if !linked {
			t.Errorf("enqueue span links %v, want one to the first event's receipt %v", enqueue.Links(), recv1.SpanContext().SpanID())
		}
	})
}

// only returns the one span of trace id named name, or nil.
func only(spans []sdktrace.ReadOnlySpan, id trace.TraceID, name string) sdktrace.ReadOnlySpan {
	var found sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanContext().TraceID() == id && s.Name() == name {
			if found != nil {
				return nil
			}
			found = s
		}
	}
	return found
}

// byID returns the span of trace id with span id sid, or nil.
func byID(spans []sdktrace.ReadOnlySpan, id trace.TraceID, sid trace.SpanID) sdktrace.ReadOnlySpan {
	for _, s := range spans {
		if s.SpanContext().TraceID() == id && s.SpanContext().SpanID() == sid {
			return s
		}
	}
	return nil
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

// TestRecalculationSpansGoToTheGivenProvider runs an enqueue and its recalculation with
// a provider of their own while a recording provider is the global one: the enqueue's
// producer span, the worker's consumer span and the run's span are the given
// provider's, and the global one records nothing.
func TestRecalculationSpansGoToTheGivenProvider(t *testing.T) {
	global := telemetrytest.RecordGlobal(t)
	rec, tp := recordSpans(t)
	r := embedded(t)
	r.tp = tp
	seed(t, r.store, 1)
	r.work(t, r.store, 1)
	if got := r.await(t, r.enqueue(t).ID); got.State != task.Succeeded {
		t.Fatalf("task ended %s (%s), want succeeded", got.State, got.Error)
	}
	want := []string{"publish " + pricing.TopicRecalculate, "process " + pricing.TopicRecalculate, "recalculate prices"}
	testenv.Poll(t, "the spans of the recalculation", func() bool {
		names := map[string]bool{}
		for _, s := range rec.Ended() {
			names[s.Name()] = true
		}
		for _, n := range want {
			if !names[n] {
				return false
			}
		}
		return true
	})
	if spans := global.Ended(); len(spans) != 0 {
		t.Errorf("the global provider recorded %d spans (first %q), want none", len(spans), spans[0].Name())
	}
}
