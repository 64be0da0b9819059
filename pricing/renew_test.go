package pricing_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"boxoffice/catalog"
	"boxoffice/clock/clocktest"
	"boxoffice/memory"
	"boxoffice/pricing"
	"boxoffice/task"
	"boxoffice/testenv"
)

// countingLocker hands out locks whose Refresh calls it counts.
type countingLocker struct {
	task.Locker
	refreshes atomic.Int64
}

func (l *countingLocker) Lock(ctx context.Context, key string, ttl time.Duration) (task.Lock, error) {
	k, err := l.Locker.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return countingLock{Lock: k, n: &l.refreshes}, nil
}

type countingLock struct {
	task.Lock
	n *atomic.Int64
}

func (k countingLock) Refresh(ctx context.Context, ttl time.Duration) error {
	k.n.Add(1)
	return k.Lock.Refresh(ctx, ttl)
}

// gatedStore holds a run's first read of products until release is closed, after
// closing reading.
type gatedStore struct {
	pricing.Store
	once             sync.Once
	reading, release chan struct{}
}

func (s *gatedStore) ProductsAfter(ctx context.Context, after catalog.ID, limit int) ([]pricing.Priced, error) {
	s.once.Do(func() {
		close(s.reading)
		<-s.release
	})
	return s.Store.ProductsAfter(ctx, after, limit)
}

// TestLockRenewalEndsWithTheRun holds a run in its first read while the manual clock
// passes a renewal, and checks that the lock is refreshed while the run holds it, and
// that once Handle returns the renewal has stopped: no ticker is left on the clock, and
// advancing it refreshes nothing more.
func TestLockRenewalEndsWithTheRun(t *testing.T) {
	r := embedded(t)
	seed(t, r.store, 2)
	clk := clocktest.NewManual(time.Now())
	locker := &countingLocker{Locker: memory.NewLocker(clk)}
	store := &gatedStore{Store: r.store, reading: make(chan struct{}), release: make(chan struct{})}
	cfg := r.recalcConfig()
	cfg.Clock = clk
	rc := pricing.NewRecalculator(store, r.store, r.cache, locker, cfg, r.log)
	renewal := cfg.LockTTL / 3

	rec, err := r.store.CreateTask(t.Context(), pricing.Kind, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(pricing.RecalculateMessage{TaskID: rec.ID})
	done := make(chan error, 1)
	go func() {
		done <- rc.Handle(t.Context(), task.Message{Topic: pricing.TopicRecalculate, ID: rec.ID, Body: body, Attempt: 1})
	}()
	<-store.reading
	testenv.Poll(t, "the renewal's ticker", func() bool { return clk.Waiters() == 1 })
	clk.Advance(renewal)
	testenv.Poll(t, "a refresh while the run holds the lock", func() bool { return locker.refreshes.Load() == 1 })
	close(store.release)
	if err := <-done; err != nil {
		t.Fatalf("Handle() = %v", err)
	}

	if n := clk.Waiters(); n != 0 {
		t.Errorf("%d timers or tickers on the clock after Handle returned, want none: the renewal outlived the run", n)
	}
	for range 5 {
		clk.Advance(renewal)
	}
	if n := locker.refreshes.Load(); n != 1 {
		t.Errorf("%d refreshes after 5 more renewal periods past the run, want the 1 made during it", n)
	}
	if got := r.await(t, rec.ID); got.State != task.Succeeded {
		t.Errorf("task ended %s (%s), want succeeded", got.State, got.Error)
	}
}
