package ingest

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"boxoffice/catalog"
	"boxoffice/clock"
	"boxoffice/spans"
	"boxoffice/task"
)

// LeaderKey returns the lock that elects the one ingest process that syncs provider:
// each provider has a leader of its own, so that the processes share the providers and
// a provider whose lead is lost does not hold up the others. The Locker adds the
// deployment's namespace (NAMESPACE) to it.
func LeaderKey(provider string) string { return "ingest:leader:" + provider }

// Config tunes a Syncer. Zero fields take the defaults of DefaultConfig, except
// Provider, which is required.
type Config struct {
	Provider   string        // the provider's name (PROVIDER_NAME): every plan's Provider, and the key of its syncs
	Interval   time.Duration // between the starts of two syncs (SYNC_INTERVAL_SECONDS)
	Attempts   int           // fetch attempts per sync, including the first
	Backoff    time.Duration // delay before the second attempt; doubles, with jitter
	MaxBackoff time.Duration // cap on one delay
	BatchSize  int           // plans per published batch, at most
	BatchBytes int           // bytes of a batch's plans (JSON), at most; a plan over it alone is skipped
	SpoolDir   string        // where a sync's batches wait until the document parsed; "" is os.TempDir
	// BaselinePlans is how many stored plans a sync reads, at most, to publish only the
	// plans it changes (SYNC_BASELINE_MAX_PLANS, see Baseline): 25 bytes each. A provider
	// with more publishes every plan, so that the ingest's memory stays bounded.
	BaselinePlans int
	LeaderTTL     time.Duration // expiry of the leader lock; refreshed every third of it
	StandbyPoll   time.Duration // how often a standby tries to take the lead

	// Observe, when set, is told of each sync the leader ran, for metrics.
	Observe func(res Result, err error)
	// Clock makes the timers and tickers of the syncs, the lock's renewal, the retries
	// and the standby; nil is clock.System.
	Clock clock.Clock
	// TracerProvider makes the span of each sync and of each batch it publishes; nil is
	// tracing off.
	TracerProvider trace.TracerProvider
}

// DefaultConfig returns the settings of a production sync.
func DefaultConfig() Config {
	return Config{
		Interval:   300 * time.Second,
		Attempts:   4,
		Backoff:    time.Second,
		MaxBackoff: 30 * time.Second,
		BatchSize:  5000, // a SQLite transaction's fsync and an index refresh per 5000 plans, not per 1000
		BatchBytes: 4 << 20,
		// About 75 MiB of stored plans (25 bytes each), which the collector may let
		// grow to twice that (GOGC=100): an ingest stays under 256 MiB.
		BaselinePlans: 3_000_000,
		LeaderTTL:     30 * time.Second,
		StandbyPoll:   5 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	orDefault(&c.Interval, d.Interval)
	orDefault(&c.Attempts, d.Attempts)
	orDefault(&c.Backoff, d.Backoff)
	orDefault(&c.MaxBackoff, d.MaxBackoff)
	orDefault(&c.BatchSize, d.BatchSize)
	orDefault(&c.BatchBytes, d.BatchBytes)
	orDefault(&c.BaselinePlans, d.BaselinePlans)
	orDefault(&c.LeaderTTL, d.LeaderTTL)
	orDefault(&c.StandbyPoll, d.StandbyPoll)
	return c
}

// orDefault sets *v to def unless it is positive.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Result reports one sync.
type Result struct {
	SyncID      string
	Attempts    int
	Conditional bool // the fetch sent the confirmed sync's validators
	NotModified bool
	Format      string
	Parsed      int
	Skipped     int
	Unchanged   int // plans left out of the batches: the store held them as they are (Baseline)
	Batches     int
	Duration    time.Duration
}

// Syncer runs provider syncs: one at start-up and then every interval, while it holds
// the leader lock.
//
// The validators of a conditional fetch come from the store (SyncLog), never from
// memory: they are those of the last sync whose every batch a worker applied, so a
// batch that was lost or dead-lettered makes the next fetch unconditional, and a
// restarted or newly elected Syncer asks exactly what the store is missing. When the
// SyncLog is also a Baseline, a sync publishes only the plans the store does not hold
// as they are, whenever that is safe (see Baseline).
type Syncer struct {
	src    Source
	pub    task.Publisher
	locker task.Locker
	syncs  SyncLog
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	tracer trace.Tracer

	mu           sync.Mutex // guards lastRevision and last
	lastRevision int64
	last         Status
}

// Status is what the last sync did, for readiness and logs.
type Status struct {
	At     time.Time // when the last sync ended; zero before the first
	Result Result
	Err    error
}

// NewSyncer returns a Syncer that fetches cfg.Provider's catalog from src and publishes
// it on pub, leading when it holds LeaderKey(cfg.Provider) in locker, reading the state
// of the provider's syncs from syncs before each fetch and recording each sync's
// outcome there after it.
func NewSyncer(src Source, pub task.Publisher, locker task.Locker, syncs SyncLog, cfg Config, log *slog.Logger) *Syncer {
	return &Syncer{src: src, pub: pub, locker: locker, syncs: syncs, cfg: cfg.withDefaults(), log: log, now: time.Now,
		tracer: spans.Tracer(cfg.TracerProvider, "boxoffice/ingest")}
}

// Last returns the outcome of the last sync.
func (s *Syncer) Last() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Run leads or stands by until ctx is done, and returns nil then. While leading it syncs
// at once and then every interval; failures are logged and wait for the next interval.
func (s *Syncer) Run(ctx context.Context) error {
	for {
		lock, err := s.locker.Lock(ctx, LeaderKey(s.cfg.Provider), s.cfg.LeaderTTL)
		switch {
		case err == nil:
			s.log.Info("ingest leading", "interval_seconds", s.cfg.Interval.Seconds())
			s.lead(ctx, lock)
			// Best effort: a lock that is already lost or expired is no one's to free.
			_ = lock.Unlock(context.WithoutCancel(ctx))
		case errors.Is(err, task.ErrLocked):
			s.log.Debug("ingest standing by: another process leads")
		case ctx.Err() == nil:
			s.log.Warn("ingest leader lock", "err", err)
		}
		if !s.sleep(ctx, s.cfg.StandbyPoll) {
			return nil
		}
	}
}

// lead syncs every interval until ctx is done or the lock is lost. A goroutine refreshes
// the lock every third of its TTL and cancels the sync when it is lost; it stops when
// lead returns.
func (s *Syncer) lead(ctx context.Context, lock task.Lock) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		clock.Every(ctx, clock.Or(s.cfg.Clock), s.cfg.LeaderTTL/3, func() bool {
			if err := lock.Refresh(ctx, s.cfg.LeaderTTL); err != nil {
				if ctx.Err() == nil {
					s.log.Warn("ingest lost the lead", "err", err)
				}
				return false
			}
			return true
		})
	}()

	t := clock.Or(s.cfg.Clock).NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		started := s.now()
		res, err := s.Sync(ctx)
		if ctx.Err() == nil {
			if s.cfg.Observe != nil {
				s.cfg.Observe(res, err)
			}
			s.record(ctx, started, res, err)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			attrs := []any{"sync_id", res.SyncID, "attempts", res.Attempts, "err", err}
			if p := (*task.PanicError)(nil); errors.As(err, &p) {
				attrs = append(attrs, "stack", p.Stack)
			}
			s.log.Error("sync", attrs...)
		case res.NotModified:
			s.log.Debug("sync: not modified", "sync_id", res.SyncID, "attempts", res.Attempts)
		default:
			s.log.Info("sync", "sync_id", res.SyncID, "not_modified", res.NotModified, "format", res.Format,
				"parsed", res.Parsed, "skipped", res.Skipped, "unchanged", res.Unchanged, "batches", res.Batches, "attempts", res.Attempts,
				"duration_ms", res.Duration.Milliseconds())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// maxRecordedError bounds the error message a SyncRecord keeps.
const maxRecordedError = 1 << 10

// record writes the outcome of the sync that started at started to the store, for GET
// /api/v1/providers; a failure to write it is logged, never fatal to the sync.
func (s *Syncer) record(ctx context.Context, started time.Time, res Result, err error) {
	rec := SyncRecord{
		Provider: s.cfg.Provider, SyncID: res.SyncID, StartedAt: started, FinishedAt: started.Add(res.Duration),
		Outcome: OutcomeOK, Format: res.Format, Parsed: res.Parsed, Skipped: res.Skipped, Batches: res.Batches,
		Attempts: res.Attempts, NextAt: started.Add(s.cfg.Interval),
	}
	if rec.FinishedAt.After(rec.NextAt) {
		rec.NextAt = rec.FinishedAt // the sync outlasted the interval: the next one starts at once
	}
	switch {
	case err != nil:
		rec.Outcome, rec.Error = OutcomeFailed, err.Error()
		if len(rec.Error) > maxRecordedError {
			rec.Error = rec.Error[:maxRecordedError] + "…"
		}
	case res.NotModified:
		rec.Outcome = OutcomeNotModified
	}
	if err := s.syncs.RecordSync(ctx, rec); err != nil {
		s.log.WarnContext(ctx, "record sync", "sync_id", res.SyncID, "err", err)
	}
}

// Sync runs one sync: fetch with retries, spool the batches, publish them. Nothing is
// published unless the whole document parsed. A panic in the sync (the parser's, a
// source's) is recovered and returned as a failed sync holding a *task.PanicError:
// the leader logs it with its stack and syncs again at the next interval. The sync is a span ("ingest sync") with
// its result as attributes; the fetches and the batches' publications are its
// children, and each batch's processing on a worker continues its trace.
func (s *Syncer) Sync(ctx context.Context) (res Result, err error) {
	ctx, span := s.tracer.Start(ctx, "ingest sync")
	defer span.End()
	defer func() {
		spans.Record(span, err,
			attribute.String("boxoffice.provider", s.cfg.Provider),
			attribute.String("boxoffice.sync.id", res.SyncID),
			attribute.Int("boxoffice.sync.attempts", res.Attempts),
			attribute.Bool("boxoffice.sync.not_modified", res.NotModified),
			attribute.String("boxoffice.sync.format", res.Format),
			attribute.Int("boxoffice.sync.parsed", res.Parsed),
			attribute.Int("boxoffice.sync.skipped", res.Skipped),
			attribute.Int("boxoffice.sync.unchanged", res.Unchanged),
			attribute.Int("boxoffice.sync.batches", res.Batches),
		)
	}()
	return s.sync(ctx)
}

// sync is Sync without its span.
func (s *Syncer) sync(ctx context.Context) (res Result, err error) {
	start := s.now()
	state, err := s.syncs.SyncState(ctx, s.cfg.Provider)
	if err != nil {
		// A conditional fetch only saves work: without the state, fetch everything.
		s.log.WarnContext(ctx, "sync state unreadable; fetching unconditionally", "provider", s.cfg.Provider, "err", err)
		state = SyncState{}
	}
	since := state.Since()
	s.mu.Lock()
	// Above the previous sync's revision even if the clock stepped back, or another
	// process with a clock ahead of ours synced last.
	revision := max(start.UnixNano(), s.lastRevision+1, state.Latest+1, state.Published+1)
	s.lastRevision = revision
	s.mu.Unlock()
	res.SyncID = strconv.FormatInt(revision, 36)
	res.Conditional = since != (Validators{})
	defer func() {
		res.Duration = s.now().Sub(start)
		s.mu.Lock()
		s.last = Status{At: s.now(), Result: res, Err: err}
		s.mu.Unlock()
	}()
	defer task.Recover(&err) // before the status above, which records the panic

	// stored is what the plans compare with when the state is Settled, nil otherwise
	// (every plan is published). after is what BeginPublish checks: the Published of the
	// Settled state, so that a sync that began since stops this one; else revision-1.
	base, _ := s.syncs.(Baseline)
	var (
		stored *baseline
		after  = revision - 1
	)
	if base != nil && state.Settled() {
		stored, after = &baseline{src: base, provider: s.cfg.Provider, max: s.cfg.BaselinePlans}, state.Published
	}
	var (
		sp      *spool
		fetched Fetched
	)
	for res.Attempts = 1; ; res.Attempts++ {
		sp, fetched, err = s.fetch(ctx, since, revision, res.SyncID, stored)
		if err == nil {
			break
		}
		if errors.Is(err, ErrMalformed) || task.IsPermanent(err) || ctx.Err() != nil || res.Attempts >= s.cfg.Attempts {
			return res, fmt.Errorf("sync %s: attempt %d: %w", res.SyncID, res.Attempts, err)
		}
		delay := s.backoff(res.Attempts)
		s.log.WarnContext(ctx, "sync attempt", "sync_id", res.SyncID, "attempt", res.Attempts, "retry_in_ms", delay.Milliseconds(), "err", err)
		if !s.sleep(ctx, delay) {
			return res, fmt.Errorf("sync %s: %w", res.SyncID, ctx.Err())
		}
	}
	defer sp.Close()
	res.NotModified, res.Format = fetched.NotModified, fetched.Format
	res.Parsed, res.Skipped, res.Unchanged = fetched.Parsed-sp.skipped, fetched.Skipped+sp.skipped, sp.unchanged
	for _, reason := range append(fetched.SkipReasons, sp.reasons...) {
		s.log.WarnContext(ctx, "skip plan", "sync_id", res.SyncID, "reason", reason)
	}
	if stored != nil && stored.full {
		s.log.InfoContext(ctx, "sync: publish every plan: the provider has more stored plans than SYNC_BASELINE_MAX_PLANS",
			"sync_id", res.SyncID, "max_plans", stored.max)
	}
	if fetched.NotModified {
		return res, nil
	}
	v := fetched.Validators
	if len(v.ETag)+len(v.LastModified) > maxValidatorBytes {
		// Not worth carrying in every batch: the next fetch will be unconditional.
		s.log.WarnContext(ctx, "provider validators too long to keep", "sync_id", res.SyncID,
			"bytes", len(v.ETag)+len(v.LastModified))
		v = Validators{}
	}
	if base != nil && sp.batches > 0 { // a sync that publishes nothing leaves no batch to wait for
		if err := base.BeginPublish(ctx, s.cfg.Provider, revision, after); err != nil {
			return res, fmt.Errorf("sync %s: %w", res.SyncID, err)
		}
	}
	if res.Batches, err = sp.publish(ctx, s.pub, s.cfg.TracerProvider, v); err != nil {
		return res, fmt.Errorf("sync %s: publish: %w", res.SyncID, err)
	}
	return res, nil
}

// backoff returns the delay after a failed attempt: exponential with full jitter on
// its upper half, so that many clients do not retry in step.
func (s *Syncer) backoff(attempt int) time.Duration {
	d := task.RetryPolicy{Countdown: s.cfg.Backoff, MaxDelay: s.cfg.MaxBackoff}.Delay(attempt)
	return d/2 + rand.N(d/2+1)
}

// fetch makes one attempt and returns the spooled batches, without the plans that
// stored holds as they are unless it is nil; the caller closes the spool.
func (s *Syncer) fetch(ctx context.Context, since Validators, revision int64, syncID string, stored *baseline) (*spool, Fetched, error) {
	sp, err := newSpool(s.cfg.SpoolDir, syncHeader{provider: s.cfg.Provider, syncID: syncID, revision: revision},
		s.cfg.BatchSize, s.cfg.BatchBytes)
	if err != nil {
		return nil, Fetched{}, err
	}
	fetched, err := s.src.Fetch(ctx, since, func(p catalog.Plan) error {
		if p.Provider != s.cfg.Provider {
			return fmt.Errorf("plan %s/%s: provider %q, want %q", p.BasePlanID, p.PlanID, p.Provider, s.cfg.Provider)
		}
		if stored != nil {
			same, err := stored.holds(ctx, p)
			if err != nil {
				return err
			}
			if same {
				sp.unchanged++
				return nil
			}
		}
		p.Revision = revision
		return sp.add(p)
	})
	if err == nil {
		err = sp.finish()
	}
	if err != nil {
		sp.Close()
		return nil, fetched, err
	}
	return sp, fetched, nil
}

// syncHeader is what every batch of a sync says about the sync.
type syncHeader struct {
	provider string
	syncID   string
	revision int64
}

// maxSkipReasons bounds the reasons a spool keeps for the log.
const maxSkipReasons = 20

// maxValidatorBytes bounds the validators a sync carries in its batches; a provider's
// longer ones are dropped. A Batch's fields other than its plans stay under
// MaxBatchOverhead bytes with them.
const maxValidatorBytes = 1 << 10

// MaxBatchOverhead bounds the bytes of a published batch's body beyond its plans (at
// most Config.BatchBytes): the schema, provider, sync, seq, batches and validators.
// The provider's name is at most a few hundred bytes; see maxValidatorBytes.
const MaxBatchOverhead = 2 << 10

// spool holds a sync's batches in an unlinked temporary file while the document streams
// in: for each batch, its length and its plans as a JSON array. Once the document parsed
// and the number of batches is known, publish reads them back and sends each as a Batch.
//
// A batch ends at size plans or before its plans' encoding would pass maxBytes, so that
// a broker message stays small whatever the zones per plan: at most maxBytes of plans
// and the Batch's few other fields. A plan whose encoding alone is over maxBytes is
// skipped, counted and its reason kept, like a plan with bad data.
type spool struct {
	f         *os.File
	w         *bufio.Writer
	sync      syncHeader
	size      int      // plans per batch, at most
	maxBytes  int      // bytes of a batch's JSON array of plans, at most
	pending   []byte   // the JSON array of the batch being filled, without its closing bracket
	enc       []byte   // the last plan's encoding, reused
	plans     int      // in pending
	batches   int      // written to f
	skipped   int      // plans over maxBytes alone
	reasons   []string // why, for the first maxSkipReasons of them
	unchanged int      // plans left out: the store holds them as they are (counted by the caller)
}

func newSpool(dir string, sync syncHeader, size, maxBytes int) (*spool, error) {
	f, err := os.CreateTemp(dir, "boxoffice-sync-*.spool")
	if err != nil {
		return nil, fmt.Errorf("create sync spool: %w", err)
	}
	// Unlinked at once: the file lives as long as it is open, and a crash leaves nothing.
	os.Remove(f.Name())
	return &spool{f: f, w: bufio.NewWriterSize(f, 1<<16), sync: sync, size: size, maxBytes: maxBytes}, nil
}

func (sp *spool) add(p catalog.Plan) error {
	enc, err := p.AppendJSON(sp.enc[:0])
	if err != nil {
		return fmt.Errorf("encode plan %s: %w", p.ID, err)
	}
	sp.enc = enc
	if len(enc)+len("[]") > sp.maxBytes {
		sp.skipped++
		if len(sp.reasons) < maxSkipReasons {
			sp.reasons = append(sp.reasons, fmt.Sprintf("plan %s/%s: %d bytes encoded, over the batch limit of %d",
				p.BasePlanID, p.PlanID, len(enc), sp.maxBytes))
		}
		return nil
	}
	if sp.plans > 0 && len(sp.pending)+len(",]")+len(enc) > sp.maxBytes {
		if err := sp.flush(); err != nil {
			return err
		}
	}
	if sp.plans == 0 {
		sp.pending = append(sp.pending[:0], '[')
	} else {
		sp.pending = append(sp.pending, ',')
	}
	sp.pending = append(sp.pending, enc...)
	sp.plans++
	if sp.plans >= sp.size {
		return sp.flush()
	}
	return nil
}

// flush writes the plans of the batch being filled, if any, as the next batch.
func (sp *spool) flush() error {
	if sp.plans == 0 {
		return nil
	}
	sp.pending = append(sp.pending, ']')
	sp.plans = 0
	return sp.writeBatch(sp.pending)
}

// writeBatch writes plans, a JSON array, as the next batch.
func (sp *spool) writeBatch(plans []byte) error {
	var n [binary.MaxVarintLen64]byte
	if _, err := sp.w.Write(n[:binary.PutUvarint(n[:], uint64(len(plans)))]); err != nil {
		return fmt.Errorf("write sync spool: %w", err)
	}
	if _, err := sp.w.Write(plans); err != nil {
		return fmt.Errorf("write sync spool: %w", err)
	}
	sp.batches++
	return nil
}

// finish writes the last batch. A sync that left out every plan still has one batch,
// without plans, so that it is confirmed (see Baseline).
func (sp *spool) finish() error {
	err := sp.flush()
	if err == nil && sp.batches == 0 && sp.unchanged > 0 {
		err = sp.writeBatch([]byte("[]"))
	}
	if err != nil {
		return err
	}
	if err := sp.w.Flush(); err != nil {
		return fmt.Errorf("write sync spool: %w", err)
	}
	return nil
}

// publish reads the batches back in order and publishes each on pub, in a producer
// span of tp, as a tracked Batch of the sync, with the validators of its document; it
// returns how many it published.
func (sp *spool) publish(ctx context.Context, pub task.Publisher, tp trace.TracerProvider, v Validators) (int, error) {
	if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("read sync spool: %w", err)
	}
	r := bufio.NewReaderSize(sp.f, 1<<16)
	var plans []byte
	for i := range sp.batches {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return i, fmt.Errorf("read sync spool: %w", err)
		}
		plans = slices.Grow(plans[:0], int(n))[:n]
		if _, err := io.ReadFull(r, plans); err != nil {
			return i, fmt.Errorf("read sync spool: %w", err)
		}
		body, err := sp.body(i, v, plans)
		if err != nil {
			return i, err
		}
		msg := task.Message{ID: sp.sync.provider + "/" + sp.sync.syncID + "-" + strconv.Itoa(i), Body: body}
		if err := task.Publish(ctx, pub, tp, TopicPlans, msg); err != nil {
			return i, err
		}
	}
	return sp.batches, nil
}

// body returns the message body of batch seq: the Batch's fields, then its plans as
// spooled, already JSON.
func (sp *spool) body(seq int, v Validators, plans []byte) ([]byte, error) {
	head, err := json.Marshal(Batch{Schema: batchSchema, Provider: sp.sync.provider, SyncID: sp.sync.syncID,
		Revision: sp.sync.revision, Seq: seq, Batches: sp.batches, Validators: v})
	if err != nil {
		return nil, fmt.Errorf("encode plan batch: %w", err)
	}
	// head is an object without "plans" (omitted when empty): reopen it to add them.
	body := make([]byte, 0, len(head)+len(`,"plans":}`)+len(plans))
	body = append(body, head[:len(head)-1]...)
	body = append(body, `,"plans":`...)
	body = append(body, plans...)
	return append(body, '}'), nil
}

func (sp *spool) Close() error { return sp.f.Close() }

// sleep waits d on the syncer's clock; it reports false when ctx ended first.
func (s *Syncer) sleep(ctx context.Context, d time.Duration) bool {
	t := clock.Or(s.cfg.Clock).NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// baseline is what a sync compares its plans with to leave out those the store holds as
// they are (see Baseline): the stored plans of its provider, read at its first plan, so
// that a fetch answered 304 reads none, and kept across the sync's attempts. It holds
// each plan's fingerprint by ID in about 25 bytes a plan, in two tables: the
// ever-online plans and the others, so that the flag takes no byte. A provider with
// more than max stored plans has no baseline (full): the sync publishes every plan, as
// if the state were not Settled, so that the ingest's memory stays bounded whatever the
// catalog's size.
type baseline struct {
	src        Baseline
	provider   string
	max        int  // stored plans read, at most
	read       bool // the stored plans were read
	full       bool // more than max stored plans: none kept
	everOnline catalog.IDTable
	others     catalog.IDTable // not yet ever-online
	fp         catalog.Fingerprinter
}

// errBaselineFull stops the read of the stored plans at the first one above the bound.
var errBaselineFull = errors.New("more stored plans than the baseline holds")

// holds reports whether the store holds p as it is, so that a tracked batch of p would
// write nothing (catalog.Decide): the same values, and p offline or the stored plan
// ever-online already. It reports false for every plan of a full baseline.
func (b *baseline) holds(ctx context.Context, p catalog.Plan) (bool, error) {
	if !b.read {
		if err := b.load(ctx); err != nil {
			return false, err
		}
	}
	if fp, ok := b.everOnline.Get(p.ID); ok {
		return b.fp.Fingerprint(p) == fp, nil
	}
	if fp, ok := b.others.Get(p.ID); ok && p.SellMode != catalog.Online {
		return b.fp.Fingerprint(p) == fp, nil
	}
	return false, nil
}

// load reads the stored plans, or none when there are more than max (full).
func (b *baseline) load(ctx context.Context) error {
	n := 0
	err := b.src.StoredPlans(ctx, b.provider, func(id catalog.ID, fingerprint int64, everOnline bool) error {
		if n++; n > b.max {
			return errBaselineFull
		}
		if everOnline {
			b.everOnline.Append(id, fingerprint)
		} else {
			b.others.Append(id, fingerprint)
		}
		return nil
	})
	switch {
	case errors.Is(err, errBaselineFull):
		b.everOnline, b.others, b.full = catalog.IDTable{}, catalog.IDTable{}, true
	case err != nil:
		b.everOnline, b.others = catalog.IDTable{}, catalog.IDTable{}
		return fmt.Errorf("read stored plans: %w", err)
	}
	b.read = true
	b.everOnline.Settle()
	b.others.Settle()
	return nil
}
