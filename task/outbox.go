package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"boxoffice/clock"
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
	outbox  Outbox
	publish func(ctx context.Context, ids ...string) error
	cfg     RedriverConfig
	log     *slog.Logger
}

// RedriverConfig tunes a Redriver. Kind, Interval and LostAfter are required.
type RedriverConfig struct {
	Kind      string           // the kind of the tasks it re-drives
	Interval  time.Duration    // between rounds; also how long an unpublished task is given
	LostAfter time.Duration    // how long a published task may wait for an attempt
	Clock     clock.Clock      // makes the ticker of the rounds; nil is clock.System
	Now       func() time.Time // nil is Clock's
	// Redriven, when set, is told how many tasks each round published again.
	Redriven func(n int)
}

// NewRedriver returns a Redriver that claims tasks in outbox and publishes their
// messages again with publish, as their enqueue did (for recalculations,
// pricing.Requeue). It panics on a missing dependency, an empty Kind or an Interval or
// LostAfter that is not positive: a programming mistake.
func NewRedriver(outbox Outbox, publish func(ctx context.Context, ids ...string) error, cfg RedriverConfig, log *slog.Logger) *Redriver {
	if outbox == nil || publish == nil || log == nil {
		panic("task: NewRedriver: a nil outbox, publish or log")
	}
	if cfg.Kind == "" || cfg.Interval <= 0 || cfg.LostAfter <= 0 {
		panic(fmt.Sprintf("task: NewRedriver: Kind %q, Interval %v and LostAfter %v: want a kind and positive durations", cfg.Kind, cfg.Interval, cfg.LostAfter))
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Now == nil {
		cfg.Now = cfg.Clock.Now
	}
	return &Redriver{outbox: outbox, publish: publish, cfg: cfg, log: log}
}

// Run re-drives at once, then every Interval, until ctx is done; it returns nil then. A
// round that fails is logged, and the next one tries again.
func (r *Redriver) Run(ctx context.Context) error {
	t := r.cfg.Clock.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := r.Redrive(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("task outbox: re-drive failed; trying again at the next round", "kind", r.cfg.Kind, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// Redrive runs one round: it claims and publishes tasks, a batch at a time, until none
// is left to claim, and returns how many it published again. When a publish fails, the
// batch is recorded as unpublished, so that the next round takes it again.
func (r *Redriver) Redrive(ctx context.Context) (int, error) {
	now := r.cfg.Now()
	c := RedriveClaim{Now: now, Unpublished: now.Add(-r.cfg.Interval), Lost: now.Add(-r.cfg.LostAfter), Limit: redriveBatch}
	total := 0
	defer func() {
		if r.cfg.Redriven != nil && total > 0 {
			r.cfg.Redriven(total)
		}
	}()
	for {
		ids, err := r.outbox.ClaimRedrive(ctx, r.cfg.Kind, c)
		if err != nil {
			return total, err
		}
		if len(ids) > 0 {
			if err := r.publish(ctx, ids...); err != nil {
				if uerr := r.outbox.Published(context.WithoutCancel(ctx), time.Time{}, ids...); uerr != nil {
					err = errors.Join(err, uerr)
				}
				return total, fmt.Errorf("re-drive %d %s tasks: %w", len(ids), r.cfg.Kind, err)
			}
			total += len(ids)
			r.log.Warn("task outbox: published tasks again (never published, lost by the broker, or left running by a worker that died)",
				"kind", r.cfg.Kind, "tasks", len(ids), "task_ids", ids)
		}
		if len(ids) < c.Limit {
			return total, nil
		}
	}
}
