package spans

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestRecordGivesAttributesAndFailure(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tr := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")

	_, ok := tr.Start(context.Background(), "ok")
	Record(ok, nil, attribute.Int("n", 1))
	ok.End()
	_, bad := tr.Start(context.Background(), "bad")
	Record(bad, errors.New("boom"))
	bad.End()

	ended := rec.Ended()
	if len(ended) != 2 {
		t.Fatalf("%d spans ended, want 2", len(ended))
	}
	if got := ended[0].Status().Code; got != codes.Unset {
		t.Errorf("ok span status %v, want unset", got)
	}
	if attrs := ended[0].Attributes(); len(attrs) != 1 || attrs[0] != attribute.Int("n", 1) {
		t.Errorf("ok span attributes %v, want n=1", attrs)
	}
	if st := ended[1].Status(); st.Code != codes.Error || st.Description != "boom" {
		t.Errorf("bad span status %+v, want error boom", st)
	}
	if evs := ended[1].Events(); len(evs) != 1 || evs[0].Name != "exception" {
		t.Errorf("bad span events %v, want the recorded error", evs)
	}
}

func TestStartMessagingNamesTheSpanAndItsDestination(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tr := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")

	_, span := StartMessaging(context.Background(), tr, trace.SpanKindProducer, "publish", "send", "plans")
	span.End()

	ended := rec.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans ended, want 1", len(ended))
	}
	s := ended[0]
	if s.Name() != "publish plans" || s.SpanKind() != trace.SpanKindProducer {
		t.Errorf("span %q of kind %v, want \"publish plans\" producer", s.Name(), s.SpanKind())
	}
	want := map[attribute.Key]string{"messaging.operation.type": "send", "messaging.destination.name": "plans"}
	for _, kv := range s.Attributes() {
		if w, ok := want[kv.Key]; ok && kv.Value.AsString() == w {
			delete(want, kv.Key)
		}
	}
	if len(want) > 0 {
		t.Errorf("attributes %v lack %v", s.Attributes(), want)
	}
}
