package pricing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"boxoffice/clock"
	"boxoffice/spans"
	"boxoffice/task"
)

// ListenerStore is what a Listener reads and writes (see Store).
type ListenerStore interface {
	// AddMarketEvent records ev durably and returns its id.
	AddMarketEvent(ctx context.Context, ev MarketEvent) (int64, error)
	// PricingState reads the state from the primary.
	PricingState(ctx context.Context) (State, error)
}

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
//
// Traces: each payload is received in a consumer span, a child of the publisher's span
// when the payload carries its trace context; an enqueue that follows received events
// runs in a span that is a child of the last one's span and links to the others', so
// the recalculation's trace leads back to the requests that asked for it.
type Listener struct {
	store  ListenerStore
	tasks  task.Records // where Enqueue records the tasks
	bus    Bus
	pub    task.Publisher
	cfg    ListenerConfig // with its defaults
	tracer trace.Tracer
	log    *slog.Logger

	mu       sync.Mutex          // guards received
	received []trace.SpanContext // spans of the events received since the last enqueue, oldest first
}

// ListenerConfig tunes a Listener. Zero fields take the defaults of the listener role.
type ListenerConfig struct {
	// Channel is the name of the Bus's channel, for the consumer spans ("receive
	// <channel>"); "" is the default, Channel.
	Channel string
	// A burst settles until the channel has been quiet for Quiet (100ms), at most
	// MaxDelay (1s); every Poll (5s) the listener looks for events whose notification
	// it missed.
	Quiet, MaxDelay, Poll time.Duration
	// Clock makes the listener's timers and tickers (the poll, the settling of a
	// burst, the pause before subscribing again); nil is clock.System.
	Clock clock.Clock
	// Now stamps events and tasks; nil is Clock's.
	Now func() time.Time
	// TracerProvider makes the listener's spans; nil is tracing off.
	TracerProvider trace.TracerProvider
	// Received, when set, is told of each payload: "recorded" (its event is in the
	// store), "invalid" or "error".
	Received func(outcome string)
	// Panicked, when set, is told of each panic the listener recovered.
	Panicked func()
}

// NewListener returns a Listener that records the events of bus in store and enqueues
// their recalculations, recorded in tasks, on pub. It panics on a missing dependency or
// a negative duration: a programming mistake.
func NewListener(store ListenerStore, tasks task.Records, bus Bus, pub task.Publisher, cfg ListenerConfig, log *slog.Logger) *Listener {
	if store == nil || tasks == nil || bus == nil || pub == nil || log == nil {
		panic("pricing: NewListener: a nil store, tasks, bus, publisher or log")
	}
	if cfg.Quiet < 0 || cfg.MaxDelay < 0 || cfg.Poll < 0 {
		panic(fmt.Sprintf("pricing: NewListener: negative Quiet %v, MaxDelay %v or Poll %v", cfg.Quiet, cfg.MaxDelay, cfg.Poll))
	}
	cfg.Channel = cmp.Or(cfg.Channel, Channel)
	cfg.Quiet = cmp.Or(cfg.Quiet, 100*time.Millisecond)
	cfg.MaxDelay = cmp.Or(cfg.MaxDelay, time.Second)
	cfg.Poll = cmp.Or(cfg.Poll, 5*time.Second)
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Now == nil {
		cfg.Now = cfg.Clock.Now
	}
	return &Listener{store: store, tasks: tasks, bus: bus, pub: pub, cfg: cfg,
		tracer: spans.Tracer(cfg.TracerProvider, tracerName), log: log}
}

// maxLinks bounds the received events an enqueue's span links to: the newest ones.
const maxLinks = 64

// Run listens until ctx is done and returns nil then.
//
// A panic while receiving a payload or enqueueing does not stop the listener: it is
// logged with its stack and counted (Panicked), and the listener goes on. Nothing is
// lost by it: the events are in the store, and the next notification or poll enqueues
// for them again.
func (l *Listener) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	var subscribed sync.WaitGroup
	defer subscribed.Wait() // the subscription ends with ctx, before Run returns
	subscribed.Go(func() { l.subscribe(ctx, wake) })
	var enqueued int64 // the last event id a task was enqueued for
	poll := l.cfg.Clock.NewTicker(l.cfg.Poll)
	defer poll.Stop()
	l.guard(ctx, "enqueue", func() { l.enqueue(ctx, &enqueued) }) // events received while no listener ran
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C():
		case <-wake:
			l.settle(ctx, wake)
		}
		l.guard(ctx, "enqueue", func() { l.enqueue(ctx, &enqueued) })
	}
}

// guard runs step, recovering a panic in it: logged with its stack and counted.
func (l *Listener) guard(ctx context.Context, what string, step func()) {
	err := func() (err error) {
		defer task.Recover(&err)
		step()
		return nil
	}()
	if p := (*task.PanicError)(nil); errors.As(err, &p) {
		l.log.ErrorContext(ctx, "market events: "+what+" panicked; going on", "panic", p.Error(), "stack", p.Stack)
		if l.cfg.Panicked != nil {
			l.cfg.Panicked()
		}
	}
}

// subscribe feeds wake from the Bus until ctx is done (Run waits for it), recording payloads that are not in the store yet,
// and subscribes again after an error, pausing as clock.Retry does by default: the
// notifications are hints, and the poll finds the events meanwhile.
func (l *Listener) subscribe(ctx context.Context, wake chan<- struct{}) {
	clock.Retry(ctx, l.cfg.Clock, clock.Backoff{}, func(ctx context.Context) error {
		return l.bus.Subscribe(ctx, func(payload []byte) {
			l.guard(ctx, "receive", func() { l.receive(ctx, payload) })
			select {
			case wake <- struct{}{}:
			default:
			}
		})
	}, func(err error, attempts int, pause time.Duration) {
		l.log.Warn("market events: subscription ended; subscribing again", "err", err, "attempts", attempts, "pause", pause)
	})
}

// receive handles one payload in a consumer span, recording its event when the API
// did not, and keeps the span for the enqueue that follows.
func (l *Listener) receive(ctx context.Context, payload []byte) {
	ev, err := DecodeEvent(payload, true)
	if err == nil && ev.Trace != nil {
		ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(ev.Trace))
	}
	channel := l.cfg.Channel
	ctx, span := spans.StartMessaging(ctx, l.tracer, trace.SpanKindConsumer, "receive", "receive", channel)
	defer span.End()
	if err != nil {
		spans.Fail(span, err)
		l.log.WarnContext(ctx, "market events: ignoring an invalid payload", "err", err, "payload", truncate(payload, 128))
		l.count("invalid")
		return
	}
	if ev.ID == 0 { // published by someone else than the API: record it now
		ev.Source, ev.ReceivedAt = "pubsub", l.cfg.Now()
		if ev.ID, err = l.store.AddMarketEvent(ctx, ev); err != nil {
			spans.Fail(span, err)
			l.log.ErrorContext(ctx, "market events: could not record an event from the channel; it is lost", "err", err,
				"payload", truncate(payload, 128))
			l.count("error")
			return
		}
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.Int64("boxoffice.market_event.id", ev.ID))
	}
	if sc := span.SpanContext(); sc.IsValid() {
		l.mu.Lock()
		l.received = append(l.received, sc)
		if n := len(l.received); n > maxLinks {
			l.received = append(l.received[:0], l.received[n-maxLinks:]...)
		}
		l.mu.Unlock()
	}
	l.count("recorded")
}

// startEnqueue starts the span of an enqueue, a child of the span of the last event
// received since the previous enqueue and linked to the others', and forgets them.
func (l *Listener) startEnqueue(ctx context.Context) (context.Context, trace.Span) {
	l.mu.Lock()
	received := l.received
	l.received = nil
	l.mu.Unlock()
	var opts []trace.SpanStartOption
	if n := len(received); n > 0 {
		ctx = trace.ContextWithSpanContext(ctx, received[n-1])
		links := make([]trace.Link, n-1)
		for i, sc := range received[:n-1] {
			links[i] = trace.Link{SpanContext: sc}
		}
		opts = append(opts, trace.WithLinks(links...))
	}
	return l.tracer.Start(ctx, "enqueue recalculation", opts...) //nolint:spancheck // the caller ends the span it is given
}

// forget drops the spans of the events received so far: they need no enqueue.
func (l *Listener) forget() {
	l.mu.Lock()
	l.received = nil
	l.mu.Unlock()
}

func (l *Listener) count(outcome string) {
	if l.cfg.Received != nil {
		l.cfg.Received(outcome)
	}
}

// settle waits until wake has been quiet for Quiet, or MaxDelay passed.
func (l *Listener) settle(ctx context.Context, wake <-chan struct{}) {
	c := l.cfg.Clock
	limit := c.NewTimer(l.cfg.MaxDelay)
	defer limit.Stop()
	quiet := c.NewTimer(l.cfg.Quiet)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-limit.C():
			return
		case <-quiet.C():
			return
		case <-wake:
			quiet.Reset(l.cfg.Quiet)
		}
	}
}

// enqueue enqueues a recalculation when events newer than *enqueued wait to be folded.
func (l *Listener) enqueue(ctx context.Context, enqueued *int64) {
	st, err := l.store.PricingState(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("market events: read the pricing state; trying again at the next event or poll", "err", err)
		}
		return
	}
	if st.Events <= st.Applied || st.Events <= *enqueued {
		l.forget()
		return
	}
	ctx, span := l.startEnqueue(ctx)
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(
			attribute.Int64("boxoffice.market_events.up_to", st.Events),
			attribute.Int64("boxoffice.market_events.pending", st.Events-st.Applied),
		)
	}
	rec, err := Enqueue(ctx, l.tasks, l.pub, l.cfg.TracerProvider, "market-event", l.cfg.Now())
	if err != nil {
		spans.Fail(span, err)
		l.log.WarnContext(ctx, "market events: enqueue a recalculation; trying again at the next event or poll", "err", err)
		return
	}
	*enqueued = st.Events
	if span.IsRecording() {
		span.SetAttributes(attribute.String("boxoffice.task.id", rec.ID))
	}
	l.log.InfoContext(ctx, "recalculation enqueued for market events", "task_id", rec.ID, "events_up_to", st.Events,
		"pending_events", st.Events-st.Applied)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
