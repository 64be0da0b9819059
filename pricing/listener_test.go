package pricing_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"boxoffice/clock/clocktest"
	"boxoffice/pricing"
	"boxoffice/testenv"
)

// TestListenerPollsOnItsClock checks that the listener's poll waits on its Clock: an
// event recorded without a notification is enqueued for when the clock passes Poll,
// with no real time waited.
func TestListenerPollsOnItsClock(t *testing.T) {
	r := embedded(t)
	clk := clocktest.NewManual(time.Now())
	l := pricing.NewListener(r.store, r.store, r.bus, r.broker, pricing.ListenerConfig{Quiet: time.Millisecond,
		MaxDelay: time.Millisecond, Poll: time.Hour, Now: time.Now, Clock: clk}, r.log)
	addEvent := func() {
		t.Helper()
		if _, err := r.store.AddMarketEvent(t.Context(), pricing.MarketEvent{Location: "madrid", Source: "test", ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	requested := func() int64 {
		st, err := r.store.PricingState(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return st.Requested
	}
	addEvent() // found when the listener starts
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	testenv.Poll(t, "the enqueue at start", func() bool { return requested() == 1 })

	addEvent() // no notification: only the poll finds it
	testenv.Poll(t, "the poll's ticker", func() bool { return clk.Waiters() > 0 })
	clk.Advance(time.Hour)
	testenv.Poll(t, "the enqueue at the poll", func() bool { return requested() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
}

// countingBus counts the subscriptions open on it.
type countingBus struct {
	pricing.Bus
	open atomic.Int32
}

func (b *countingBus) Subscribe(ctx context.Context, f func([]byte)) error {
	b.open.Add(1)
	defer b.open.Add(-1)
	return b.Bus.Subscribe(ctx, f)
}

// TestListenerRunJoinsItsSubscription checks that Run returns only once its
// subscription to the Bus has ended.
func TestListenerRunJoinsItsSubscription(t *testing.T) {
	r := embedded(t)
	bus := &countingBus{Bus: r.bus}
	l := pricing.NewListener(r.store, r.store, bus, r.broker, pricing.ListenerConfig{Quiet: time.Millisecond,
		MaxDelay: time.Millisecond, Poll: time.Hour, Now: time.Now}, r.log)
	for range 20 {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		testenv.Poll(t, "the subscription", func() bool { return bus.open.Load() == 1 })
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run() = %v, want nil", err)
		}
		if n := bus.open.Load(); n != 0 {
			t.Fatalf("%d subscriptions open after Run returned, want 0", n)
		}
	}
}

// failingBus fails its first subscriptions, as Redis does while it is unreachable, then
// subscribes to Bus.
type failingBus struct {
	pricing.Bus
	failures int          // subscriptions to fail
	calls    atomic.Int32 // Subscribe calls so far
}

func (b *failingBus) Subscribe(ctx context.Context, f func([]byte)) error {
	if int(b.calls.Add(1)) <= b.failures {
		return errors.New("subscribe to market_events: connection refused")
	}
	return b.Bus.Subscribe(ctx, f)
}

// TestListenerSubscribesAgainOnItsClock fails the listener's first subscription: it
// must subscribe again once its clock has passed the pause (100 ms), not before.
func TestListenerSubscribesAgainOnItsClock(t *testing.T) {
	r := embedded(t)
	clk := clocktest.NewManual(time.Now())
	bus := &failingBus{Bus: r.bus, failures: 1}
	l := pricing.NewListener(r.store, r.store, bus, r.broker, pricing.ListenerConfig{Quiet: time.Millisecond,
		MaxDelay: time.Millisecond, Poll: time.Hour, Now: time.Now, Clock: clk}, r.log)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	testenv.Poll(t, "the poll's ticker and the pause", func() bool { return clk.Waiters() == 2 })
	clk.Advance(99 * time.Millisecond)
	if n := bus.calls.Load(); n != 1 {
		t.Fatalf("%d subscriptions before the pause ended, want 1", n)
	}
	clk.Advance(time.Millisecond)
	testenv.Poll(t, "the second subscription", func() bool { return bus.calls.Load() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
}
