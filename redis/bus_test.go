package redis

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	goredis "github.com/redis/go-redis/v9"

	"boxoffice/pricing"
	"boxoffice/pricing/pricingtest"
	"boxoffice/testenv"
)

// subscribeBus records b's payloads until the test ends or Stop.
func subscribeBus(t *testing.T, b *Bus) *testenv.Subscription[[]byte] {
	return testenv.Subscribe(t, b.Subscribe, nil)
}

// newChannel returns a channel name no other test uses.
func newChannel() string { return "boxoffice-test:" + rand.Text() + ":market_events" }

// TestBus runs the pricing.Bus contract, each bus on a client of its own, as each
// process has.
func TestBus(t *testing.T) {
	pricingtest.TestBus(t, func(t *testing.T) pricingtest.Buses {
		admin := open(t)
		channel := newChannel()
		return pricingtest.Buses{
			New: func() pricing.Bus { return NewBus(open(t), channel, discard) },
			Subscriptions: func() int {
				counts, err := admin.rdb.PubSubNumSub(t.Context(), channel).Result()
				if err != nil {
					t.Fatal(err)
				}
				return int(counts[channel])
			},
		}
	})
}

func TestBusResubscribesAfterAnOutage(t *testing.T) {
	t.Parallel()
	admin := open(t)
	channel := newChannel()
	px, c := proxied(t)
	var logs testenv.Logs
	s := subscribeBus(t, NewBus(c, channel, slog.New(slog.NewTextHandler(&logs, nil))))
	explainFailure(t, &logs, s)
	pub := NewBus(admin, channel, discard)
	waitSubscribers(t, admin, channel, 1)
	waitConfirmed(t, s, func() error { return pub.Publish(t.Context(), []byte("before")) })

	px.cut()
	waitSubscribers(t, admin, channel, 0)
	testenv.Poll(t, "the loss to be logged", func() bool { return logs.Count("market events subscription lost") == 1 })
	if err := pub.Publish(t.Context(), []byte("lost")); err != nil { // no one hears this one
		t.Fatal(err)
	}
	if s.Exited() {
		t.Fatalf("Subscribe() returned %v during an outage, want it to keep trying", s.Stop())
	}

	px.restore()
	waitSubscribers(t, admin, channel, 1)
	if err := pub.Publish(t.Context(), []byte("after")); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, "the payload published after the outage", func() bool { return len(s.Got()) == 2 })
	if diff := cmp.Diff([][]byte{[]byte("before"), []byte("after")}, s.Got()); diff != "" {
		t.Errorf("payloads (-want +got):\n%s", diff)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("Subscribe() = %v after its context ended, want nil", err)
	}
	if n := logs.Count("market events subscription restored"); n != 1 {
		t.Errorf("logged %d recoveries, want 1:\n%s", n, logs.String())
	}
}

func TestBusReplacesAConnectionThatStopsAnswering(t *testing.T) {
	t.Parallel()
	admin := open(t)
	channel := newChannel()
	px, c := proxied(t)
	var logs testenv.Logs
	b := NewBus(c, channel, slog.New(slog.NewTextHandler(&logs, nil)))
	b.health = 200 * time.Millisecond
	s := subscribeBus(t, b)
	pub := NewBus(admin, channel, discard)
	waitSubscribers(t, admin, channel, 1)
	waitConfirmed(t, s, func() error { return pub.Publish(t.Context(), []byte("before")) })

	px.freeze()
	waitSilentLoss(t, &logs, s)
	waitSubscribers(t, admin, channel, 0)
	px.restore()
	waitSubscribers(t, admin, channel, 1)
	if err := pub.Publish(t.Context(), []byte("after")); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, "the payload published after the freeze", func() bool { return len(s.Got()) > 1 })
	if diff := cmp.Diff([][]byte{[]byte("before"), []byte("after")}, s.Got()); diff != "" {
		t.Errorf("payloads (-want +got):\n%s", diff)
	}
}

func TestBusFailsWhenRedisIsUnreachable(t *testing.T) {
	t.Parallel()
	px, c := proxied(t)
	channel := newChannel()
	b := NewBus(c, channel, discard)
	px.cut()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := b.Publish(ctx, []byte("x")); err == nil || !strings.HasPrefix(err.Error(), "redis bus: publish on "+channel) {
		t.Errorf("Publish() = %v, want an error naming %s", err, channel)
	}
	err := b.Subscribe(t.Context(), func([]byte) { t.Error("a payload without a subscription") })
	if err == nil || !strings.HasPrefix(err.Error(), "redis bus: subscribe to "+channel) {
		t.Errorf("Subscribe() = %v, want an error naming %s", err, channel)
	}
}

// TestBusSubscribeFailsWhenItsSubscriptionIsNotConfirmed loses the confirmation of the
// first SUBSCRIBE on its way back, on a connection that stays open: Redis has the
// subscription, the subscriber never learns it. Subscribe must return the timeout,
// naming the channel, as for any first subscription that fails, and leave no
// subscription behind.
func TestBusSubscribeFailsWhenItsSubscriptionIsNotConfirmed(t *testing.T) {
	t.Parallel()
	admin := open(t)
	channel := newChannel()
	px, c := proxied(t)
	var logs testenv.Logs
	b := NewBus(c, channel, slog.New(slog.NewTextHandler(&logs, nil)))
	b.confirm = 200 * time.Millisecond
	px.dropRepliesAfter("subscribe")
	s := subscribeBus(t, b)
	testenv.Poll(t, "Subscribe to return", s.Exited)
	if err := s.Stop(); !isTimeout(err) || !strings.HasPrefix(err.Error(), "redis bus: subscribe to "+channel) {
		t.Errorf("Subscribe() = %v, want a timeout naming %s", err, channel)
	}
	waitSubscribers(t, admin, channel, 0)
	if got := s.Got(); len(got) != 0 {
		t.Errorf("payloads = %q without a subscription", got)
	}
	if logs.String() != "" {
		t.Errorf("logged %q, want nothing: the error is Subscribe's to return", logs.String())
	}
}

func TestBusSubscribeReturnsWhenTheClientCloses(t *testing.T) {
	t.Parallel()
	admin := open(t)
	channel := newChannel()
	c := open(t)
	s := subscribeBus(t, NewBus(c, channel, discard))
	waitSubscribers(t, admin, channel, 1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, "Subscribe to return", s.Exited)
	if err := s.Stop(); !errors.Is(err, goredis.ErrClosed) {
		t.Errorf("Subscribe() = %v after Close(), want ErrClosed", err)
	}
}
