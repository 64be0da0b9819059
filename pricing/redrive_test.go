package pricing_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"boxoffice/pricing"
	"boxoffice/task"
)

// lossyPublisher confirms every message and delivers none: a broker that loses them.
type lossyPublisher struct{}

func (lossyPublisher) Publish(context.Context, string, ...task.Message) error { return nil }

// countingWorker runs a worker of recalculations on the rig's broker until the test
// ends, counting the deliveries it handles and the runs that succeeded.
func (r *rig) countingWorker(t *testing.T) (deliveries, runs *atomic.Int32) {
	deliveries, runs = new(atomic.Int32), new(atomic.Int32)
	rc := r.recalculator(r.store)
	rc.Observe = func(outcome string, _ time.Duration) {
		if outcome == string(task.Succeeded) {
			runs.Add(1)
		}
	}
	handle := func(ctx context.Context, m task.Message) error {
		deliveries.Add(1)
		return rc.Handle(ctx, m)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	w := task.NewWorker(r.broker, map[string]task.Handler{pricing.TopicRecalculate: handle}, 1, r.log)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	return deliveries, runs
}

// redriver returns a Redriver of recalculations on the rig whose clock reads now().
func (r *rig) redriver(now func() time.Time) *task.Redriver {
	return &task.Redriver{
		Outbox: r.store, Kind: pricing.Kind,
		Publish:  func(ctx context.Context, ids ...string) error { return pricing.Requeue(ctx, r.broker, ids...) },
		Interval: time.Minute, LostAfter: 10 * time.Minute, Now: now, Log: r.log,
	}
}

// redriveConcurrently runs a round of two Redrivers at once and returns how many tasks
// they published again between them.
func redriveConcurrently(t *testing.T, a, b *task.Redriver) int {
	var (
		wg sync.WaitGroup
		n  [2]int
	)
	for i, d := range []*task.Redriver{a, b} {
		wg.Go(func() {
			var err error
			if n[i], err = d.Redrive(t.Context()); err != nil {
				t.Errorf("Redrive: %v", err)
			}
		})
	}
	wg.Wait()
	return n[0] + n[1]
}

// TestRedriveRunsATaskNeverPublishedOnce records a recalculation and publishes nothing,
// as a process that died between the two: two Redrivers at once publish it once, after
// its grace and not before, and it runs exactly once.
func TestRedriveRunsATaskNeverPublishedOnce(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		seed(t, r.store, 3)
		deliveries, runs := r.countingWorker(t)
		start := time.Now()
		rec, err := r.store.CreateTask(t.Context(), pricing.Kind, "api", start)
		if err != nil {
			t.Fatal(err)
		}
		early := func() time.Time { return start.Add(30 * time.Second) } // within Interval of the record
		if n := redriveConcurrently(t, r.redriver(early), r.redriver(early)); n != 0 {
			t.Fatalf("re-drives within the grace published %d tasks, want 0", n)
		}
		later := func() time.Time { return start.Add(2 * time.Minute) }
		if n := redriveConcurrently(t, r.redriver(later), r.redriver(later)); n != 1 {
			t.Fatalf("two concurrent re-drives published %d tasks, want 1", n)
		}
		got := r.await(t, rec.ID)
		if got.State != task.Succeeded || got.Attempts != 1 {
			t.Errorf("the re-driven task ended %s after %d attempts, want succeeded after 1", got.State, got.Attempts)
		}
		if n := redriveConcurrently(t, r.redriver(later), r.redriver(later)); n != 0 {
			t.Errorf("re-drives after it ran published %d tasks, want 0", n)
		}
		if d, n := deliveries.Load(), runs.Load(); d != 1 || n != 1 {
			t.Errorf("%d deliveries and %d runs, want 1 and 1", d, n)
		}
	})
}

// TestRedriveRunsALostTaskOnce enqueues a recalculation through a broker that confirms
// its message and loses it: the task is published again once LostAfter has passed, not
// before, and runs exactly once.
func TestRedriveRunsALostTaskOnce(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		seed(t, r.store, 3)
		deliveries, runs := r.countingWorker(t)
		start := time.Now()
		rec, err := pricing.Enqueue(t.Context(), r.store, lossyPublisher{}, "api", start)
		if err != nil {
			t.Fatal(err)
		}
		soon := func() time.Time { return start.Add(5 * time.Minute) } // published, not lost yet
		if n := redriveConcurrently(t, r.redriver(soon), r.redriver(soon)); n != 0 {
			t.Fatalf("re-drives before LostAfter published %d tasks, want 0", n)
		}
		later := func() time.Time { return start.Add(11 * time.Minute) }
		if n := redriveConcurrently(t, r.redriver(later), r.redriver(later)); n != 1 {
			t.Fatalf("two concurrent re-drives published %d tasks, want 1", n)
		}
		got := r.await(t, rec.ID)
		if got.State != task.Succeeded || got.Attempts != 1 {
			t.Errorf("the re-driven task ended %s after %d attempts, want succeeded after 1", got.State, got.Attempts)
		}
		if d, n := deliveries.Load(), runs.Load(); d != 1 || n != 1 {
			t.Errorf("%d deliveries and %d runs, want 1 and 1", d, n)
		}
	})
}
