package memory

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"boxoffice/clock/clocktest"
	"boxoffice/pricing"
	"boxoffice/pricing/pricingtest"
	"boxoffice/testenv"
)

func TestPriceCache(t *testing.T) {
	t.Parallel()
	c := clocktest.NewManual(time.Unix(0, 0))
	pricingtest.TestCache(t, NewPriceCache(100, c), c.Advance)
}

func TestPriceCacheIsBounded(t *testing.T) {
	t.Parallel()
	c := NewPriceCache(10, nil)
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
	c := NewPriceCache(10, nil)
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
	NewPriceCache(0, nil)
}

// subscribeBus subscribes a recorder, which then calls f when f is not nil, and waits
// until the Bus counts the subscription.
func subscribeBus(t *testing.T, b *Bus, f func([]byte)) *testenv.Subscription[string] {
	t.Helper()
	before := subscriptions(b)
	s := testenv.Subscribe(t, func(ctx context.Context, fn func(string)) error {
		return b.Subscribe(ctx, func(p []byte) {
			fn(string(p))
			if f != nil {
				f(p)
			}
		})
	}, nil)
	testenv.Poll(t, "the subscription", func() bool { return subscriptions(b) > before })
	return s
}

func subscriptions(b *Bus) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

func publish(t *testing.T, b *Bus, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		if err := b.Publish(t.Context(), []byte(p)); err != nil {
			t.Fatalf("Publish(%q) = %v", p, err)
		}
	}
}

// TestBus runs the pricing.Bus contract on one Bus, as one process has, and checks
// that it dropped nothing meanwhile.
func TestBus(t *testing.T) {
	pricingtest.TestBus(t, func(t *testing.T) pricingtest.Buses {
		b := NewBus()
		t.Cleanup(func() {
			if n := b.Dropped(); n != 0 {
				t.Errorf("Dropped() = %d, want 0", n)
			}
		})
		return pricingtest.Buses{New: func() pricing.Bus { return b }, Subscriptions: func() int { return subscriptions(b) }}
	})
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
	testenv.Poll(t, "the slow subscriber to block on the first payload", func() bool { return len(slow.Got()) == 1 })
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
	testenv.Poll(t, "the first round at the fast subscriber", func() bool { return len(fast.Got()) == busBuffer+1 })
	publish(t, b, want[busBuffer:]...)
	if n := b.Dropped(); n != extra {
		t.Errorf("Dropped() = %d, want %d", n, extra)
	}
	testenv.Poll(t, "every payload at the fast subscriber", func() bool { return len(fast.Got()) == len(want)+1 })
	if diff := cmp.Diff(append([]string{"0"}, want...), fast.Got()); diff != "" {
		t.Errorf("fast subscriber's payloads (-want +got):\n%s", diff)
	}

	close(release)
	testenv.Poll(t, "the slow subscriber to catch up", func() bool { return len(slow.Got()) == busBuffer+1 })
	publish(t, b, "after")
	testenv.Poll(t, "the payload after the drops", func() bool { return len(slow.Got()) == busBuffer+2 })
	wantSlow := append([]string{"0"}, want[:busBuffer]...)
	wantSlow = append(wantSlow, "after")
	if diff := cmp.Diff(wantSlow, slow.Got()); diff != "" {
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
	testenv.Poll(t, "the payload at both", func() bool { return len(first.Got()) == 1 && len(second.Got()) == 1 })
	if got := second.Got(); got[0] != "abc" {
		t.Errorf("second subscriber got %q, want %q", got[0], "abc")
	}
}
