package pricing

import (
	"context"
	"log/slog"
	"time"

	"boxoffice/task"
)

// Listener turns market events into recalculation tasks: the listener role.
//
// Events are durable in the store before anyone is told of them: the API records each
// one, then publishes it on the Bus (Redis channel market_events). The Bus only wakes
// the listener; what it enqueues for is the store's account of events not yet folded
// into the markets. So events published while no listener runs are found when one
// starts, and every Poll in any case. A payload without event_id, published on the
// channel by another service, is recorded first.
//
// A burst coalesces: after a notification the listener waits until the channel has been
// quiet for Quiet (at most MaxDelay), then enqueues one task for every event received
// so far. It enqueues again only for events newer than the last it enqueued for.
type Listener struct {
	Store     Store
	Bus       Bus
	Publisher task.Publisher
	Quiet     time.Duration
	MaxDelay  time.Duration
	Poll      time.Duration
	Now       func() time.Time
	Log       *slog.Logger
	// Received, when set, is told of each payload: "recorded" (its event is in the
	// store), "invalid" or "error".
	Received func(outcome string)
}

// Run listens until ctx is done and returns nil then.
func (l *Listener) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	go l.subscribe(ctx, wake)
	var enqueued int64 // the last event id a task was enqueued for
	poll := time.NewTicker(l.Poll)
	defer poll.Stop()
	l.enqueue(ctx, &enqueued) // events received while no listener ran
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
		case <-wake:
			l.settle(ctx, wake)
		}
		l.enqueue(ctx, &enqueued)
	}
}

// subscribe feeds wake from the Bus, recording payloads that are not in the store yet,
// and subscribes again after an error.
func (l *Listener) subscribe(ctx context.Context, wake chan<- struct{}) {
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.Bus.Subscribe(ctx, func(payload []byte) {
			l.receive(ctx, payload)
			select {
			case wake <- struct{}{}:
			default:
			}
		})
		if ctx.Err() != nil {
			return
		}
		l.Log.Warn("market events: subscription ended; subscribing again", "err", err, "pause", pause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(2*pause, 5*time.Second)
	}
}

func (l *Listener) receive(ctx context.Context, payload []byte) {
	ev, err := DecodeEvent(payload, true)
	if err != nil {
		l.Log.Warn("market events: ignoring an invalid payload", "err", err, "payload", truncate(payload, 128))
		l.count("invalid")
		return
	}
	if ev.ID == 0 { // published by someone else than the API: record it now
		ev.Source, ev.ReceivedAt = "pubsub", l.Now()
		if ev.ID, err = l.Store.AddMarketEvent(ctx, ev); err != nil {
			l.Log.Error("market events: could not record an event from the channel; it is lost", "err", err,
				"payload", truncate(payload, 128))
			l.count("error")
			return
		}
	}
	l.count("recorded")
}

func (l *Listener) count(outcome string) {
	if l.Received != nil {
		l.Received(outcome)
	}
}

// settle waits until wake has been quiet for Quiet, or MaxDelay passed.
func (l *Listener) settle(ctx context.Context, wake <-chan struct{}) {
	limit := time.NewTimer(l.MaxDelay)
	defer limit.Stop()
	quiet := time.NewTimer(l.Quiet)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-limit.C:
			return
		case <-quiet.C:
			return
		case <-wake:
			quiet.Reset(l.Quiet)
		}
	}
}

// enqueue enqueues a recalculation when events newer than *enqueued wait to be folded.
func (l *Listener) enqueue(ctx context.Context, enqueued *int64) {
	st, err := l.Store.PricingState(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.Log.Warn("market events: read the pricing state; trying again at the next event or poll", "err", err)
		}
		return
	}
	if st.Events <= st.Applied || st.Events <= *enqueued {
		return
	}
	rec, err := Enqueue(ctx, l.Store, l.Publisher, "market-event", l.Now())
	if err != nil {
		l.Log.Warn("market events: enqueue a recalculation; trying again at the next event or poll", "err", err)
		return
	}
	*enqueued = st.Events
	l.Log.Info("recalculation enqueued for market events", "task_id", rec.ID, "events_up_to", st.Events,
		"pending_events", st.Events-st.Applied)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
