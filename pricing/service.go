package pricing

import (
	"context"
	"log/slog"
	"time"

	"boxoffice/catalog"
	"boxoffice/task"
)

// Service is the pricing module as the HTTP API uses it.
type Service struct {
	Quoter    *Quoter
	Store     Store
	Bus       Bus
	Publisher task.Publisher
	Now       func() time.Time
	Log       *slog.Logger
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
	return Enqueue(ctx, s.Store, s.Publisher, "api", s.Now())
}

// Task returns a task's record, or task.ErrNotFound.
func (s *Service) Task(ctx context.Context, id string) (task.Record, error) {
	return s.Store.Task(ctx, id)
}

// PublishEvent records ev durably, then announces it on the Bus. The event counts once
// recorded: when the announcement fails, listeners find it at their next poll, and
// notified is false.
func (s *Service) PublishEvent(ctx context.Context, ev MarketEvent) (recorded MarketEvent, notified bool, err error) {
	ev.Source, ev.ReceivedAt = "api", s.Now()
	if ev.ID, err = s.Store.AddMarketEvent(ctx, ev); err != nil {
		return ev, false, err
	}
	if err := s.Bus.Publish(ctx, ev.AppendPayload(nil)); err != nil {
		s.Log.Warn("market event recorded but not announced; listeners find it at their next poll",
			"event_id", ev.ID, "err", err)
		return ev, false, nil
	}
	return ev, true, nil
}
