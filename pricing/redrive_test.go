package pricing_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"boxoffice/pricing"
	"boxoffice/task"
	"boxoffice/testenv"
)

// lossyPublisher confirms every message and delivers none: a broker that loses them.
type lossyPublisher struct{}

func (lossyPublisher) Publish(context.Context, string, ...task.Message) error { return nil }

// countingWorker runs a worker of recalculations on the rig's broker until the test
// ends, counting the deliveries it handles and the runs that succeeded.
func (r *rig) countingWorker(t *testing.T) (deliveries, runs *atomic.Int32) {
	deliveries, runs = new(atomic.Int32), new(atomic.Int32)
	cfg := r.recalcConfig()
	cfg.Observe = func(outcome string, _ time.Duration) {
		if outcome == string(task.Succeeded) {
			runs.Add(1)
		}
	}
	rc := pricing.NewRecalculator(r.store, r.store, r.cache, r.locker, cfg, r.log)
	handle := func(ctx context.Context, m task.Message) error {
		deliveries.Add(1)
		return rc.Handle(ctx, m)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	w := task.NewWorker(r.broker, map[string]task.Handler{pricing.TopicRecalculate: handle}, task.WorkerConfig{TracerProvider: r.tp}, r.log)
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
	return task.NewRedriver(r.store,
		func(ctx context.Context, ids ...string) error { return pricing.Requeue(ctx, r.broker, r.tp, ids...) },
		task.RedriverConfig{Kind: pricing.Kind, Interval: time.Minute, LostAfter: 10 * time.Minute, Now: now}, r.log)
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
		wantOneRun(t, deliveries, runs)
	})
}

// TestRedriveRunsALostTaskOnce enqueues a recalculation through a broker that confirms
// its message and loses it: the task is published again once LostAfter has passed, not
// before, and runs exactly once.
func TestRedriveRunsALostTaskOnce(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		rec, start, deliveries, runs := r.lostTask(t)
		// Published, not lost yet at +5m; lost at +11m.
		r.wantRedrivenOnce(t, rec.ID, start.Add(5*time.Minute), start.Add(11*time.Minute), 1, deliveries, runs)
	})
}

// lostTask seeds products, runs a counting worker and enqueues a recalculation through
// a broker that confirms its message and loses it, at start.
func (r *rig) lostTask(t *testing.T) (rec task.Record, start time.Time, deliveries, runs *atomic.Int32) {
	seed(t, r.store, 3)
	deliveries, runs = r.countingWorker(t)
	start = time.Now()
	rec, err := pricing.Enqueue(t.Context(), r.store, lossyPublisher{}, r.tp, "api", start)
	if err != nil {
		t.Fatal(err)
	}
	return rec, start, deliveries, runs
}

// wantRedrivenOnce runs two Redrivers at once at soon, when the task id must not be
// published again, then at later, when it must be, once; and checks that it ended
// succeeded after attempts, in one delivery and one run.
func (r *rig) wantRedrivenOnce(t *testing.T, id string, soon, later time.Time, attempts int, deliveries, runs *atomic.Int32) {
	t.Helper()
	at := func(tm time.Time) func() time.Time { return func() time.Time { return tm } }
	if n := redriveConcurrently(t, r.redriver(at(soon)), r.redriver(at(soon))); n != 0 {
		t.Fatalf("re-drives before LostAfter published %d tasks, want 0", n)
	}
	if n := redriveConcurrently(t, r.redriver(at(later)), r.redriver(at(later))); n != 1 {
		t.Fatalf("two concurrent re-drives published %d tasks, want 1", n)
	}
	got := r.await(t, id)
	if got.State != task.Succeeded || got.Attempts != attempts {
		t.Errorf("the re-driven task ended %s after %d attempts, want succeeded after %d", got.State, got.Attempts, attempts)
	}
	wantOneRun(t, deliveries, runs)
}

// wantOneRun checks that a countingWorker handled one delivery and one run, once the
// run is counted: the worker counts it just after recording the task ended.
func wantOneRun(t *testing.T, deliveries, runs *atomic.Int32) {
	t.Helper()
	testenv.Poll(t, "the run to be counted", func() bool { return runs.Load() >= 1 })
	if d, n := deliveries.Load(), runs.Load(); d != 1 || n != 1 {
		t.Errorf("%d deliveries and %d runs, want 1 and 1", d, n)
	}
}

// TestRedriveRunsATaskLeftRunningOnce leaves a recalculation running with no message
// anywhere, as a worker that died in the run while the broker lost its message: the
// task is published again once LostAfter has passed since its attempt started, not
// before, and runs exactly once more, counted as its second attempt.
func TestRedriveRunsATaskLeftRunningOnce(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		rec, start, deliveries, runs := r.lostTask(t)
		rec.State, rec.Attempts, rec.StartedAt = task.Running, 1, start.Add(time.Minute) // and its worker died
		if err := r.store.SaveTask(t.Context(), rec, 0); err != nil {
			t.Fatal(err)
		}
		// 9 minutes into the run at +10m; lost at +12m.
		r.wantRedrivenOnce(t, rec.ID, start.Add(10*time.Minute), start.Add(12*time.Minute), 2, deliveries, runs)
	})
}

// heldStore holds a run in its first SavePrices until release is closed, after telling
// running: a long recalculation in progress. With cut set, that SavePrices then fails
// with it: a run cut off from its store.
type heldStore struct {
	stores
	running, release chan struct{}
	saves            *atomic.Int32
	cut              error
}

func (h heldStore) SavePrices(ctx context.Context, p []pricing.Priced) error {
	if h.saves.Add(1) == 1 {
		close(h.running)
		<-h.release
		if h.cut != nil {
			return h.cut
		}
	}
	return h.stores.SavePrices(ctx, p)
}

// TestRedriveOfALongRunDoesNotRunItTwice re-drives a recalculation whose legitimate
// run outlasts LostAfter: the re-driven message is delivered to another worker while
// the run holds the lock; it waits for the lock, and once the run succeeds it is
// acknowledged without a second run and without touching the task's record.
func TestRedriveOfALongRunDoesNotRunItTwice(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		seed(t, r.store, 3)
		held := heldStore{stores: r.store, running: make(chan struct{}), release: make(chan struct{}), saves: new(atomic.Int32)}
		rec, err := pricing.Enqueue(t.Context(), r.store, lossyPublisher{}, r.tp, "api", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		r.readable(t, rec.ID)
		long := r.recalculator(held)
		longDone := make(chan error, 1)
		go func() { longDone <- long.Handle(t.Context(), recalculateMessage(t, rec.ID, 1)) }()
		<-held.running

		// A second worker, telling when its delivery waits for the lock and when it is done.
		contended, handled := make(chan struct{}, 100), make(chan error, 10)
		cfg := r.recalcConfig()
		cfg.Contend = func() { contended <- struct{}{} }
		dup := pricing.NewRecalculator(held, r.store, r.cache, r.locker, cfg, r.log)
		ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
		w := task.NewWorker(r.broker, map[string]task.Handler{pricing.TopicRecalculate: func(ctx context.Context, m task.Message) error {
			err := dup.Handle(ctx, m)
			handled <- err
			return err
		}}, task.WorkerConfig{TracerProvider: r.tp}, r.log)
		workerDone := make(chan error, 1)
		go func() { workerDone <- w.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-workerDone; err != nil {
				t.Errorf("worker: %v", err)
			}
		})

		later := func() time.Time { return time.Now().Add(11 * time.Minute) } // the run looks lost
		if n := redriveConcurrently(t, r.redriver(later), r.redriver(later)); n != 1 {
			t.Fatalf("two concurrent re-drives published %d tasks, want 1", n)
		}
		<-contended // the duplicate waits for the run's lock
		close(held.release)
		if err := <-longDone; err != nil {
			t.Fatalf("the long run: %v", err)
		}
		if err := <-handled; err != nil {
			t.Errorf("the re-driven delivery: %v, want it acknowledged", err)
		}
		got, err := r.primary.Task(t.Context(), rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		var res pricing.Result
		if err := json.Unmarshal(got.Result, &res); err != nil {
			t.Fatalf("result %s: %v", got.Result, err)
		}
		if got.State != task.Succeeded || got.Attempts != 1 || res.Products != 6 || res.CoveredBy != 0 {
			t.Errorf("task ended %s after %d attempts with %s, want succeeded after 1 with the long run's 6 products", got.State, got.Attempts, got.Result)
		}
		if n := held.saves.Load(); n != 1 {
			t.Errorf("%d batches of prices saved, want 1: one run of 6 products in batches of 7", n)
		}
	})
}
