package memory

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"boxoffice/pricing/pricingtest"
)

func TestPriceCache(t *testing.T) {
	t.Parallel()
	pricingtest.TestCache(t, NewPriceCache(100))
}

func TestPriceCacheIsBounded(t *testing.T) {
	t.Parallel()
	c := NewPriceCache(10)
	ctx := t.Context()
	if err := c.SetVersion(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if err := c.Set(ctx, strconv.Itoa(i), 1, []byte("quote"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	c.entries.CleanUp() // runs the eviction that writes may have left to a goroutine
	if n := c.entries.EstimatedSize(); n > 10 {
		t.Errorf("%d entries after 1000 Sets, want at most 10", n)
	}
	hits := 0
	for i := range 1000 {
		entry, _, err := c.Get(ctx, strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		if entry != nil {
			hits++
		}
	}
	if hits > 10 {
		t.Errorf("%d hits among 1000 keys, want at most 10", hits)
	}
}

func TestPriceCacheRejectsTTLsThatAreNotPositive(t *testing.T) {
	t.Parallel()
	c := NewPriceCache(10)
	ctx := t.Context()
	if err := c.SetVersion(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := c.Set(ctx, "k", 1, []byte("v"), ttl); err == nil {
			t.Errorf("Set() with ttl %v succeeded, want an error", ttl)
		}
	}
	if entry, _, err := c.Get(ctx, "k"); err != nil || entry != nil {
		t.Errorf("Get() after rejected Sets = %q, %v, want a miss", entry, err)
	}
}

func TestNewPriceCachePanicsWithoutEntries(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewPriceCache(0) did not panic")
		}
	}()
	NewPriceCache(0)
}

// busSubscriber runs Bus.Subscribe on its own goroutine until stop or the end of the
// test, and records the payloads it delivers.
type busSubscriber struct {
	cancel context.CancelFunc
	exit   chan struct{} // closed when Subscribe has returned err

	mu  sync.Mutex // guards got and err
	got []string
	err error
}

// subscribeBus subscribes f, or a recorder when f is nil, and waits until the Bus
// counts the subscription.
func subscribeBus(t *testing.T, b *Bus, f func([]byte)) *busSubscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &busSubscriber{cancel: cancel, exit: make(chan struct{})}
	before := subscriptions(b)
	go func() {
		err := b.Subscribe(ctx, func(p []byte) {
			s.mu.Lock()
			s.got = append(s.got, string(p))
			s.mu.Unlock()
			if f != nil {
				f(p)
			}
		})
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.exit)
	}()
	t.Cleanup(func() { s.stop() })
	wait(t, "the subscription", func() bool { return subscriptions(b) > before })
	return s
}

func (s *busSubscriber) payloads() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// stop ends the subscription's context and returns what Subscribe returned.
func (s *busSubscriber) stop() error {
	s.cancel()
	<-s.exit
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func subscriptions(b *Bus) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// wait polls cond until it holds or the deadline passes.
func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func publish(t *testing.T, b *Bus, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		if err := b.Publish(t.Context(), []byte(p)); err != nil {
			t.Fatalf("Publish(%q) = %v", p, err)
		}
	}
}

func TestBusDeliversInOrderToEverySubscriber(t *testing.T) {
	t.Parallel()
	b := NewBus()
	a := subscribeBus(t, b, nil)
	c := subscribeBus(t, b, nil)
	var want []string
	for i := range 100 {
		want = append(want, fmt.Sprintf(`{"event_id":%d}`, i+1))
	}
	publish(t, b, want...)
	wait(t, "every payload at both subscribers", func() bool {
		return len(a.payloads()) >= len(want) && len(c.payloads()) >= len(want)
	})
	for name, s := range map[string]*busSubscriber{"first": a, "second": c} {
		if diff := cmp.Diff(want, s.payloads()); diff != "" {
			t.Errorf("%s subscriber's payloads (-want +got):\n%s", name, diff)
		}
		if err := s.stop(); err != nil {
			t.Errorf("%s Subscribe() = %v after its context ended, want nil", name, err)
		}
	}
	if n := subscriptions(b); n != 0 {
		t.Errorf("%d subscriptions after both stopped, want 0", n)
	}
	if n := b.Dropped(); n != 0 {
		t.Errorf("Dropped() = %d, want 0", n)
	}
}

func TestBusLateSubscriberMissesEarlierPayloads(t *testing.T) {
	t.Parallel()
	b := NewBus()
	publish(t, b, "nobody listens")
	early := subscribeBus(t, b, nil)
	publish(t, b, "1")
	wait(t, "the early subscriber's payload", func() bool { return len(early.payloads()) == 1 })
	late := subscribeBus(t, b, nil)
	publish(t, b, "2")
	wait(t, "payload 2 at both", func() bool { return len(early.payloads()) == 2 && len(late.payloads()) > 0 })
	if diff := cmp.Diff([]string{"1", "2"}, early.payloads()); diff != "" {
		t.Errorf("early subscriber's payloads (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"2"}, late.payloads()); diff != "" {
		t.Errorf("late subscriber's payloads (-want +got):\n%s", diff)
	}
}

func TestBusNeverBlocksOnASlowSubscriber(t *testing.T) {
	t.Parallel()
	b := NewBus()
	release := make(chan struct{})
	slow := subscribeBus(t, b, func(p []byte) {
		if string(p) == "0" {
			<-release
		}
	})
	fast := subscribeBus(t, b, nil)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	publish(t, b, "0")
	wait(t, "the slow subscriber to block on the first payload", func() bool { return len(slow.payloads()) == 1 })
	// The slow subscriber's buffer takes busBuffer payloads; the rest are dropped for it
	// alone. Publish returns meanwhile: were it to block, the test would hang here. The
	// payloads go out in two rounds that each fit the fast subscriber's buffer, so that
	// only the slow one drops.
	const extra = 10
	var want []string
	for i := range busBuffer + extra {
		want = append(want, strconv.Itoa(i+1))
	}
	publish(t, b, want[:busBuffer]...)
	wait(t, "the first round at the fast subscriber", func() bool { return len(fast.payloads()) == busBuffer+1 })
	publish(t, b, want[busBuffer:]...)
	if n := b.Dropped(); n != extra {
		t.Errorf("Dropped() = %d, want %d", n, extra)
	}
	wait(t, "every payload at the fast subscriber", func() bool { return len(fast.payloads()) == len(want)+1 })
	if diff := cmp.Diff(append([]string{"0"}, want...), fast.payloads()); diff != "" {
		t.Errorf("fast subscriber's payloads (-want +got):\n%s", diff)
	}

	close(release)
	wait(t, "the slow subscriber to catch up", func() bool { return len(slow.payloads()) == busBuffer+1 })
	publish(t, b, "after")
	wait(t, "the payload after the drops", func() bool { return len(slow.payloads()) == busBuffer+2 })
	wantSlow := append([]string{"0"}, want[:busBuffer]...)
	wantSlow = append(wantSlow, "after")
	if diff := cmp.Diff(wantSlow, slow.payloads()); diff != "" {
		t.Errorf("slow subscriber's payloads (-want +got):\n%s", diff)
	}
}

func TestBusPayloadsAreCopies(t *testing.T) {
	t.Parallel()
	b := NewBus()
	first := subscribeBus(t, b, func(p []byte) { p[0] = 'X' }) // a subscriber that scribbles
	second := subscribeBus(t, b, nil)
	buf := []byte("abc")
	if err := b.Publish(t.Context(), buf); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'Z' // the publisher reuses its buffer
	wait(t, "the payload at both", func() bool { return len(first.payloads()) == 1 && len(second.payloads()) == 1 })
	if got := second.payloads(); got[0] != "abc" {
		t.Errorf("second subscriber got %q, want %q", got[0], "abc")
	}
}

func TestBusPublishAfterItsContextEnds(t *testing.T) {
	t.Parallel()
	b := NewBus()
	s := subscribeBus(t, b, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Publish(ctx, []byte("x")); err == nil {
		t.Error("Publish() with a canceled context = nil, want its error")
	}
	publish(t, b, "y")
	wait(t, "the payload", func() bool { return len(s.payloads()) > 0 })
	if diff := cmp.Diff([]string{"y"}, s.payloads()); diff != "" {
		t.Errorf("payloads (-want +got):\n%s", diff)
	}
}
