package redis

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	goredis "github.com/redis/go-redis/v9"
)

// busSubscriber runs Bus.Subscribe on its own goroutine until stop or the end of the
// test, and records the payloads it delivers.
type busSubscriber struct {
	cancel context.CancelFunc
	exit   chan struct{} // closed when Subscribe has returned err

	mu  sync.Mutex // guards got and err
	got [][]byte
	err error
}

func subscribeBus(t *testing.T, b *Bus) *busSubscriber {
	ctx, cancel := context.WithCancel(context.Background())
	s := &busSubscriber{cancel: cancel, exit: make(chan struct{})}
	go func() {
		err := b.Subscribe(ctx, func(p []byte) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.got = append(s.got, p)
		})
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.exit)
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *busSubscriber) payloads() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func (s *busSubscriber) exited() bool {
	select {
	case <-s.exit:
		return true
	default:
		return false
	}
}

// stop ends the subscription's context and returns what Subscribe returned.
func (s *busSubscriber) stop() error {
	s.cancel()
	<-s.exit
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// newChannel returns a channel name no other test uses.
func newChannel() string { return "boxoffice-test:" + rand.Text() + ":market_events" }

func TestBusDeliversInOrderToEverySubscriber(t *testing.T) {
	t.Parallel()
	admin := open(t)
	channel := newChannel()
	a := subscribeBus(t, NewBus(open(t), channel, discard))
	b := subscribeBus(t, NewBus(open(t), channel, discard))
	pub := NewBus(admin, channel, discard)
	waitSubscribers(t, admin, channel, 2)

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
	wait(t, "every payload at both subscribers", func() bool {
		return len(a.payloads()) >= len(want) && len(b.payloads()) >= len(want)
	})
	for name, s := range map[string]*busSubscriber{"first": a, "second": b} {
		if diff := cmp.Diff(want, s.payloads()); diff != "" {
			t.Errorf("%s subscriber's payloads (-want +got):\n%s", name, diff)
		}
		if err := s.stop(); err != nil {
			t.Errorf("%s Subscribe() = %v after its context ended, want nil", name, err)
		}
	}
	waitSubscribers(t, admin, channel, 0)
}

func TestBusResubscribesAfterAnOutage(t *testing.T) {
	t.Parallel()
	admin := open(t)
	channel := newChannel()
	px, c := proxied(t)
	var logs logBuffer
	s := subscribeBus(t, NewBus(c, channel, slog.New(slog.NewTextHandler(&logs, nil))))
	pub := NewBus(admin, channel, discard)
	waitSubscribers(t, admin, channel, 1)
	if err := pub.Publish(t.Context(), []byte("before")); err != nil {
		t.Fatal(err)
	}
	wait(t, "the first payload", func() bool { return len(s.payloads()) == 1 })

	px.cut()
	waitSubscribers(t, admin, channel, 0)
	wait(t, "the loss to be logged", func() bool { return logs.count("market events subscription lost") == 1 })
	if err := pub.Publish(t.Context(), []byte("lost")); err != nil { // no one hears this one
		t.Fatal(err)
	}
	if s.exited() {
		t.Fatalf("Subscribe() returned %v during an outage, want it to keep trying", s.stop())
	}

	px.restore()
	waitSubscribers(t, admin, channel, 1)
	if err := pub.Publish(t.Context(), []byte("after")); err != nil {
		t.Fatal(err)
	}
	wait(t, "the payload published after the outage", func() bool { return len(s.payloads()) == 2 })
	if diff := cmp.Diff([][]byte{[]byte("before"), []byte("after")}, s.payloads()); diff != "" {
		t.Errorf("payloads (-want +got):\n%s", diff)
	}
	if err := s.stop(); err != nil {
		t.Errorf("Subscribe() = %v after its context ended, want nil", err)
	}
	if n := logs.count("market events subscription restored"); n != 1 {
		t.Errorf("logged %d recoveries, want 1:\n%s", n, logs.String())
	}
}

func TestBusReplacesAConnectionThatStopsAnswering(t *testing.T) {
	t.Parallel()
	admin := open(t)
	channel := newChannel()
	px, c := proxied(t)
	var logs logBuffer
	b := NewBus(c, channel, slog.New(slog.NewTextHandler(&logs, nil)))
	b.health = 200 * time.Millisecond
	s := subscribeBus(t, b)
	waitSubscribers(t, admin, channel, 1)

	px.freeze()
	wait(t, "the silent loss to be noticed", func() bool { return logs.count("no answer to a ping") > 0 })
	waitSubscribers(t, admin, channel, 0)
	px.restore()
	waitSubscribers(t, admin, channel, 1)
	if err := NewBus(admin, channel, discard).Publish(t.Context(), []byte("3")); err != nil {
		t.Fatal(err)
	}
	wait(t, "the payload", func() bool { return len(s.payloads()) > 0 })
	if got := s.payloads(); !bytes.Equal(got[0], []byte("3")) || len(got) != 1 {
		t.Errorf("payloads = %q, want [\"3\"]", got)
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
	wait(t, "Subscribe to return", s.exited)
	if err := s.stop(); !errors.Is(err, goredis.ErrClosed) {
		t.Errorf("Subscribe() = %v after Close(), want ErrClosed", err)
	}
}
