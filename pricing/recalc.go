package pricing

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"boxoffice/catalog"
	"boxoffice/clock"
	"boxoffice/spans"
	"boxoffice/task"
)

// RecalcStore is what a Recalculator reads and writes (see Store).
type RecalcStore interface {
	// PricingState reads the state from the primary.
	PricingState(ctx context.Context) (State, error)
	// BeginRun folds the market events received so far into the markets, in id order
	// (Fold), and returns the run: the generation of the last trigger and the version
	// to publish.
	BeginRun(ctx context.Context, now time.Time) (Run, error)
	// ProductsAfter returns up to limit products with ids above after, in id order,
	// from the primary. The zero ID starts at the beginning.
	ProductsAfter(ctx context.Context, after catalog.ID, limit int) ([]Priced, error)
	// SavePrices writes the Surcharge, Price and Version of each product.
	SavePrices(ctx context.Context, prices []Priced) error
	// CompleteRun publishes run: Done becomes at least run.Gen and Version run.Version.
	CompleteRun(ctx context.Context, run Run, now time.Time) (State, error)
}

// Recalculator runs recalculation tasks: the broker's handler of TopicRecalculate.
//
// One recalculation runs at a time across workers: a run holds the lock LockKey, taken
// with a token and an expiry (LockTTL), renewed every LockTTL/3 while it runs, and
// released by its owner only. A run that loses its lock stops and is retried, unless
// another run took the task over meanwhile: the task's record is the run's by its
// attempt number (task.Records.StartTask), so the run that lost its lock finds its
// saves refused (task.ErrSuperseded) and leaves the record to the run that took over.
//
// Triggers coalesce. Each task carries the generation of its trigger; a run covers every
// trigger requested before it began (BeginRun reads the generation and the market
// events in one transaction). A task whose generation a completed run covers ends
// skipped, with the version that covered it; one that finds a run in progress waits for
// the lock (up to LockWait, then it is retried), because that run began before it was
// requested and may not cover it. So every trigger ends succeeded, skipped, or failed,
// and none is lost.
//
// Errors are retried with the broker's countdown until Retry.MaxAttempts deliveries
// (Celery's max_retries=5), then the task ends failed and the broker dead-letters it;
// task.Permanent errors fail it at once.
type Recalculator struct {
	store  RecalcStore
	tasks  task.Records // the recalculation tasks' records
	cache  Cache
	locker task.Locker
	cfg    RecalcConfig // with its defaults
	tracer trace.Tracer
	log    *slog.Logger
}

// LockKey is the recalculation's lock; the Locker adds the deployment's namespace.
const LockKey = "pricing:recalculate"

// RecalcConfig tunes a Recalculator. Zero fields take the defaults of the worker role.
type RecalcConfig struct {
	Policy Policy           // the zero Policy is DefaultPolicy
	Retry  task.RetryPolicy // the broker's policy, to know the last attempt; zero is task.DefaultRetry
	// LockKey is the lock of the runs (LockKey); LockTTL (30s) bounds how long a
	// crashed worker's run blocks the next, and a running one renews it every third of
	// it; LockWait (2m) is how long a task waits for a run in progress.
	LockKey           string
	LockTTL, LockWait time.Duration
	BatchSize         int // products per read and write; 0 is 1000
	// Clock makes the timers of the wait for the lock and the ticker of its renewal;
	// nil is clock.System.
	Clock clock.Clock
	// Now stamps the tasks and the prices' surcharges; nil is Clock's.
	Now func() time.Time
	// TracerProvider makes the span of each run; nil is tracing off.
	TracerProvider trace.TracerProvider
	// Observe, when set, is told of each attempt's outcome ("succeeded", "skipped",
	// "retried", "failed") and duration; Contend of each lock contention; Published of
	// each version a run publishes.
	Observe   func(outcome string, d time.Duration)
	Contend   func()
	Published func(version int64)
}

// NewRecalculator returns a Recalculator that prices the products of store, records
// the tasks' outcomes in tasks, publishes each version to cache and takes the runs'
// lock in locker. It panics on a missing dependency or a negative setting: a
// programming mistake.
func NewRecalculator(store RecalcStore, tasks task.Records, cache Cache, locker task.Locker, cfg RecalcConfig, log *slog.Logger) *Recalculator {
	if store == nil || tasks == nil || cache == nil || locker == nil || log == nil {
		panic("pricing: NewRecalculator: a nil store, tasks, cache, locker or log")
	}
	if cfg.LockTTL < 0 || cfg.LockWait < 0 || cfg.BatchSize < 0 {
		panic(fmt.Sprintf("pricing: NewRecalculator: negative LockTTL %v, LockWait %v or BatchSize %d", cfg.LockTTL, cfg.LockWait, cfg.BatchSize))
	}
	if cfg.Policy == (Policy{}) {
		cfg.Policy = DefaultPolicy
	}
	if cfg.Retry == (task.RetryPolicy{}) {
		cfg.Retry = task.DefaultRetry
	}
	cfg.LockKey = cmp.Or(cfg.LockKey, LockKey)
	cfg.LockTTL = cmp.Or(cfg.LockTTL, 30*time.Second)
	cfg.LockWait = cmp.Or(cfg.LockWait, 2*time.Minute)
	cfg.BatchSize = cmp.Or(cfg.BatchSize, 1000)
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Now == nil {
		cfg.Now = cfg.Clock.Now
	}
	return &Recalculator{store: store, tasks: tasks, cache: cache, locker: locker, cfg: cfg,
		tracer: spans.Tracer(cfg.TracerProvider, tracerName), log: log}
}

// Result is a run's account, the task's result.
type Result struct {
	Products     int   `json:"products,omitempty"`
	Batches      int   `json:"batches,omitempty"`
	MarketEvents int   `json:"market_events,omitempty"`
	Generation   int64 `json:"generation,omitempty"` // triggers up to this one are covered
	Version      int64 `json:"version"`              // the pricing version published
	CoveredBy    int64 `json:"covered_by_version,omitempty"`
}

// Handle is the task.Handler of TopicRecalculate.
func (rc *Recalculator) Handle(ctx context.Context, m task.Message) error {
	var msg RecalculateMessage
	if err := json.Unmarshal(m.Body, &msg); err != nil || msg.TaskID == "" {
		return task.Permanent(fmt.Errorf("recalculate: malformed message %q", m.Body))
	}
	rec, err := rc.tasks.Task(ctx, msg.TaskID)
	if errors.Is(err, task.ErrNotFound) {
		return task.Permanent(fmt.Errorf("recalculate: task %s: %w", msg.TaskID, err))
	}
	if err != nil {
		return err
	}
	if rec.State.Terminal() { // a redelivery of a task that ended
		return nil
	}
	start := rc.cfg.Now()
	outcome, stage, err := rc.attempt(ctx, &rec, m.Attempt)
	if err != nil && !errors.Is(err, task.ErrEnded) && !errors.Is(err, task.ErrSuperseded) {
		outcome, err = rc.fail(ctx, rec, m.Attempt, stage, err)
	}
	switch {
	case errors.Is(err, task.ErrEnded): // a duplicate delivery: another one ended the task meanwhile
		rc.log.InfoContext(ctx, "recalculate: the task ended in another delivery meanwhile", "task_id", rec.ID)
		return nil
	case errors.Is(err, task.ErrSuperseded): // this run lost its lock, and another run took the task over
		rc.log.WarnContext(ctx, "recalculate: another run took the task over; its record stays that run's",
			"task_id", rec.ID, "attempt", rec.Attempts, "err", err)
		return nil
	}
	if rc.cfg.Observe != nil && outcome != "" {
		rc.cfg.Observe(outcome, rc.cfg.Now().Sub(start))
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() { // the worker's span of this delivery
		span.SetAttributes(attribute.String("boxoffice.task.id", rec.ID), attribute.String("boxoffice.task.outcome", outcome))
	}
	return err
}

// stage is how far an attempt went: whether it took the lock, and whether it started
// the run, which makes the task's record the run's own.
type stage int

const (
	unlocked stage = iota
	locked
	started
)

// attempt runs the task, or ends it covered, and says how far it went.
// Once it started the run, rec.Attempts is the run's attempt number (Records.StartTask),
// which fences every later save of the run: a run that lost its lock and was taken
// over gets task.ErrSuperseded, and leaves the record to the run that took over.
func (rc *Recalculator) attempt(ctx context.Context, rec *task.Record, attempt int) (outcome string, _ stage, err error) {
	lock, covered, err := rc.acquire(ctx, rec.Gen)
	if err != nil {
		return "", unlocked, err
	}
	if lock == nil {
		outcome, err := rc.covered(ctx, rec, covered)
		return outcome, unlocked, err
	}
	defer func() {
		if err := lock.Unlock(context.WithoutCancel(ctx)); err != nil {
			rc.log.Warn("recalculation lock: release", "err", err)
		}
	}()
	runCtx, cancel := context.WithCancelCause(ctx)
	var renewing sync.WaitGroup
	defer renewing.Wait() // the renewal ends with runCtx, before the lock is released
	defer cancel(nil)
	renewing.Go(func() { rc.renew(runCtx, lock, cancel) })

	// Attempts counts the runs started: a re-driven message's deliveries count from 1 again.
	at := rc.cfg.Now()
	n, err := rc.tasks.StartTask(runCtx, rec.ID, attempt, at)
	if err != nil {
		return "", locked, err
	}
	rec.State, rec.Attempts, rec.StartedAt, rec.FinishedAt = task.Running, n, at, time.Time{}
	rec.ErrorCode, rec.Error = "", ""
	res, err := rc.run(runCtx)
	if err != nil {
		if cause := context.Cause(runCtx); cause != nil && ctx.Err() == nil {
			err = cause // the lock was lost
		}
		return "", started, err
	}
	rec.State, rec.FinishedAt = task.Succeeded, rc.cfg.Now()
	rec.Result, _ = json.Marshal(res)
	if err := rc.tasks.SaveTask(ctx, *rec, rec.Attempts); err != nil {
		return "", started, err
	}
	if rc.cfg.Published != nil {
		rc.cfg.Published(res.Version)
	}
	rc.log.InfoContext(ctx, "prices recalculated", "task_id", rec.ID, "version", res.Version, "products", res.Products,
		"market_events", res.MarketEvents, "duration_ms", rec.FinishedAt.Sub(rec.StartedAt).Milliseconds())
	return string(task.Succeeded), started, nil
}

// acquire returns the lock, or the state of a completed run that covers generation gen
// (and no lock).
func (rc *Recalculator) acquire(ctx context.Context, gen int64) (task.Lock, *State, error) {
	deadline := rc.cfg.Now().Add(rc.cfg.LockWait)
	pause := 20 * time.Millisecond
	for {
		st, err := rc.store.PricingState(ctx)
		if err != nil {
			return nil, nil, err
		}
		if st.Done >= gen {
			return nil, &st, nil
		}
		lock, err := rc.locker.Lock(ctx, rc.cfg.LockKey, rc.cfg.LockTTL)
		if err == nil {
			// A run may have completed between the check and the lock.
			if st, err = rc.store.PricingState(ctx); err != nil || st.Done >= gen {
				_ = lock.Unlock(context.WithoutCancel(ctx))
				if err != nil {
					return nil, nil, err
				}
				return nil, &st, nil
			}
			return lock, nil, nil
		}
		if !errors.Is(err, task.ErrLocked) {
			return nil, nil, err
		}
		if rc.cfg.Contend != nil {
			rc.cfg.Contend()
		}
		if !rc.cfg.Now().Before(deadline) {
			return nil, nil, fmt.Errorf("recalculate: another run still holds the lock after %s", rc.cfg.LockWait)
		}
		// Waiting for the run in progress to end: its lock tells when, not a message.
		t := rc.cfg.Clock.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C():
		}
		pause = min(2*pause, 500*time.Millisecond)
	}
}

// covered ends a task that a completed run covers, after making sure the cache knows
// that run's version: the task may be the retry of a run whose cache update failed. It
// works from the task as it is now, not as Handle read it before waiting for the lock:
// meanwhile another delivery of the task (a re-driven message) may have run it, and a
// task that ended keeps its record (task.ErrEnded, also from the store when that
// delivery ends it between the read and the save). Whatever run the task is in, the
// completed run covers it (task.AnyRun).
func (rc *Recalculator) covered(ctx context.Context, rec *task.Record, st *State) (string, error) {
	cur, err := rc.tasks.Task(ctx, rec.ID)
	if err != nil {
		return "", err
	}
	if cur.State.Terminal() {
		return "", fmt.Errorf("recalculate: task %s is %s: %w", rec.ID, cur.State, task.ErrEnded)
	}
	if err := rc.cache.SetVersion(ctx, cacheVersion(st.Version)); err != nil {
		return "", fmt.Errorf("recalculate: publish version %d to the price cache: %w", st.Version, err)
	}
	*rec = cur
	rec.State, rec.FinishedAt, rec.ErrorCode, rec.Error = task.Skipped, rc.cfg.Now(), "", ""
	if rec.Attempts > 0 { // an earlier attempt of this task ran; a run covers it now
		rec.State = task.Succeeded
	}
	rec.Result, _ = json.Marshal(Result{Version: st.Version, CoveredBy: st.Version})
	if err := rc.tasks.SaveTask(ctx, *rec, task.AnyRun); err != nil {
		return "", err
	}
	return string(rec.State), nil
}

// renew refreshes the lock every LockTTL/3 until ctx ends; when the lock is lost it
// cancels the run with the reason. attempt waits for it to return.
func (rc *Recalculator) renew(ctx context.Context, lock task.Lock, cancel context.CancelCauseFunc) {
	clock.Every(ctx, rc.cfg.Clock, rc.cfg.LockTTL/3, func() bool {
		if err := lock.Refresh(ctx, rc.cfg.LockTTL); err != nil && ctx.Err() == nil {
			if errors.Is(err, task.ErrLockLost) {
				cancel(fmt.Errorf("recalculate: %w", err))
				return false
			}
			rc.log.Warn("recalculation lock: refresh failed; trying again", "err", err)
		}
		return true
	})
}

// run recalculates every product in batches and publishes the new version: to the store,
// then to the cache, so that no cached quote is older than the run once it reports. It
// runs in a span of its own, with the run's account as attributes.
func (rc *Recalculator) run(ctx context.Context) (res Result, err error) {
	ctx, span := rc.tracer.Start(ctx, "recalculate prices")
	defer span.End()
	defer func() {
		// Alike ingest's Sync in shape only: each span's attributes are its own.
		spans.Record(span, err,
			attribute.Int("boxoffice.pricing.products", res.Products),
			attribute.Int("boxoffice.pricing.batches", res.Batches),
			attribute.Int("boxoffice.pricing.market_events", res.MarketEvents),
			attribute.Int64("boxoffice.pricing.generation", res.Generation),
			attribute.Int64("boxoffice.pricing.version", res.Version),
		)
	}()
	return rc.recalculate(ctx)
}

// recalculate is run without its span.
func (rc *Recalculator) recalculate(ctx context.Context) (Result, error) {
	now := rc.cfg.Now()
	run, err := rc.store.BeginRun(ctx, now)
	if err != nil {
		return Result{}, err
	}
	res := Result{MarketEvents: run.Events, Generation: run.Gen}
	var after catalog.ID
	for {
		batch, err := rc.store.ProductsAfter(ctx, after, rc.cfg.BatchSize)
		if err != nil {
			return res, err
		}
		if len(batch) == 0 {
			break
		}
		for i := range batch {
			p := &batch[i]
			p.Surcharge = rc.cfg.Policy.Surcharge(p.Product, now)
			p.Price, err = rc.cfg.Policy.Factors(p.BasePrice, p.Surcharge, run.Global).Price(0)
			if err != nil {
				return res, task.Permanent(fmt.Errorf("recalculate: product %s: %w", p.ID, err))
			}
			p.Version = run.Version
		}
		if err := rc.store.SavePrices(ctx, batch); err != nil {
			return res, err
		}
		res.Products += len(batch)
		res.Batches++
		after = batch[len(batch)-1].ID
	}
	st, err := rc.store.CompleteRun(ctx, run, rc.cfg.Now())
	if err != nil {
		return res, err
	}
	if err := rc.cache.SetVersion(ctx, cacheVersion(st.Version)); err != nil {
		return res, fmt.Errorf("recalculate: publish version %d to the price cache: %w", st.Version, err)
	}
	res.Version = st.Version
	return res, nil
}

// fail records a failed attempt: pending again when the broker will retry it, failed
// when it will not (a permanent error, or the last attempt), and returns what the
// broker needs to decide the same.
//
// A run that started writes only while the task is still its run (the attempt number
// it started with): a run that lost its lock, taken over by another run, leaves the
// record to that run, and the message is acknowledged (task.ErrSuperseded), as it is
// for a task that ended meanwhile (task.ErrEnded).
//
// An attempt that did not take the lock writes nothing over a task that is running:
// that is another delivery's run (a re-driven message of a task in a long run), which
// records its own end; or the run of a worker that died, which the outbox re-drives
// again after TASK_LOST_SECONDS. An attempt that did not start a run works from the
// task as it reads it now, and writes nothing either when a run started since that
// read. Such an attempt is retried while attempts remain, then acknowledged, with no
// outcome, rather than dead-lettered.
func (rc *Recalculator) fail(ctx context.Context, rec task.Record, attempt int, stage stage, err error) (string, error) {
	last := task.IsPermanent(err) || attempt >= rc.cfg.Retry.MaxAttempts
	leave := func(why string) (string, error) {
		rc.log.Warn("recalculate: an attempt failed; "+why, "task_id", rec.ID, "attempt", attempt, "err", err)
		if last {
			return "", nil
		}
		return "retried", err
	}
	if stage != started {
		if cur, rerr := rc.tasks.Task(context.WithoutCancel(ctx), rec.ID); rerr == nil {
			if stage == unlocked && cur.State == task.Running {
				return leave("the task is running in another delivery, and its record stays the run's")
			}
			rec = cur
		}
	}
	fence := rec.Attempts
	rec.Error, rec.Attempts = err.Error(), max(rec.Attempts, attempt)
	rec.State, rec.FinishedAt, rec.ErrorCode = task.Pending, time.Time{}, task.CodeAttemptFailed
	switch {
	case task.IsPermanent(err):
		rec.State, rec.FinishedAt, rec.ErrorCode = task.Failed, rc.cfg.Now(), task.CodePermanent
	case last:
		rec.State, rec.FinishedAt, rec.ErrorCode = task.Failed, rc.cfg.Now(), task.CodeRetriesExhausted
	}
	if ctx.Err() != nil { // shutting down: the broker redelivers the message
		rec.State, rec.FinishedAt = task.Pending, time.Time{}
		rec.ErrorCode, rec.Error = task.CodeInterrupted, "interrupted: "+err.Error()
	}
	serr := rc.tasks.SaveTask(context.WithoutCancel(ctx), rec, fence)
	switch {
	case errors.Is(serr, task.ErrEnded), errors.Is(serr, task.ErrSuperseded) && stage == started:
		return "", serr // Handle acknowledges the message
	case errors.Is(serr, task.ErrSuperseded):
		return leave("a run of the task started since it was read, and the record stays the run's")
	case serr != nil:
		rc.log.Warn("recalculate: record the failed attempt", "task_id", rec.ID, "err", serr)
	}
	if last {
		return string(task.Failed), task.Permanent(err)
	}
	return "retried", err
}
