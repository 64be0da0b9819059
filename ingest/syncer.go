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
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"boxoffice/catalog"
	"boxoffice/task"
)

// tracer returns this package's tracer from the global provider: OpenTelemetry's
// no-op one unless cmd/boxoffice installed an SDK.
func tracer() trace.Tracer { return otel.Tracer("boxoffice/ingest") }

// LeaderKey is the lock that elects the one ingest process that syncs.
const LeaderKey = "boxoffice:ingest:leader"

// Config tunes a Syncer. Zero fields take the defaults of DefaultConfig.
type Config struct {
	Interval    time.Duration // between the starts of two syncs (SYNC_INTERVAL_SECONDS)
	Attempts    int           // fetch attempts per sync, including the first
	Backoff     time.Duration // delay before the second attempt; doubles, with jitter
	MaxBackoff  time.Duration // cap on one delay
	BatchSize   int           // plans per published batch
	SpoolDir    string        // where a sync's batches wait until the document parsed; "" is os.TempDir
	LeaderTTL   time.Duration // expiry of the leader lock; refreshed every third of it
	StandbyPoll time.Duration // how often a standby tries to take the lead

	// Observe, when set, is told of each sync the leader ran, for metrics.
	Observe func(res Result, err error)
}

// DefaultConfig returns the settings of a production sync.
func DefaultConfig() Config {
	return Config{
		Interval:    300 * time.Second,
		Attempts:    4,
		Backoff:     time.Second,
		MaxBackoff:  30 * time.Second,
		BatchSize:   1000,
		LeaderTTL:   30 * time.Second,
		StandbyPoll: 5 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	orDefault(&c.Interval, d.Interval)
	orDefault(&c.Attempts, d.Attempts)
	orDefault(&c.Backoff, d.Backoff)
	orDefault(&c.MaxBackoff, d.MaxBackoff)
	orDefault(&c.BatchSize, d.BatchSize)
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
	NotModified bool
	Format      string
	Parsed      int
	Skipped     int
	Batches     int
	Duration    time.Duration
}

// Syncer runs provider syncs: one at start-up and then every interval, while it holds
// the leader lock.
type Syncer struct {
	src    Source
	pub    task.Publisher
	locker task.Locker
	cfg    Config
	log    *slog.Logger
	now    func() time.Time

	mu           sync.Mutex // guards validators, lastRevision and last
	validators   Validators
	lastRevision int64
	last         Status
}

// Status is what the last sync did, for readiness and logs.
type Status struct {
	At     time.Time // when the last sync ended; zero before the first
	Result Result
	Err    error
}

// NewSyncer returns a Syncer that fetches from src and publishes on pub, leading when it
// holds LeaderKey in locker.
func NewSyncer(src Source, pub task.Publisher, locker task.Locker, cfg Config, log *slog.Logger) *Syncer {
	return &Syncer{src: src, pub: pub, locker: locker, cfg: cfg.withDefaults(), log: log, now: time.Now}
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
		lock, err := s.locker.Lock(ctx, LeaderKey, s.cfg.LeaderTTL)
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
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.cfg.StandbyPoll):
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
		t := time.NewTicker(s.cfg.LeaderTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := lock.Refresh(ctx, s.cfg.LeaderTTL); err != nil {
				if ctx.Err() == nil {
					s.log.Warn("ingest lost the lead", "err", err)
				}
				return
			}
		}
	}()

	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		res, err := s.Sync(ctx)
		if s.cfg.Observe != nil && ctx.Err() == nil {
			s.cfg.Observe(res, err)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Error("sync", "sync_id", res.SyncID, "attempts", res.Attempts, "err", err)
		case res.NotModified:
			s.log.Debug("sync: not modified", "sync_id", res.SyncID, "attempts", res.Attempts)
		default:
			s.log.Info("sync", "sync_id", res.SyncID, "not_modified", res.NotModified, "format", res.Format,
				"parsed", res.Parsed, "skipped", res.Skipped, "batches", res.Batches, "attempts", res.Attempts,
				"duration_ms", res.Duration.Milliseconds())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync runs one sync: fetch with retries, spool the batches, publish them. Nothing is
// published unless the whole document parsed. The sync is a span ("ingest sync") with
// its result as attributes; the fetches and the batches' publications are its
// children, and each batch's processing on a worker continues its trace.
func (s *Syncer) Sync(ctx context.Context) (res Result, err error) {
	ctx, span := tracer().Start(ctx, "ingest sync")
	defer func() {
		if span.IsRecording() {
			span.SetAttributes(
				attribute.String("boxoffice.sync.id", res.SyncID),
				attribute.Int("boxoffice.sync.attempts", res.Attempts),
				attribute.Bool("boxoffice.sync.not_modified", res.NotModified),
				attribute.String("boxoffice.sync.format", res.Format),
				attribute.Int("boxoffice.sync.parsed", res.Parsed),
				attribute.Int("boxoffice.sync.skipped", res.Skipped),
				attribute.Int("boxoffice.sync.batches", res.Batches),
			)
		}
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	return s.sync(ctx)
}

// sync is Sync without its span.
func (s *Syncer) sync(ctx context.Context) (res Result, err error) {
	start := s.now()
	s.mu.Lock()
	revision := max(start.UnixNano(), s.lastRevision+1) // monotonic even if the clock steps back
	s.lastRevision = revision
	since := s.validators
	s.mu.Unlock()
	res.SyncID = strconv.FormatInt(revision, 36)
	defer func() {
		res.Duration = s.now().Sub(start)
		s.mu.Lock()
		s.last = Status{At: s.now(), Result: res, Err: err}
		s.mu.Unlock()
	}()

	var (
		sp      *spool
		fetched Fetched
	)
	for res.Attempts = 1; ; res.Attempts++ {
		sp, fetched, err = s.fetch(ctx, since, revision, res.SyncID)
		if err == nil {
			break
		}
		if errors.Is(err, ErrMalformed) || task.IsPermanent(err) || ctx.Err() != nil || res.Attempts >= s.cfg.Attempts {
			return res, fmt.Errorf("sync %s: attempt %d: %w", res.SyncID, res.Attempts, err)
		}
		delay := s.backoff(res.Attempts)
		s.log.WarnContext(ctx, "sync attempt", "sync_id", res.SyncID, "attempt", res.Attempts, "retry_in_ms", delay.Milliseconds(), "err", err)
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("sync %s: %w", res.SyncID, ctx.Err())
		case <-time.After(delay):
		}
	}
	defer sp.Close()
	res.NotModified, res.Format = fetched.NotModified, fetched.Format
	res.Parsed, res.Skipped = fetched.Parsed, fetched.Skipped
	for _, reason := range fetched.SkipReasons {
		s.log.WarnContext(ctx, "skip plan", "sync_id", res.SyncID, "reason", reason)
	}
	if fetched.NotModified {
		return res, nil
	}
	if res.Batches, err = sp.publish(ctx, s.pub); err != nil {
		return res, fmt.Errorf("sync %s: publish: %w", res.SyncID, err)
	}
	// Only a fully published sync may make the next fetch conditional on it.
	s.mu.Lock()
	s.validators = fetched.Validators
	s.mu.Unlock()
	return res, nil
}

// backoff returns the delay after a failed attempt: exponential with full jitter on
// its upper half, so that many clients do not retry in step.
func (s *Syncer) backoff(attempt int) time.Duration {
	d := task.RetryPolicy{Countdown: s.cfg.Backoff, MaxDelay: s.cfg.MaxBackoff}.Delay(attempt)
	return d/2 + rand.N(d/2+1)
}

// fetch makes one attempt and returns the spooled batches; the caller closes the spool.
func (s *Syncer) fetch(ctx context.Context, since Validators, revision int64, syncID string) (*spool, Fetched, error) {
	sp, err := newSpool(s.cfg.SpoolDir, syncID, s.cfg.BatchSize)
	if err != nil {
		return nil, Fetched{}, err
	}
	fetched, err := s.src.Fetch(ctx, since, func(p catalog.Plan) error {
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

// spool holds a sync's batches in an unlinked temporary file: length-prefixed JSON
// bodies, written while the document streams in and read back to publish.
type spool struct {
	f       *os.File
	w       *bufio.Writer
	syncID  string
	size    int
	pending []catalog.Plan
	batches int
}

func newSpool(dir, syncID string, size int) (*spool, error) {
	f, err := os.CreateTemp(dir, "boxoffice-sync-*.spool")
	if err != nil {
		return nil, fmt.Errorf("create sync spool: %w", err)
	}
	// Unlinked at once: the file lives as long as it is open, and a crash leaves nothing.
	os.Remove(f.Name())
	return &spool{f: f, w: bufio.NewWriterSize(f, 1<<16), syncID: syncID, size: size, pending: make([]catalog.Plan, 0, size)}, nil
}

func (sp *spool) add(p catalog.Plan) error {
	sp.pending = append(sp.pending, p)
	if len(sp.pending) >= sp.size {
		return sp.flush()
	}
	return nil
}

func (sp *spool) flush() error {
	if len(sp.pending) == 0 {
		return nil
	}
	body, err := json.Marshal(Batch{Schema: batchSchema, SyncID: sp.syncID, Seq: sp.batches, Plans: sp.pending})
	if err != nil {
		return fmt.Errorf("encode plan batch: %w", err)
	}
	var n [binary.MaxVarintLen64]byte
	if _, err := sp.w.Write(n[:binary.PutUvarint(n[:], uint64(len(body)))]); err != nil {
		return fmt.Errorf("write sync spool: %w", err)
	}
	if _, err := sp.w.Write(body); err != nil {
		return fmt.Errorf("write sync spool: %w", err)
	}
	sp.batches++
	sp.pending = sp.pending[:0]
	return nil
}

func (sp *spool) finish() error {
	if err := sp.flush(); err != nil {
		return err
	}
	if err := sp.w.Flush(); err != nil {
		return fmt.Errorf("write sync spool: %w", err)
	}
	return nil
}

// publish reads the batches back in order and publishes each; it returns how many it
// published.
func (sp *spool) publish(ctx context.Context, pub task.Publisher) (int, error) {
	if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("read sync spool: %w", err)
	}
	r := bufio.NewReaderSize(sp.f, 1<<16)
	for i := 0; i < sp.batches; i++ {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return i, fmt.Errorf("read sync spool: %w", err)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return i, fmt.Errorf("read sync spool: %w", err)
		}
		msg := task.Message{ID: sp.syncID + "-" + strconv.Itoa(i), Body: body}
		if err := task.Publish(ctx, pub, TopicPlans, msg); err != nil {
			return i, err
		}
	}
	return sp.batches, nil
}

func (sp *spool) Close() error { return sp.f.Close() }
