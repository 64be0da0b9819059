package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Outbox is the task records' side of re-driving tasks: it knows which pending tasks
// had their message confirmed by the broker (Records.Published), and when. Implementations: sqlite.Store
// and postgres.Store; tasktest.TestOutbox is its contract.
type Outbox interface {
	// Published is Records.Published.
	Published(ctx context.Context, at time.Time, ids ...string) error
	// ClaimRedrive takes up to c.Limit unended tasks of kind whose messages need
	// publishing again, lowest generation first: pending ones never published and
	// requested before c.Unpublished, pending ones published before c.Lost with no
	// attempt started since c.Lost, and running ones whose attempt started before
	// c.Lost and that were not published since (a worker that died in the run, and a
	// broker that lost its message). It records them as published at c.Now in the same
	// statement, so that concurrent claims never take one task twice, and returns
	// their ids.
	ClaimRedrive(ctx context.Context, kind string, c RedriveClaim) ([]string, error)
}

// RedriveClaim says which tasks Outbox.ClaimRedrive takes.
type RedriveClaim struct {
	Now         time.Time // the tasks taken count as published at Now
	Unpublished time.Time // a task never published is taken when requested before it
	// Lost: a published task is taken when published before it and not attempted
	// since; a running one when its attempt started before it and it was not
	// published since.
	Lost  time.Time
	Limit int
}

// redriveBatch is how many tasks a Redriver claims and publishes at a time.
const redriveBatch = 100

// Redriver is the outbox's relay: it publishes again the unended tasks of one kind whose
// messages never reached the broker (a process that died between recording a task and
// publishing it, a publish confirmed but not recorded) or were lost by it (a purged
// queue, a broker that lost its disk, a worker that died in a run whose message the
// broker lost too). A message published twice is harmless: a task that has ended when
// its message arrives is acknowledged without running, a task that ends while its
// duplicate waits keeps its record (Records.SaveTask refuses to write over an end
// state), and runs of one kind hold a lock, so a task never runs twice at once.
//
// A task recorded and never published is published again once it is older than
// Interval; a task published and still pending, with no attempt started, once LostAfter
// passed since its publish or its last attempt: it may also be waiting in a long queue,
// which is why LostAfter is long; a task running, once LostAfter passed since its
// attempt started and since it was last published: its run may also be a long one in
// progress, whose duplicate waits for its lock and ends with it. Several Redrivers (one per worker) may run: each task
// is claimed by one of them per round (Outbox.ClaimRedrive).
type Redriver struct {
	Outbox Outbox
	Kind   string
	// Publish publishes the messages of the tasks ids, as their enqueue did (for
	// recalculations, pricing.Requeue).
	Publish   func(ctx context.Context, ids ...string) error
	Interval  time.Duration // between rounds; also how long an unpublished task is given
	LostAfter time.Duration // how long a published task may wait for an attempt
	Now       func() time.Time
	Log       *slog.Logger
	// Redriven, when set, is told how many tasks each round published again.
	Redriven func(n int)
}

// Run re-drives at once, then every Interval, until ctx is done; it returns nil then. A
// round that fails is logged, and the next one tries again.
func (r *Redriver) Run(ctx context.Context) error {
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		if _, err := r.Redrive(ctx); err != nil && ctx.Err() == nil {
			r.Log.Warn("task outbox: re-drive failed; trying again at the next round", "kind", r.Kind, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Redrive runs one round: it claims and publishes tasks, a batch at a time, until none
// is left to claim, and returns how many it published again. When a publish fails, the
// batch is recorded as unpublished, so that the next round takes it again.
func (r *Redriver) Redrive(ctx context.Context) (int, error) {
	now := r.Now()
	c := RedriveClaim{Now: now, Unpublished: now.Add(-r.Interval), Lost: now.Add(-r.LostAfter), Limit: redriveBatch}
	total := 0
	defer func() {
		if r.Redriven != nil && total > 0 {
			r.Redriven(total)
		}
	}()
	for {
		ids, err := r.Outbox.ClaimRedrive(ctx, r.Kind, c)
		if err != nil {
			return total, err
		}
		if len(ids) > 0 {
			if err := r.Publish(ctx, ids...); err != nil {
				if uerr := r.Outbox.Published(context.WithoutCancel(ctx), time.Time{}, ids...); uerr != nil {
					err = errors.Join(err, uerr)
				}
				return total, fmt.Errorf("re-drive %d %s tasks: %w", len(ids), r.Kind, err)
			}
			total += len(ids)
			r.Log.Warn("task outbox: published tasks again (never published, lost by the broker, or left running by a worker that died)",
				"kind", r.Kind, "tasks", len(ids), "task_ids", ids)
		}
		if len(ids) < c.Limit {
			return total, nil
		}
	}
}
