package pricing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"boxoffice/pricing"
	"boxoffice/task"
	"boxoffice/task/tasktest"
)

// handingLocker hands each lock it takes to taken as well: the test's way to take a
// run's lock from it, as an expiry would while the run is cut off from Redis.
type handingLocker struct {
	task.Locker
	taken chan task.Lock
}

func (h handingLocker) Lock(ctx context.Context, key string, ttl time.Duration) (task.Lock, error) {
	l, err := h.Locker.Lock(ctx, key, ttl)
	if err == nil {
		h.taken <- l
	}
	return l, err
}

// TestARunThatLostItsLockLeavesTheRecordToTheRunThatTookOver has run A start a
// recalculation and lose its lock; run B (a re-driven delivery) takes the lock over
// and is still running when A fails, on an attempt to be retried or on its last one:
// the record must stay B's, running, and A's message be acknowledged; once B succeeds
// the task reads succeeded with B's result, not failed or pending by A.
func TestARunThatLostItsLockLeavesTheRecordToTheRunThatTookOver(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		seed(t, r.store, 3)
		for _, attempt := range []int{1, testRetry.MaxAttempts} {
			t.Run(fmt.Sprintf("attempt %d of %d", attempt, testRetry.MaxAttempts), func(t *testing.T) {
				rec := tasktest.CreateTask(t, r.store, pricing.Kind, "api", time.Now())
				r.readable(t, rec.ID)

				cut := heldStore{stores: r.store, running: make(chan struct{}), release: make(chan struct{}), saves: new(atomic.Int32),
					cut: fmt.Errorf("save prices: %w", connectionRefused())}
				locks := handingLocker{Locker: r.locker, taken: make(chan task.Lock, 1)}
				a := pricing.NewRecalculator(cut, r.store, r.cache, locks, r.recalcConfig(), r.log)
				aDone := make(chan error, 1)
				go func() { aDone <- a.Handle(t.Context(), recalculateMessage(t, rec.ID, attempt)) }()
				<-cut.running
				if err := (<-locks.taken).Unlock(t.Context()); err != nil { // A's lock is lost
					t.Fatal(err)
				}

				held := heldStore{stores: r.store, running: make(chan struct{}), release: make(chan struct{}), saves: new(atomic.Int32)}
				bDone := make(chan error, 1)
				go func() { bDone <- r.recalculator(held).Handle(t.Context(), recalculateMessage(t, rec.ID, 1)) }()
				<-held.running // B holds the lock and runs
				taken, err := r.primary.Task(t.Context(), rec.ID)
				if err != nil {
					t.Fatal(err)
				}
				if taken.State != task.Running || taken.Attempts <= attempt {
					t.Fatalf("B took the task over as %s after %d attempts, want running after more than A's %d", taken.State, taken.Attempts, attempt)
				}

				close(cut.release) // A fails
				if err := <-aDone; err != nil {
					t.Errorf("A, superseded: %v, want its message acknowledged", err)
				}
				got, err := r.primary.Task(t.Context(), rec.ID)
				if err != nil {
					t.Fatal(err)
				}
				tasktest.WantRecord(t, "Task() after A failed", taken, got)

				close(held.release) // B succeeds
				if err := <-bDone; err != nil {
					t.Fatalf("B: %v", err)
				}
				got, err = r.primary.Task(t.Context(), rec.ID)
				if err != nil {
					t.Fatal(err)
				}
				var res pricing.Result
				if err := json.Unmarshal(got.Result, &res); err != nil {
					t.Fatalf("result %s: %v", got.Result, err)
				}
				if got.State != task.Succeeded || got.Attempts != taken.Attempts || got.ErrorCode != "" || res.Products != 6 || res.CoveredBy != 0 {
					t.Errorf("task ended %s (%q) after %d attempts with %s, want succeeded after B's %d with B's run of 6 products",
						got.State, got.ErrorCode, got.Attempts, got.Result, taken.Attempts)
				}
			})
		}
	})
}
