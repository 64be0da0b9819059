package clock_test

import (
	"context"
	"testing"
	"time"

	"boxoffice/clock"
	"boxoffice/clock/clocktest"
	"boxoffice/testenv"
)

func TestEveryCallsOnEachTickUntilFalse(t *testing.T) {
	c := clocktest.NewManual(time.Unix(0, 0))
	calls := make(chan int, 3)
	done := make(chan struct{})
	n := 0
	go func() {
		defer close(done)
		clock.Every(context.Background(), c, time.Second, func() bool {
			n++
			calls <- n
			return n < 2
		})
	}()
	testenv.Poll(t, "Every's ticker", func() bool { return c.Waiters() == 1 })
	c.Advance(999 * time.Millisecond)
	select {
	case k := <-calls:
		t.Fatalf("call %d before the first tick", k)
	default:
	}
	c.Advance(time.Millisecond)
	if k := <-calls; k != 1 {
		t.Fatalf("call %d at the first tick, want 1", k)
	}
	c.Advance(time.Second)
	if k := <-calls; k != 2 {
		t.Fatalf("call %d at the second tick, want 2", k)
	}
	<-done // f returned false: Every returns
	if c.Waiters() != 0 {
		t.Errorf("%d waiters after Every returned, want its ticker stopped", c.Waiters())
	}
}

func TestEveryReturnsWhenTheContextEnds(t *testing.T) {
	c := clocktest.NewManual(time.Unix(0, 0))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		clock.Every(ctx, c, time.Second, func() bool { t.Error("f called without a tick"); return true })
	}()
	testenv.Poll(t, "Every's ticker", func() bool { return c.Waiters() == 1 })
	cancel()
	<-done
}
