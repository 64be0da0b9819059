package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"boxoffice/catalog"
	"boxoffice/clock/clocktest"
	"boxoffice/ingest"
	"boxoffice/memory"
	"boxoffice/sqlite"
	"boxoffice/task"
	"boxoffice/testenv"
)

// sourceFunc adapts a function to ingest.Source.
type sourceFunc func(ctx context.Context, since ingest.Validators, emit func(catalog.Plan) error) (ingest.Fetched, error)

func (f sourceFunc) Fetch(ctx context.Context, since ingest.Validators, emit func(catalog.Plan) error) (ingest.Fetched, error) {
	return f(ctx, since, emit)
}

func testPlan(i int) catalog.Plan {
	start := time.Date(2021, 6, 30, 21, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
	base, id := strconv.Itoa(i/10), strconv.Itoa(i%10)
	return catalog.Plan{ID: catalog.NewID("fever", base, id), Provider: "fever", BasePlanID: base, PlanID: id,
		Title: "plan " + strconv.Itoa(i), SellMode: catalog.Online, StartsAt: start, EndsAt: start.Add(time.Hour),
		Zones: []catalog.Zone{{ZoneID: "1", Price: 1500, Capacity: 10}}}
}

// emitN returns a source step that emits n plans and succeeds: a document with
// validators v, whose plans' titles name v's ETag, so that two documents with other
// validators differ.
func emitN(n int, v ingest.Validators) func(emit func(catalog.Plan) error) (ingest.Fetched, error) {
	return func(emit func(catalog.Plan) error) (ingest.Fetched, error) {
		for i := range n {
			p := testPlan(i)
			p.Title += v.ETag
			if err := emit(p); err != nil {
				return ingest.Fetched{}, err
			}
		}
		return ingest.Fetched{Format: "planList", Parsed: n, Validators: v}, nil
	}
}

// script is a Source that plays one step per fetch and records the validators it got.
type script struct {
	mu    sync.Mutex
	steps []func(emit func(catalog.Plan) error) (ingest.Fetched, error)
	calls int
	since []ingest.Validators
}

func (s *script) Fetch(ctx context.Context, since ingest.Validators, emit func(catalog.Plan) error) (ingest.Fetched, error) {
	s.mu.Lock()
	step := s.steps[min(s.calls, len(s.steps)-1)]
	s.calls++
	s.since = append(s.since, since)
	s.mu.Unlock()
	return step(emit)
}

// collect subscribes to the plan topic and returns a function that reports the batches
// received so far.
func collect(t *testing.T, b *sqlite.Broker) func() []ingest.Batch {
	var (
		mu  sync.Mutex
		got []ingest.Batch
	)
	go b.Subscribe(t.Context(), ingest.TopicPlans, func(ctx context.Context, m task.Message) error {
		batch, err := ingest.DecodeBatch(m.Body)
		if err != nil {
			t.Errorf("DecodeBatch(message %s) = %v", m.ID, err)
			return task.Permanent(err)
		}
		mu.Lock()
		got = append(got, batch)
		mu.Unlock()
		return nil
	})
	return func() []ingest.Batch {
		mu.Lock()
		defer mu.Unlock()
		return append([]ingest.Batch(nil), got...)
	}
}

func plansIn(batches []ingest.Batch) int {
	n := 0
	for _, b := range batches {
		n += len(b.Plans)
	}
	return n
}

// newSyncer returns a Syncer of provider "fever" that reads its sync state from syncs,
// or from a new empty store when syncs is nil.
func newSyncer(t *testing.T, src ingest.Source, b *sqlite.Broker, l task.Locker, syncs ingest.SyncLog) *ingest.Syncer {
	if syncs == nil {
		syncs = openStore(t)
	}
	return ingest.NewSyncer(src, b, l, syncs, testConfig(t), slog.New(slog.DiscardHandler))
}

// testConfig is the Syncer configuration of the tests: fast retries, batches of 10.
func testConfig(t *testing.T) ingest.Config {
	return ingest.Config{Provider: "fever", Interval: time.Hour, Attempts: 3, Backoff: time.Millisecond,
		MaxBackoff: 2 * time.Millisecond, BatchSize: 10, SpoolDir: t.TempDir(), LeaderTTL: time.Second,
		StandbyPoll: 10 * time.Millisecond}
}

// openStore returns a migrated store in a directory of the test's own.
func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// applyBatches runs a worker that applies the plan batches of b to store, except
// those for which drop returns true: those it dead-letters, as after a store outage
// longer than the retries. It returns a function that reports how many batches the
// worker settled, applied or dropped.
func applyBatches(t *testing.T, b *sqlite.Broker, store ingest.BatchStore, drop func(ingest.Batch) bool) func() int {
	var settled atomic.Int32
	apply := ingest.BatchHandler(store, nil)
	go b.Subscribe(t.Context(), ingest.TopicPlans, func(ctx context.Context, m task.Message) error {
		defer settled.Add(1)
		batch, err := ingest.DecodeBatch(m.Body)
		if err != nil {
			t.Errorf("DecodeBatch(message %s) = %v", m.ID, err)
			return task.Permanent(err)
		}
		if drop != nil && drop(batch) {
			return task.Permanent(errors.New("store unreachable for longer than the retries"))
		}
		return apply(ctx, m)
	})
	return func() int { return int(settled.Load()) }
}

// syncLogFunc adapts a function to ingest.SyncLog.
type syncLogFunc func(ctx context.Context, provider string) (ingest.SyncState, error)

func (f syncLogFunc) SyncState(ctx context.Context, provider string) (ingest.SyncState, error) {
	return f(ctx, provider)
}

// RecordSync fails like the state read.
func (f syncLogFunc) RecordSync(ctx context.Context, rec ingest.SyncRecord) error {
	_, err := f(ctx, rec.Provider)
	return err
}

// newBroker opens an embedded broker on a temporary directory, closed by t.Cleanup.
func newBroker(t *testing.T) *sqlite.Broker {
	b, err := sqlite.OpenBroker(t.Context(), t.TempDir(), sqlite.BrokerConfig{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestSyncPublishesBatches(t *testing.T) {
	b := newBroker(t)
	got := collect(t, b)
	v1 := ingest.Validators{ETag: `"v1"`, LastModified: "Wed, 30 Jun 2021 21:00:00 GMT"}
	src := &script{steps: []func(func(catalog.Plan) error) (ingest.Fetched, error){emitN(25, v1)}}
	res, err := newSyncer(t, src, b, memory.NewLocker(nil), nil).Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Parsed != 25 || res.Batches != 3 || res.Attempts != 1 {
		t.Errorf("Sync() = %+v, want 25 plans in 3 batches after 1 attempt", res)
	}
	testenv.Poll(t, "3 batches", func() bool { return len(got()) == 3 })
	batches := got()
	for i, batch := range batches {
		if batch.Seq != i || batch.SyncID != res.SyncID || batch.Batches != 3 || batch.Provider != "fever" ||
			batch.Validators != v1 || batch.Revision != batches[0].Plans[0].Revision {
			t.Errorf("batch %d: seq %d of %d, sync %q of %q revision %d, validators %+v; want seq %d of 3, sync %q of fever, the plans' revision, %+v",
				i, batch.Seq, batch.Batches, batch.SyncID, batch.Provider, batch.Revision, batch.Validators, i, res.SyncID, v1)
		}
		for _, p := range batch.Plans {
			if p.Revision == 0 || p.Revision != batches[0].Plans[0].Revision {
				t.Errorf("plan %s revision %d, want the sync's one non-zero revision", p.ID, p.Revision)
			}
		}
	}
	if n := plansIn(batches); n != 25 {
		t.Errorf("%d plans published, want 25", n)
	}
}

// TestSyncBatchesByBytes emits plans with more and more zones: batches end before
// their plans' encoding passes BatchBytes, whatever the count, and a plan over it alone
// is skipped and counted. Every other plan is published once.
func TestSyncBatchesByBytes(t *testing.T) {
	const batchBytes = 4000
	b := newBroker(t)
	var (
		mu     sync.Mutex
		bodies [][]byte
	)
	go b.Subscribe(t.Context(), ingest.TopicPlans, func(ctx context.Context, m task.Message) error {
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, m.Body)
		return nil
	})
	zoned := func(i, zones int) catalog.Plan {
		p := testPlan(i)
		p.Zones = nil
		for z := range zones {
			p.Zones = append(p.Zones, catalog.Zone{ZoneID: strconv.Itoa(z), Name: "Zona " + strconv.Itoa(z), Price: 1500, Capacity: 10})
		}
		return p
	}
	var emitted []catalog.Plan
	for i := range 40 {
		emitted = append(emitted, zoned(i, i)) // from 0 to 39 zones: about 70 bytes each
	}
	huge := zoned(99, 200) // alone over the limit
	emitted = append(emitted[:20], append([]catalog.Plan{huge}, emitted[20:]...)...)
	src := sourceFunc(func(ctx context.Context, _ ingest.Validators, emit func(catalog.Plan) error) (ingest.Fetched, error) {
		for _, p := range emitted {
			if err := emit(p); err != nil {
				return ingest.Fetched{}, err
			}
		}
		return ingest.Fetched{Format: "planList", Parsed: len(emitted)}, nil
	})
	cfg := testConfig(t)
	cfg.BatchBytes = batchBytes
	res, err := ingest.NewSyncer(src, b, memory.NewLocker(nil), openStore(t), cfg, slog.New(slog.DiscardHandler)).Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Parsed != 40 || res.Skipped != 1 {
		t.Errorf("Sync() = %+v, want 40 plans published and 1 skipped", res)
	}
	testenv.Poll(t, "every batch", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(bodies) == res.Batches
	})
	seen := map[catalog.ID]int{}
	for i, body := range bodies {
		batch, err := ingest.DecodeBatch(body)
		if err != nil {
			t.Fatal(err)
		}
		plans, _ := json.Marshal(batch.Plans)
		if len(plans) > batchBytes || len(body) > batchBytes+ingest.MaxBatchOverhead {
			t.Errorf("batch %d: plans of %d bytes in a body of %d, want at most %d and %d", i, len(plans), len(body),
				batchBytes, batchBytes+ingest.MaxBatchOverhead)
		}
		for _, p := range batch.Plans {
			seen[p.ID]++
		}
	}
	if res.Batches <= 40/10 {
		t.Errorf("%d batches, want more than the count alone makes (4)", res.Batches)
	}
	for _, p := range emitted {
		want := 1
		if p.ID == huge.ID {
			want = 0
		}
		if seen[p.ID] != want {
			t.Errorf("plan %s published %d times, want %d", p.PlanID, seen[p.ID], want)
		}
	}
}

func TestSyncRetriesAndPublishesOnlyTheGoodAttempt(t *testing.T) {
	b := newBroker(t)
	got := collect(t, b)
	cut := func(emit func(catalog.Plan) error) (ingest.Fetched, error) {
		for i := range 15 { // a whole batch is spooled before the connection breaks
			if err := emit(testPlan(100 + i)); err != nil {
				return ingest.Fetched{}, err
			}
		}
		return ingest.Fetched{}, errors.New("read body: connection reset by peer")
	}
	src := &script{steps: []func(func(catalog.Plan) error) (ingest.Fetched, error){cut, cut, emitN(5, ingest.Validators{})}}
	res, err := newSyncer(t, src, b, memory.NewLocker(nil), nil).Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 3 || res.Parsed != 5 {
		t.Errorf("Sync() = %+v, want 5 plans on attempt 3", res)
	}
	testenv.Poll(t, "a batch", func() bool { return len(got()) == 1 })
	if n := plansIn(got()); n != 5 {
		t.Errorf("%d plans published, want only the 5 of the successful attempt", n)
	}
}

func TestSyncGivesUpAfterAttempts(t *testing.T) {
	var calls atomic.Int32
	src := sourceFunc(func(ctx context.Context, _ ingest.Validators, emit func(catalog.Plan) error) (ingest.Fetched, error) {
		calls.Add(1)
		return ingest.Fetched{}, errors.New("provider: 503 Service Unavailable")
	})
	res, err := newSyncer(t, src, newBroker(t), memory.NewLocker(nil), nil).Sync(t.Context())
	if err == nil || calls.Load() != 3 || res.Attempts != 3 {
		t.Errorf("Sync() = %v after %d calls (%d attempts), want an error after 3", err, calls.Load(), res.Attempts)
	}
}

func TestSyncAbortsWithoutRetry(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"malformed document", fmt.Errorf("line 3: %w", ingest.ErrMalformed)},
		{"permanent status", task.Permanent(errors.New("provider: 404 Not Found"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBroker(t)
			var calls atomic.Int32
			src := sourceFunc(func(ctx context.Context, _ ingest.Validators, emit func(catalog.Plan) error) (ingest.Fetched, error) {
				calls.Add(1)
				for i := range 30 {
					if err := emit(testPlan(i)); err != nil {
						return ingest.Fetched{}, err
					}
				}
				return ingest.Fetched{}, tt.err
			})
			_, err := newSyncer(t, src, b, memory.NewLocker(nil), nil).Sync(t.Context())
			if !errors.Is(err, tt.err) || calls.Load() != 1 {
				t.Errorf("Sync() = %v after %d calls, want %v after 1", err, calls.Load(), tt.err)
			}
			if n, err := b.QueueDepth(t.Context(), ingest.TopicPlans); err != nil || n != 0 {
				t.Errorf("%d batches published from an aborted sync (%v), want 0", n, err)
			}
		})
	}
}

func TestSyncConditionalRequests(t *testing.T) {
	b := newBroker(t)
	store := openStore(t)
	settled := applyBatches(t, b, store, nil)
	v1 := ingest.Validators{ETag: `"v1"`}
	notModified := func(emit func(catalog.Plan) error) (ingest.Fetched, error) {
		return ingest.Fetched{NotModified: true}, nil
	}
	src := &script{steps: []func(func(catalog.Plan) error) (ingest.Fetched, error){emitN(3, v1), notModified}}
	s := newSyncer(t, src, b, memory.NewLocker(nil), store)
	if _, err := s.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, "the batch applied", func() bool { return settled() == 1 })
	res, err := s.Sync(t.Context())
	if err != nil || !res.NotModified || !res.Conditional || res.Batches != 0 {
		t.Errorf("second Sync() = %+v, %v, want a conditional fetch, not modified, with no batches", res, err)
	}
	if src.since[0] != (ingest.Validators{}) || src.since[1] != v1 {
		t.Errorf("validators sent = %v, want none then %v", src.since, v1)
	}
}

// TestSyncUnconditionalAfterLostBatch loses a batch of the second sync, as a store
// down for longer than a worker's retries does: the third fetch must not be
// conditional on the second sync's validators, nor on the first's (the store holds
// part of the second document), nor leave out plans (a batch of an older sync may
// still apply); and once a sync is applied whole, the next fetch is conditional on it
// again, and a document the store holds as it is publishes one batch without plans.
func TestSyncUnconditionalAfterLostBatch(t *testing.T) {
	b := newBroker(t)
	store := openStore(t)
	v1, v2 := ingest.Validators{ETag: `"v1"`}, ingest.Validators{ETag: `"v2"`}
	var lost string // the first sync of v2, whose batch 1 is lost; only the one consumer uses it
	settled := applyBatches(t, b, store, func(batch ingest.Batch) bool {
		if lost == "" && batch.Validators == v2 {
			lost = batch.SyncID
		}
		return batch.SyncID == lost && batch.Seq == 1
	})
	src := &script{steps: []func(func(catalog.Plan) error) (ingest.Fetched, error){
		emitN(25, v1), emitN(25, v2), emitN(25, v2), emitN(25, v2)}}
	s := newSyncer(t, src, b, memory.NewLocker(nil), store)
	sync := func(want int) ingest.Result {
		t.Helper()
		res, err := s.Sync(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		testenv.Poll(t, "the sync's batches settled", func() bool { return settled() == want })
		return res
	}
	sync(3)
	sync(6)
	if res := sync(9); res.Conditional || res.Unchanged != 0 || res.Batches != 3 {
		t.Errorf("third Sync() = %+v, want an unconditional fetch of 3 batches after a lost batch", res)
	}
	if res := sync(10); !res.Conditional || res.Unchanged != 25 || res.Batches != 1 {
		t.Errorf("fourth Sync() = %+v, want a conditional fetch after a sync applied whole, its 25 plans unchanged in 1 batch", res)
	}
	want := []ingest.Validators{{}, v1, {}, v2}
	if !slices.Equal(src.since, want) {
		t.Errorf("validators sent = %v, want %v", src.since, want)
	}
}

// TestSyncValidatorsOutliveTheSyncer runs a sync with one Syncer and the next with
// another over the same store, as after a restart or a change of leader: the second
// fetch is conditional on what the store confirmed, and the second sync's revision
// is above the first's even when this process's clock is behind.
func TestSyncValidatorsOutliveTheSyncer(t *testing.T) {
	b := newBroker(t)
	store := openStore(t)
	settled := applyBatches(t, b, store, nil)
	ahead := time.Now().Add(time.Hour).UnixNano() // the first leader's clock was an hour ahead
	v1 := ingest.Validators{ETag: `"v1"`}
	first := ingest.Batch{Schema: 1, Provider: "fever", SyncID: strconv.FormatInt(ahead, 36), Revision: ahead,
		Batches: 1, Validators: v1, Plans: []catalog.Plan{testPlan(1)}}
	first.Plans[0].Revision = ahead
	if _, err := store.ApplyBatch(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	got := collect(t, b)
	src := &script{steps: []func(func(catalog.Plan) error) (ingest.Fetched, error){emitN(1, ingest.Validators{ETag: `"v2"`})}}
	res, err := newSyncer(t, src, b, memory.NewLocker(nil), store).Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if src.since[0] != v1 || !res.Conditional {
		t.Errorf("a new Syncer sent %+v (%+v), want the stored %+v", src.since[0], res, v1)
	}
	testenv.Poll(t, "the batch", func() bool { return settled()+len(got()) >= 1 })
	if rev, err := strconv.ParseInt(res.SyncID, 36, 64); err != nil || rev <= ahead {
		t.Errorf("sync id %s (revision %d), want a revision above the stored %d", res.SyncID, rev, ahead)
	}
}

// TestSyncWithoutStateFetchesUnconditionally fails the read of the sync state: the
// sync goes on, unconditional.
func TestSyncWithoutStateFetchesUnconditionally(t *testing.T) {
	b := newBroker(t)
	got := collect(t, b)
	broken := syncLogFunc(func(context.Context, string) (ingest.SyncState, error) {
		return ingest.SyncState{}, errors.New("connection refused")
	})
	src := &script{steps: []func(func(catalog.Plan) error) (ingest.Fetched, error){emitN(5, ingest.Validators{ETag: `"v1"`})}}
	res, err := newSyncer(t, src, b, memory.NewLocker(nil), broken).Sync(t.Context())
	if err != nil || res.Conditional || res.Batches != 1 {
		t.Errorf("Sync() = %+v, %v, want an unconditional sync of 1 batch", res, err)
	}
	testenv.Poll(t, "the batch", func() bool { return len(got()) == 1 })
}

func TestSyncRefusesAnotherProvidersPlans(t *testing.T) {
	b := newBroker(t)
	src := sourceFunc(func(ctx context.Context, _ ingest.Validators, emit func(catalog.Plan) error) (ingest.Fetched, error) {
		p := testPlan(1)
		p.Provider = "acme"
		p.ID = catalog.NewID(p.Provider, p.BasePlanID, p.PlanID)
		return ingest.Fetched{}, emit(p)
	})
	if _, err := newSyncer(t, src, b, memory.NewLocker(nil), nil).Sync(t.Context()); err == nil || !strings.Contains(err.Error(), `"acme"`) {
		t.Errorf("Sync() = %v, want an error naming the plan's provider", err)
	}
	if n, err := b.QueueDepth(t.Context(), ingest.TopicPlans); err != nil || n != 0 {
		t.Errorf("%d batches published (%v), want 0", n, err)
	}
}

func TestSyncUnconditionalAfterFailedPublish(t *testing.T) {
	b := newBroker(t)
	b.Close() // every Publish fails
	src := &script{steps: []func(func(catalog.Plan) error) (ingest.Fetched, error){emitN(25, ingest.Validators{ETag: `"v1"`})}}
	s := newSyncer(t, src, b, memory.NewLocker(nil), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Sync(ctx); err == nil {
		t.Fatal("Sync() = nil, want a publish error")
	}
	if _, err := s.Sync(ctx); err == nil {
		t.Fatal("second Sync() = nil, want a publish error")
	}
	if src.since[1] != (ingest.Validators{}) {
		t.Errorf("validators after a failed publish = %v, want none: the next fetch must be unconditional", src.since[1])
	}
}

func TestOneLeaderSyncs(t *testing.T) {
	l := memory.NewLocker(nil)
	var calls [2]atomic.Int32
	stop := make([]context.CancelFunc, 2)
	done := make([]chan error, 2)
	for i := range 2 {
		src := sourceFunc(func(ctx context.Context, _ ingest.Validators, emit func(catalog.Plan) error) (ingest.Fetched, error) {
			calls[i].Add(1)
			return ingest.Fetched{Format: "planList"}, nil
		})
		s := newSyncer(t, src, newBroker(t), l, nil)
		var ctx context.Context
		ctx, stop[i] = context.WithCancel(t.Context())
		done[i] = make(chan error, 1)
		go func() { done[i] <- s.Run(ctx) }()
	}
	testenv.Poll(t, "a leader's sync", func() bool { return calls[0].Load()+calls[1].Load() > 0 })
	leader := 0
	if calls[1].Load() > 0 {
		leader = 1
	}
	standby := 1 - leader
	if calls[standby].Load() != 0 {
		t.Fatalf("both processes synced: %d and %d", calls[0].Load(), calls[1].Load())
	}
	stop[leader]()
	if err := <-done[leader]; err != nil {
		t.Errorf("Run() = %v on a clean stop, want nil", err)
	}
	testenv.Poll(t, "the standby to take over", func() bool { return calls[standby].Load() > 0 })
	stop[standby]()
	<-done[standby]
}

func TestDecodeBatchRejects(t *testing.T) {
	p := testPlan(1)
	wrongID := p
	wrongID.ID = catalog.NewID("other", p.BasePlanID, p.PlanID)
	invalid := p
	invalid.EndsAt = p.StartsAt.Add(-time.Hour)
	tests := []struct {
		name string
		body string
	}{
		{"not json", "{"},
		{"unknown schema", `{"schema":2,"plans":[]}`},
	}
	for _, tt := range tests {
		if _, err := ingest.DecodeBatch([]byte(tt.body)); err == nil {
			t.Errorf("%s: DecodeBatch() = nil, want an error", tt.name)
		}
	}
	for name, bad := range map[string]catalog.Plan{"wrong id": wrongID, "end before start": invalid} {
		body := fmt.Appendf(nil, `{"schema":1,"plans":[%s]}`, mustJSON(t, bad))
		if _, err := ingest.DecodeBatch(body); err == nil {
			t.Errorf("%s: DecodeBatch() = nil, want an error", name)
		}
	}
	if _, err := ingest.DecodeBatch(fmt.Appendf(nil, `{"schema":1,"plans":[%s]}`, mustJSON(t, p))); err != nil {
		t.Errorf("DecodeBatch(valid) = %v", err)
	}
}

func mustJSON(t *testing.T, p catalog.Plan) []byte {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSyncRecoversAPanic checks that a panic in a sync (here the source's, as a
// parser bug would) fails that sync with a *task.PanicError instead of killing the
// process, and that the next sync runs.
func TestSyncRecoversAPanic(t *testing.T) {
	b := newBroker(t)
	got := collect(t, b)
	src := &script{steps: []func(func(catalog.Plan) error) (ingest.Fetched, error){
		func(emit func(catalog.Plan) error) (ingest.Fetched, error) { panic("parse: index out of range") },
		emitN(5, ingest.Validators{}),
	}}
	s := newSyncer(t, src, b, memory.NewLocker(nil), nil)
	_, err := s.Sync(t.Context())
	var p *task.PanicError
	if !errors.As(err, &p) || p.Value != "parse: index out of range" || p.Stack == "" {
		t.Fatalf("Sync() = %v, want the source's panic with its stack", err)
	}
	if last := s.Last(); last.Err != err {
		t.Errorf("Last().Err = %v, want the panic", last.Err)
	}
	if res, err := s.Sync(t.Context()); err != nil || res.Parsed != 5 {
		t.Fatalf("second Sync() = %+v, %v, want 5 plans", res, err)
	}
	testenv.Poll(t, "the second sync's batch", func() bool { return plansIn(got()) == 5 })
}

// TestSyncRetriesWaitOnTheClock checks that a retry waits its backoff on the syncer's
// Clock: with an hour of backoff, the second attempt comes when the clock passes it,
// and no real time is waited.
func TestSyncRetriesWaitOnTheClock(t *testing.T) {
	var calls atomic.Int32
	src := sourceFunc(func(ctx context.Context, _ ingest.Validators, emit func(catalog.Plan) error) (ingest.Fetched, error) {
		if calls.Add(1) == 1 {
			return ingest.Fetched{}, errors.New("provider: 503 Service Unavailable")
		}
		return emitN(1, ingest.Validators{})(emit)
	})
	clk := clocktest.NewManual(time.Now())
	cfg := testConfig(t)
	cfg.Backoff, cfg.MaxBackoff, cfg.Clock = time.Hour, time.Hour, clk
	s := ingest.NewSyncer(src, newBroker(t), memory.NewLocker(nil), openStore(t), cfg, slog.New(slog.DiscardHandler))
	type result struct {
		res ingest.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := s.Sync(t.Context())
		done <- result{res, err}
	}()
	testenv.Poll(t, "the backoff's timer", func() bool { return clk.Waiters() > 0 })
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d fetches before the clock moved, want 1", n)
	}
	clk.Advance(2 * time.Hour) // past the backoff and its jitter
	r := <-done
	if r.err != nil || r.res.Attempts != 2 || calls.Load() != 2 {
		t.Errorf("Sync() = %+v, %v after %d fetches, want success on attempt 2", r.res, r.err, calls.Load())
	}
}

// TestProvidersLeadApart runs the syncers of two providers on one locker: each leads
// its own provider at once, and one whose source hangs never holds up the other's
// syncs, which the store records as they happen.
func TestProvidersLeadApart(t *testing.T) {
	l := memory.NewLocker(nil)
	store := openStore(t)
	release := make(chan struct{})
	defer close(release)
	var slow, fast atomic.Int32 // fetches begun, by provider
	sources := map[string]ingest.Source{
		"slow": sourceFunc(func(ctx context.Context, _ ingest.Validators, _ func(catalog.Plan) error) (ingest.Fetched, error) {
			slow.Add(1)
			select { // a provider that never answers
			case <-release:
			case <-ctx.Done():
			}
			return ingest.Fetched{}, ctx.Err()
		}),
		"fast": sourceFunc(func(context.Context, ingest.Validators, func(catalog.Plan) error) (ingest.Fetched, error) {
			fast.Add(1)
			return ingest.Fetched{Format: "json", Parsed: 0}, nil
		}),
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, len(sources))
	for name, src := range sources {
		cfg := testConfig(t)
		// A leader lock that a renewal starved by a loaded machine does not lose: the
		// test checks that each syncer leads its own provider to the end.
		cfg.Provider, cfg.Interval, cfg.LeaderTTL = name, 10*time.Millisecond, time.Minute
		s := ingest.NewSyncer(src, newBroker(t), l, store, cfg, slog.New(slog.DiscardHandler))
		go func() { done <- s.Run(ctx) }()
	}
	// The syncers start in no particular order: the fast one may sync many times before
	// the slow one first runs. Count the fast syncs from when the slow one hangs.
	testenv.Poll(t, "the slow provider's fetch to begin", func() bool { return slow.Load() > 0 })
	from := fast.Load()
	testenv.Poll(t, "three syncs of the fast provider beside the hung one", func() bool { return fast.Load() >= from+3 })
	var recs []ingest.SyncRecord
	testenv.Poll(t, "the fast provider's syncs recorded", func() bool {
		var err error
		recs, err = store.ProviderSyncs(t.Context())
		return err == nil && len(recs) == 1
	})
	if r := recs[0]; r.Provider != "fast" || r.Outcome != ingest.OutcomeOK || r.Format != "json" || r.Attempts != 1 ||
		r.LastSuccessAt.IsZero() || !r.NextAt.After(r.StartedAt) || r.FinishedAt.Before(r.StartedAt) {
		t.Errorf("recorded %+v, want the fast provider's successful sync", r)
	}
	for _, name := range []string{"slow", "fast"} {
		lock, err := l.Lock(t.Context(), ingest.LeaderKey(name), time.Second)
		if !errors.Is(err, task.ErrLocked) {
			t.Errorf("Lock(%s) = %v, %v; want ErrLocked: its syncer leads", ingest.LeaderKey(name), lock, err)
		}
	}
	cancel()
	for range sources {
		if err := <-done; err != nil {
			t.Errorf("Run() = %v on a clean stop, want nil", err)
		}
	}
}

// A failed sync is recorded with its error, and the last success stays.
func TestSyncRecordsFailure(t *testing.T) {
	store := openStore(t)
	var calls atomic.Int32
	src := sourceFunc(func(context.Context, ingest.Validators, func(catalog.Plan) error) (ingest.Fetched, error) {
		if calls.Add(1) == 1 {
			return ingest.Fetched{Format: "planList", Parsed: 0}, nil
		}
		return ingest.Fetched{}, fmt.Errorf("provider: GET http://p/: %w", ingest.ErrMalformed)
	})
	cfg := testConfig(t)
	cfg.Interval = 10 * time.Millisecond
	s := ingest.NewSyncer(src, newBroker(t), memory.NewLocker(nil), store, cfg, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var recs []ingest.SyncRecord
	testenv.Poll(t, "a failed sync recorded", func() bool {
		var err error
		recs, err = store.ProviderSyncs(t.Context())
		return err == nil && len(recs) == 1 && recs[0].Outcome == ingest.OutcomeFailed
	})
	cancel()
	<-done
	r := recs[0]
	if !strings.Contains(r.Error, "malformed provider document") || r.LastSuccessAt.IsZero() || !r.LastSuccessAt.Before(r.StartedAt) {
		t.Errorf("recorded %+v, want the malformed document's error and the earlier success", r)
	}
}

// TestSyncBaselineBound syncs a document the store holds as it is, with a bound on the
// stored plans a sync reads below and then at their number: below, the sync reads none,
// says why and publishes every plan; at it, it leaves every plan out.
func TestSyncBaselineBound(t *testing.T) {
	b := newBroker(t)
	store := openStore(t)
	settled := applyBatches(t, b, store, nil)
	v1 := ingest.Validators{ETag: `"v1"`}
	var logs strings.Builder
	sync := func(maxPlans, wantSettled int) ingest.Result {
		t.Helper()
		cfg := testConfig(t)
		cfg.BaselinePlans = maxPlans
		s := ingest.NewSyncer(&script{steps: []func(func(catalog.Plan) error) (ingest.Fetched, error){emitN(25, v1)}},
			b, memory.NewLocker(nil), store, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		res, err := s.Sync(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		testenv.Poll(t, "the sync's batches settled", func() bool { return settled() == wantSettled })
		return res
	}
	sync(24, 3)
	logs.Reset()
	if res := sync(24, 6); res.Unchanged != 0 || res.Batches != 3 {
		t.Errorf("Sync() of 25 stored plans, 24 at most = %+v, want 3 batches of every plan", res)
	}
	if !strings.Contains(logs.String(), "SYNC_BASELINE_MAX_PLANS") {
		t.Errorf("log = %q, want a line on the stored plans over SYNC_BASELINE_MAX_PLANS", logs.String())
	}
	logs.Reset()
	if res := sync(25, 7); res.Unchanged != 25 || res.Batches != 1 {
		t.Errorf("Sync() of 25 stored plans, 25 at most = %+v, want its 25 plans unchanged in 1 batch", res)
	}
	if strings.Contains(logs.String(), "SYNC_BASELINE_MAX_PLANS") {
		t.Errorf("log = %q, want no line on SYNC_BASELINE_MAX_PLANS", logs.String())
	}
}

// TestSyncBaselineEverOnline syncs a plan the store holds with the same values: it is
// left out unless it is online and the stored plan was never online (a batch would make
// it ever-online, and searchable).
func TestSyncBaselineEverOnline(t *testing.T) {
	tests := []struct {
		name          string
		give          catalog.SellMode
		neverOnline   bool
		wantUnchanged int
	}{
		{name: "online, stored ever-online", give: catalog.Online, wantUnchanged: 1},
		{name: "offline, stored ever-online", give: catalog.Offline, wantUnchanged: 1},
		{name: "online, stored never online", give: catalog.Online, neverOnline: true, wantUnchanged: 0},
		{name: "offline, stored never online", give: catalog.Offline, neverOnline: true, wantUnchanged: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPlan(0)
			p.SellMode = tt.give
			held := newHeldPlans([]catalog.Plan{testPlan(1), p, testPlan(2)})
			held.neverOnline = tt.neverOnline
			s := ingest.NewSyncer(planSource([]catalog.Plan{p}), &dropPublisher{}, memory.NewLocker(nil), held,
				testConfig(t), slog.New(slog.DiscardHandler))
			res, err := s.Sync(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if res.Unchanged != tt.wantUnchanged {
				t.Errorf("Sync() = %+v, want %d plans unchanged", res, tt.wantUnchanged)
			}
		})
	}
}
