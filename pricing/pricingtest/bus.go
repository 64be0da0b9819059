package pricingtest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"boxoffice/pricing"
	"boxoffice/testenv"
)

// Buses is what a pricing.Bus adapter under test provides: buses that share one
// channel no other test uses, as the processes of a deployment do.
type Buses struct {
	// New returns a Bus on the channel. It may return the same one every time (an
	// in-process adapter has one per process).
	New func() pricing.Bus
	// Subscriptions returns how many subscriptions the channel has now, so that the
	// suite publishes only once a subscription is in place.
	Subscriptions func() int
}

// TestBus runs the pricing.Bus contract: every open subscription gets every payload, in
// the order published and byte for byte; a subscription does not see what was
// published before it; Subscribe returns nil when its context ends, and Publish fails
// once its own has.
func TestBus(t *testing.T, open func(t *testing.T) Buses) {
	t.Run("DeliversInOrderToEverySubscriber", func(t *testing.T) {
		t.Parallel()
		b := open(t)
		first, second := subscribeBus(t, b), subscribeBus(t, b)
		pub := b.New()
		var want [][]byte
		for i := range 100 {
			want = append(want, fmt.Appendf(nil, `{"event_id":%d,"location":"madrid"}`, i+1))
		}
		want = append(want, []byte{0, 1, 0xff, '\n'}) // bytes pass as they are
		for _, p := range want {
			if err := pub.Publish(t.Context(), p); err != nil {
				t.Fatal(err)
			}
		}
		testenv.Poll(t, "every payload at both subscribers", func() bool {
			return len(first.Got()) >= len(want) && len(second.Got()) >= len(want)
		})
		for name, s := range map[string]*payloads{"first": first, "second": second} {
			if diff := cmp.Diff(want, s.Got()); diff != "" {
				t.Errorf("%s subscriber's payloads (-want +got):\n%s", name, diff)
			}
			if err := s.Stop(); err != nil {
				t.Errorf("%s Subscribe() = %v after its context ended, want nil", name, err)
			}
		}
		testenv.Poll(t, "no subscriptions", func() bool { return b.Subscriptions() == 0 })
	})
	t.Run("LateSubscriberMissesEarlierPayloads", func(t *testing.T) {
		t.Parallel()
		b := open(t)
		pub := b.New()
		publishBus(t, pub, "nobody listens")
		early := subscribeBus(t, b)
		publishBus(t, pub, "1")
		testenv.Poll(t, "the early subscriber's payload", func() bool { return len(early.Got()) == 1 })
		late := subscribeBus(t, b)
		publishBus(t, pub, "2")
		testenv.Poll(t, "payload 2 at both", func() bool { return len(early.Got()) == 2 && len(late.Got()) > 0 })
		if diff := cmp.Diff([][]byte{[]byte("1"), []byte("2")}, early.Got()); diff != "" {
			t.Errorf("early subscriber's payloads (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([][]byte{[]byte("2")}, late.Got()); diff != "" {
			t.Errorf("late subscriber's payloads (-want +got):\n%s", diff)
		}
	})
	t.Run("PublishAfterItsContextEnds", func(t *testing.T) {
		t.Parallel()
		b := open(t)
		s := subscribeBus(t, b)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := b.New().Publish(ctx, []byte("x")); err == nil {
			t.Error("Publish() with a canceled context = nil, want its error")
		}
		publishBus(t, b.New(), "y")
		testenv.Poll(t, "the payload", func() bool { return len(s.Got()) > 0 })
		if diff := cmp.Diff([][]byte{[]byte("y")}, s.Got()); diff != "" {
			t.Errorf("payloads (-want +got):\n%s", diff)
		}
	})
}

func publishBus(t *testing.T, b pricing.Bus, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		if err := b.Publish(t.Context(), []byte(p)); err != nil {
			t.Fatalf("Publish(%q) = %v", p, err)
		}
	}
}

// payloads is a subscription's record of the payloads it got.
type payloads = testenv.Subscription[[]byte]

// subscribeBus opens a subscription on a new bus of b and waits until the channel
// counts it. It records copies: a Bus may reuse a payload's bytes once its call
// returns.
func subscribeBus(t *testing.T, b Buses) *payloads {
	t.Helper()
	before := b.Subscriptions()
	s := testenv.Subscribe(t, b.New().Subscribe, slices.Clone[[]byte])
	testenv.Poll(t, "the subscription", func() bool { return b.Subscriptions() > before })
	return s
}
