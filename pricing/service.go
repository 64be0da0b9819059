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
	quoter *Quoter
	store  ServiceStore
	tasks  task.Records
	bus    Bus
	pub    task.Publisher
	cfg    ServiceConfig // with its defaults
	tracer trace.Tracer
	log    *slog.Logger
}

// ServiceConfig tunes a Service. The zero value is the API's.
type ServiceConfig struct {
	// Channel is the name of the Bus's channel, for the producer span ("publish
	// <channel>"); "" is the default, Channel.
	Channel string
	// Now stamps events and tasks; nil is time.Now.
	Now func() time.Time
	// TracerProvider makes the spans of the events and tasks it publishes; nil is
	// tracing off.
	TracerProvider trace.TracerProvider
}

// NewService returns the Service that quotes with quoter, reads events' products and
// records market events in store, records tasks in tasks, announces events on bus and
// publishes tasks on pub. It panics on a missing dependency: a programming mistake.
func NewService(quoter *Quoter, store ServiceStore, tasks task.Records, bus Bus, pub task.Publisher, cfg ServiceConfig, log *slog.Logger) *Service {
	if quoter == nil || store == nil || tasks == nil || bus == nil || pub == nil || log == nil {
		panic("pricing: NewService: a nil quoter, store, tasks, bus, publisher or log")
	}
	cfg.Channel = cmp.Or(cfg.Channel, Channel)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{quoter: quoter, store: store, tasks: tasks, bus: bus, pub: pub, cfg: cfg,
		tracer: spans.Tracer(cfg.TracerProvider, tracerName), log: log}
}

// Quote prices r; see Quoter.Quote.
func (s *Service) Quote(ctx context.Context, r Request) ([]byte, error) {
	return s.quoter.Quote(ctx, r)
}

// EventProducts lists the products of an event (a plan's id, as /search gives it), or
// returns ErrNotFound.
func (s *Service) EventProducts(ctx context.Context, event catalog.ID) ([]Priced, error) {
	return s.store.EventProducts(ctx, event)
}

// Recalculate records and enqueues a recalculation task, and returns it pending.
func (s *Service) Recalculate(ctx context.Context) (task.Record, error) {
	return Enqueue(ctx, s.tasks, s.pub, s.cfg.TracerProvider, "api", s.cfg.Now())
}

// Task returns a task's record, or task.ErrNotFound.
func (s *Service) Task(ctx context.Context, id string) (task.Record, error) {
	return s.tasks.Task(ctx, id)
}

// PublishEvent records ev durably, then announces it on the Bus, in a producer span
// whose trace context the payload carries to the listeners. The event counts once
// recorded: when the announcement fails, listeners find it at their next poll, and
// notified is false.
func (s *Service) PublishEvent(ctx context.Context, ev MarketEvent) (recorded MarketEvent, notified bool, err error) {
	ev.Source, ev.ReceivedAt = "api", s.cfg.Now()
	if ev.ID, err = s.store.AddMarketEvent(ctx, ev); err != nil {
		return ev, false, err
	}
	channel := s.cfg.Channel
	ctx, span := spans.StartMessaging(ctx, s.tracer, trace.SpanKindProducer, "publish", "send", channel)
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.Int64("boxoffice.market_event.id", ev.ID))
	}
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	payload := ev
	payload.Trace = carrier
	if err := s.bus.Publish(ctx, payload.AppendPayload(nil)); err != nil {
		spans.Fail(span, err)
		s.log.WarnContext(ctx, "market event recorded but not announced; listeners find it at their next poll",
			"event_id", ev.ID, "err", err)
		return ev, false, nil
	}
	return ev, true, nil
}
