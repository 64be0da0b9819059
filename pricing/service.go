package pricing

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"boxoffice/catalog"
	"boxoffice/spans"
	"boxoffice/task"
)

// ServiceStore is what the Service reads and writes (see Store).
type ServiceStore interface {
	// EventProducts returns the products of the ever-online plan with id event, in the
	// plan's zone order, or ErrNotFound.
	EventProducts(ctx context.Context, event catalog.ID) ([]Priced, error)
	// AddMarketEvent records ev durably and returns its id.
	AddMarketEvent(ctx context.Context, ev MarketEvent) (int64, error)
}

// Service is the pricing module as the HTTP API uses it.
type Service struct {
	Quoter    *Quoter
	Store     ServiceStore
	Tasks     task.Records
	Bus       Bus
	Publisher task.Publisher
	Now       func() time.Time
	Log       *slog.Logger
	// Channel is the name of Bus's channel, for the producer span ("publish <channel>");
	// empty means the default, Channel.
	Channel string
}

// Quote prices r; see Quoter.Quote.
func (s *Service) Quote(ctx context.Context, r Request) ([]byte, error) {
	return s.Quoter.Quote(ctx, r)
}

// EventProducts lists the products of an event (a plan's id, as /search gives it), or
// returns ErrNotFound.
func (s *Service) EventProducts(ctx context.Context, event catalog.ID) ([]Priced, error) {
	return s.Store.EventProducts(ctx, event)
}

// Recalculate records and enqueues a recalculation task, and returns it pending.
func (s *Service) Recalculate(ctx context.Context) (task.Record, error) {
	return Enqueue(ctx, s.Tasks, s.Publisher, "api", s.Now())
}

// Task returns a task's record, or task.ErrNotFound.
func (s *Service) Task(ctx context.Context, id string) (task.Record, error) {
	return s.Tasks.Task(ctx, id)
}

// PublishEvent records ev durably, then announces it on the Bus, in a producer span
// whose trace context the payload carries to the listeners. The event counts once
// recorded: when the announcement fails, listeners find it at their next poll, and
// notified is false.
func (s *Service) PublishEvent(ctx context.Context, ev MarketEvent) (recorded MarketEvent, notified bool, err error) {
	ev.Source, ev.ReceivedAt = "api", s.Now()
	if ev.ID, err = s.Store.AddMarketEvent(ctx, ev); err != nil {
		return ev, false, err
	}
	channel := cmp.Or(s.Channel, Channel)
	ctx, span := spans.StartMessaging(ctx, tracer(), trace.SpanKindProducer, "publish", "send", channel)
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.Int64("boxoffice.market_event.id", ev.ID))
	}
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	payload := ev
	payload.Trace = carrier
	if err := s.Bus.Publish(ctx, payload.AppendPayload(nil)); err != nil {
		spans.Fail(span, err)
		s.Log.WarnContext(ctx, "market event recorded but not announced; listeners find it at their next poll",
			"event_id", ev.ID, "err", err)
		return ev, false, nil
	}
	return ev, true, nil
}
