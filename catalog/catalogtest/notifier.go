package catalogtest

import (
	"context"
	"slices"
	"testing"

	"boxoffice/catalog"
	"boxoffice/testenv"
)

// Notifiers is what a catalog.Notifier adapter under test provides: notifiers that
// share one channel no other test uses, as the processes on one store do.
type Notifiers struct {
	// New returns a Notifier on the channel. It may return the same one every time
	// (an in-process adapter has one per process).
	New func() catalog.Notifier
	// Subscriptions returns how many subscriptions the channel has now, so that the
	// suite publishes only once a subscription is in place.
	Subscriptions func() int
}

// TestNotifier runs the catalog.Notifier contract: every open subscription sees the
// newest version published, in the order published, perhaps without the versions of a
// burst between; a subscription does not see what was published before it; Subscribe
// returns nil when its context ends, and Publish fails once its own has.
func TestNotifier(t *testing.T, open func(t *testing.T) Notifiers) {
	t.Run("DeliversToEverySubscription", func(t *testing.T) {
		t.Parallel()
		n := open(t)
		a, b := subscribe(t, n), subscribe(t, n)
		pub := n.New()
		for v := range int64(50) {
			if err := pub.Publish(t.Context(), v+1); err != nil {
				t.Fatalf("Publish(%d): %v", v+1, err)
			}
		}
		for name, s := range map[string]*versions{"first": a, "second": b} {
			testenv.Poll(t, "version 50 at the "+name+" subscription", func() bool { return last(s) == 50 })
			got := s.Got()
			if !increasing(got) {
				t.Errorf("%s subscription saw %v, want increasing versions, each once", name, got)
			}
			if err := s.Stop(); err != nil {
				t.Errorf("%s Subscribe() = %v after its context ended, want nil", name, err)
			}
		}
		testenv.Poll(t, "no subscriptions", func() bool { return n.Subscriptions() == 0 })
	})
	t.Run("LateSubscriptionMissesEarlierVersions", func(t *testing.T) {
		t.Parallel()
		n := open(t)
		pub := n.New()
		if err := pub.Publish(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		s := subscribe(t, n)
		if err := pub.Publish(t.Context(), 2); err != nil {
			t.Fatal(err)
		}
		testenv.Poll(t, "version 2", func() bool { return last(s) == 2 })
		if got := s.Got(); !slices.Equal(got, []int64{2}) {
			t.Errorf("late subscription saw %v, want [2]", got)
		}
	})
	t.Run("PublishAfterItsContextEnds", func(t *testing.T) {
		t.Parallel()
		n := open(t)
		s := subscribe(t, n)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := n.New().Publish(ctx, 7); err == nil {
			t.Error("Publish() with a canceled context = nil, want its error")
		}
		if err := n.New().Publish(t.Context(), 8); err != nil {
			t.Fatal(err)
		}
		testenv.Poll(t, "version 8", func() bool { return last(s) == 8 })
		if got := s.Got(); !slices.Equal(got, []int64{8}) {
			t.Errorf("subscription saw %v, want [8]", got)
		}
	})
}

// versions is a subscription's record of the versions it saw.
type versions = testenv.Subscription[int64]

// subscribe opens a subscription on a new notifier of n and waits until the channel
// counts it.
func subscribe(t *testing.T, n Notifiers) *versions {
	t.Helper()
	before := n.Subscriptions()
	s := testenv.Subscribe(t, n.New().Subscribe, nil)
	testenv.Poll(t, "the subscription", func() bool { return n.Subscriptions() > before })
	return s
}

// last returns the last version s saw, 0 before any.
func last(s *versions) int64 {
	got := s.Got()
	if len(got) == 0 {
		return 0
	}
	return got[len(got)-1]
}

// increasing reports whether vs is strictly increasing.
func increasing(vs []int64) bool {
	for i := 1; i < len(vs); i++ {
		if vs[i] <= vs[i-1] {
			return false
		}
	}
	return true
}
