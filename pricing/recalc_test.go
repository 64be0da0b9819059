package pricing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/memory"
	"boxoffice/postgres"
	"boxoffice/pricing"
	"boxoffice/rabbitmq"
	"boxoffice/redis"
	"boxoffice/sqlite"
	"boxoffice/task"
	"boxoffice/testenv"
)

// The recalculation, the quotes and the listener run here on both sets of real
// adapters: the embedded one (SQLite and the in-process broker, lock, cache and bus)
// and the distributed one (PostgreSQL with its replica, RabbitMQ, and Redis).

// testRetry retries quickly, so that exhausting the attempts takes milliseconds.
var testRetry = task.RetryPolicy{MaxAttempts: 6, Countdown: 20 * time.Millisecond, MaxDelay: 100 * time.Millisecond}

type stores interface {
	catalog.Store
	pricing.Store
	task.Records
	task.Outbox
}

// rig is one set of adapters.
type rig struct {
	store  stores
	broker interface {
		task.Publisher
		task.Subscriber
		task.DeadLetters
	}
	locker task.Locker
	cache  pricing.Cache
	bus    pricing.Bus
	log    *slog.Logger
	// primary reads the task records as written, where store may read a replica
	// behind them.
	primary task.Records
	tp      trace.TracerProvider // nil: tracing off
}

// eachRig runs test on the embedded adapters and on the distributed ones.
func eachRig(t *testing.T, test func(t *testing.T, r *rig)) {
	t.Run("embedded", func(t *testing.T) { test(t, embedded(t)) })
	t.Run("distributed", func(t *testing.T) { test(t, distributed(t)) })
}

func embedded(t *testing.T) *rig {
	ctx := t.Context()
	s, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	log := testLog(t)
	b, err := sqlite.OpenBroker(ctx, t.TempDir(), sqlite.BrokerConfig{Retry: testRetry}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return &rig{store: s, broker: b, locker: memory.NewLocker(nil), cache: memory.NewPriceCache(1000, nil), bus: memory.NewBus(), log: log, primary: s}
}

func distributed(t *testing.T) *rig {
	ctx := t.Context()
	primary, replica := testenv.PostgresSchema(t)
	brokerURL, redisURL := testenv.BrokerURL(t), testenv.RedisURL(t)
	log := testLog(t)
	s, err := postgres.Open(ctx, primary, replica, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	onPrimary, err := postgres.Open(ctx, primary, primary, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(onPrimary.Close)
	prefix := "pricingtest-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	b, err := rabbitmq.Open(ctx, brokerURL, rabbitmq.Config{Prefix: prefix, Retry: testRetry}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.DeleteTopic(context.Background(), pricing.TopicRecalculate); err != nil {
			t.Errorf("delete topic: %v", err)
		}
		b.Close()
	})
	rc, err := redis.Open(ctx, redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return &rig{
		store: s, broker: b, locker: redis.NewLocker(rc, prefix), cache: redis.NewPriceCache(rc, prefix),
		bus: redis.NewBus(rc, prefix+":market_events", log), log: log, primary: onPrimary,
	}
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// seed upserts plans with zones, so there are products to price, and returns them.
func seed(t *testing.T, s stores, n int) []catalog.Plan {
	plans := make([]catalog.Plan, n)
	for i := range plans {
		plans[i] = catalogtest.NewPlan(strconv.Itoa(i), "1", func(p *catalog.Plan) {
			p.Zones = []catalog.Zone{
				{ZoneID: "1", Name: "Platea", Capacity: 100, Price: catalog.Money(2000 + i)},
				{ZoneID: "1", Name: "Platea", Capacity: 5, Price: 3333, Numbered: true},
			}
		})
	}
	if _, err := s.UpsertPlans(t.Context(), plans); err != nil {
		t.Fatal(err)
	}
	return plans
}

// recalcConfig is the configuration of the rig's Recalculators: quick retries, small
// batches, and a lock that outlasts a test on a loaded machine: renewed every 10 s of
// the real clock, it is lost only if the renewal stalls for 20 s. With a 3 s lock, a
// renewal starved for 2 s (the race detector, a load of 15 on two cores) lost it, and a
// test of runs that must not overlap saw the fencing it checks for, rightly, take over.
// A test that needs the lock to expire takes it away (lostlock_test.go) or runs on a
// manual clock (renew_test.go).
func (r *rig) recalcConfig() pricing.RecalcConfig {
	return pricing.RecalcConfig{Retry: testRetry, LockTTL: 30 * time.Second, LockWait: time.Minute, BatchSize: 7,
		Now: time.Now, TracerProvider: r.tp}
}

func (r *rig) recalculator(s pricing.RecalcStore) *pricing.Recalculator {
	return pricing.NewRecalculator(s, r.store, r.cache, r.locker, r.recalcConfig(), r.log)
}

// work runs n workers on the rig's broker, each with its own Recalculator on store s,
// until the test ends.
func (r *rig) work(t *testing.T, s pricing.Store, n int) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	for range n {
		w := task.NewWorker(r.broker, map[string]task.Handler{pricing.TopicRecalculate: r.recalculator(s).Handle},
			task.WorkerConfig{TracerProvider: r.tp}, r.log)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(ctx); err != nil {
				t.Errorf("worker: %v", err)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func (r *rig) enqueue(t *testing.T) task.Record {
	rec, err := pricing.Enqueue(t.Context(), r.store, r.broker, r.tp, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// await waits for a task to end and returns it.
func (r *rig) await(t *testing.T, id string) task.Record {
	t.Helper()
	var rec task.Record
	testenv.Poll(t, "task "+id+" to end", func() bool {
		var err error
		rec, err = r.store.Task(t.Context(), id)
		if err != nil {
			t.Fatalf("Task(%s): %v", id, err)
		}
		return rec.State.Terminal()
	})
	return rec
}

func TestConcurrentTriggersNeverOverlap(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		seed(t, r.store, 30)
		r.work(t, r.store, 2)
		ids := make([]string, 20)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec, err := pricing.Enqueue(t.Context(), r.store, r.broker, r.tp, "test", time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = rec.ID
			}()
		}
		wg.Wait()
		var runs []task.Record
		var maxGen int64
		for _, id := range ids {
			rec := r.await(t, id)
			maxGen = max(maxGen, rec.Gen)
			var res pricing.Result
			if err := json.Unmarshal(rec.Result, &res); err != nil {
				t.Fatalf("task %s result %s: %v", id, rec.Result, err)
			}
			switch rec.State {
			case task.Succeeded:
				if res.Products != 60 || res.Generation < rec.Gen {
					t.Errorf("run %s priced %d products covering generation %d, want 60 covering %d", id, res.Products, res.Generation, rec.Gen)
				}
				runs = append(runs, rec)
			case task.Skipped:
				if res.CoveredBy == 0 {
					t.Errorf("skipped task %s names no covering version: %s", id, rec.Result)
				}
			default:
				t.Errorf("task %s ended %s (%s), want succeeded or skipped", id, rec.State, rec.Error)
			}
		}
		if len(runs) == 0 {
			t.Fatal("no task ran")
		}
		slices.SortFunc(runs, func(a, b task.Record) int { return a.StartedAt.Compare(b.StartedAt) })
		for i := 1; i < len(runs); i++ {
			if runs[i].StartedAt.Before(runs[i-1].FinishedAt) {
				t.Errorf("runs overlap: %s ran %s–%s, %s started at %s", runs[i-1].ID,
					runs[i-1].StartedAt.Format(time.StampMicro), runs[i-1].FinishedAt.Format(time.StampMicro),
					runs[i].ID, runs[i].StartedAt.Format(time.StampMicro))
			}
		}
		st, err := r.store.PricingState(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.Done < maxGen || st.Requested != maxGen {
			t.Errorf("state %+v after 20 triggers up to generation %d", st, maxGen)
		}
		t.Logf("20 triggers: %d runs, %d skipped as covered", len(runs), 20-len(runs))
	})
}

// faultyStore fails SavePrices as fail says.
type faultyStore struct {
	stores
	fail func() error
}

func (f faultyStore) SavePrices(ctx context.Context, p []pricing.Priced) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.stores.SavePrices(ctx, p)
}

func connectionRefused() error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: syscall.ECONNREFUSED.Error(), Addr: "127.0.0.1:5432"}}
}

func TestTransientFailuresAreRetried(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		seed(t, r.store, 3)
		var calls atomic.Int32
		r.work(t, faultyStore{r.store, func() error {
			if calls.Add(1) <= 2 {
				return connectionRefused()
			}
			return nil
		}}, 1)
		rec := r.await(t, r.enqueue(t).ID)
		if rec.State != task.Succeeded || rec.Attempts != 3 {
			t.Errorf("task ended %s after %d attempts (%s), want succeeded after 3", rec.State, rec.Attempts, rec.Error)
		}
	})
}

func TestPermanentFailureIsDeadLettered(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		seed(t, r.store, 3)
		r.work(t, faultyStore{r.store, func() error { return task.Permanent(errors.New("product data is corrupt")) }}, 1)
		rec := r.await(t, r.enqueue(t).ID)
		if rec.State != task.Failed || rec.Attempts != 1 || rec.Error == "" || rec.ErrorCode != task.CodePermanent {
			t.Errorf("task ended %s after %d attempts (%s %q), want failed after 1 with the error and code %s",
				rec.State, rec.Attempts, rec.ErrorCode, rec.Error, task.CodePermanent)
		}
		r.awaitDeadLetter(t, rec.ID)
	})
}

func TestExhaustedRetriesFailAndDeadLetter(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		seed(t, r.store, 3)
		r.work(t, faultyStore{r.store, connectionRefused}, 1)
		rec := r.await(t, r.enqueue(t).ID)
		if rec.State != task.Failed || rec.Attempts != testRetry.MaxAttempts || rec.ErrorCode != task.CodeRetriesExhausted {
			t.Errorf("task ended %s after %d attempts (%s %s), want failed after %d with code %s", rec.State, rec.Attempts,
				rec.ErrorCode, rec.Error, testRetry.MaxAttempts, task.CodeRetriesExhausted)
		}
		r.awaitDeadLetter(t, rec.ID)
	})
}

func (r *rig) awaitDeadLetter(t *testing.T, taskID string) {
	t.Helper()
	testenv.Poll(t, "the task's message in the dead letters", func() bool {
		dead, err := r.broker.ListDeadLetters(t.Context(), pricing.TopicRecalculate, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range dead {
			var msg pricing.RecalculateMessage
			if json.Unmarshal(m.Body, &msg) == nil && msg.TaskID == taskID {
				return true
			}
		}
		return false
	})
}

func TestNoStaleQuoteAfterRecalculation(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		plans := seed(t, r.store, 3)
		r.work(t, r.store, 1)
		svc := r.service()
		product := pricing.Products(plans[0])[0]
		req := pricing.Request{ProductID: product.ID, Location: "madrid"}
		first := quote(t, svc, req)
		if first.Source != pricing.SourceDatabase || quote(t, svc, req).Source != pricing.SourceCache {
			t.Fatalf("the first quote came from %s, the second not from the cache", first.Source)
		}
		for i, mult := range []string{"1.5", "2", "0.5"} {
			ev, err := pricing.DecodeEvent([]byte(`{"location":"madrid","multiplier":`+mult+`}`), false)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := svc.PublishEvent(t.Context(), ev); err != nil {
				t.Fatal(err)
			}
			rec := r.await(t, r.enqueue(t).ID)
			if rec.State != task.Succeeded && rec.State != task.Skipped {
				t.Fatalf("recalculation %d ended %s: %s", i, rec.State, rec.Error)
			}
			// The very next quote has the new market, whatever was cached.
			m, _ := pricing.ParseRate(mult)
			want, err := pricing.DefaultPolicy.Factors(product.BasePrice, 0, pricing.Market{Multiplier: m}).Price(0)
			if err != nil {
				t.Fatal(err)
			}
			if got := quote(t, svc, req); got.Final.String() != want.String() || got.Source != pricing.SourceDatabase {
				t.Errorf("after multiplier %s: quote %+v, want final %s from the database", mult, got, want)
			}
			if got := quote(t, svc, req); got.Final.String() != want.String() || got.Source != pricing.SourceCache {
				t.Errorf("after multiplier %s, again: quote %+v, want final %s from the cache", mult, got, want)
			}
		}
	})
}

func (r *rig) service() *pricing.Service {
	return r.serviceWith(pricing.NewQuoter(r.store, r.cache, pricing.QuoterConfig{TTL: time.Minute, CacheTimeout: patientCache}, r.log))
}

// patientCache bounds the cache calls of the tests whose quotes must reach the rig's
// cache (Redis, in the distributed rig): the default 50 ms bound, right for production,
// is one a loaded test machine misses now and then, and a quote then comes from the
// database, as it should. The tests of that bound use caches that fail or hang.
const patientCache = 10 * time.Second

// serviceWith returns the rig's Service quoting with q.
func (r *rig) serviceWith(q *pricing.Quoter) *pricing.Service {
	return pricing.NewService(q, r.store, r.store, r.bus, r.broker, pricing.ServiceConfig{TracerProvider: r.tp}, r.log)
}

type quoteJSON struct {
	ProductID string      `json:"product_id"`
	Final     json.Number `json:"final_price"`
	Base      json.Number `json:"base_price"`
	Discount  json.Number `json:"discount_rate"`
	Source    string      `json:"source"`
}

func quote(t *testing.T, svc *pricing.Service, req pricing.Request) quoteJSON {
	t.Helper()
	body, err := svc.Quote(t.Context(), req)
	if err != nil {
		t.Fatalf("Quote(%+v): %v", req, err)
	}
	var q quoteJSON
	if err := json.Unmarshal(body, &q); err != nil {
		t.Fatalf("quote %s: %v", body, err)
	}
	return q
}

func TestQuotes(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		plans := seed(t, r.store, 2)
		var lookups []string
		svc := r.serviceWith(pricing.NewQuoter(r.store, r.cache, pricing.QuoterConfig{TTL: time.Minute, CacheTimeout: patientCache,
			Lookup: func(result string) { lookups = append(lookups, result) }}, r.log))
		p := pricing.Products(plans[1])[0] // 20.01, plenty of capacity, long past
		for _, tt := range []struct {
			req         pricing.Request
			final, rate string
		}{
			{pricing.Request{ProductID: p.ID, Location: "madrid"}, "20.01", "0"},
			{pricing.Request{ProductID: p.ID, Location: "madrid", Prime: true}, "18.01", "0.1"}, // 18.009 → 18.01
			{pricing.Request{ProductID: p.ID, Location: "bcn", Prime: true}, "18.01", "0.1"},
		} {
			for _, source := range []string{pricing.SourceDatabase, pricing.SourceCache} {
				got := quote(t, svc, tt.req)
				if got.Final.String() != tt.final || got.Base.String() != "20.01" || got.Discount.String() != tt.rate || got.Source != source || got.ProductID != p.ID.String() {
					t.Errorf("Quote(%+v) = %+v, want final %s, base 20.01, rate %s, from %s", tt.req, got, tt.final, tt.rate, source)
				}
			}
		}
		if _, err := svc.Quote(t.Context(), pricing.Request{ProductID: catalog.NewID("x", "y", "z"), Location: "madrid"}); !errors.Is(err, pricing.ErrNotFound) {
			t.Errorf("Quote(unknown product) = %v, want ErrNotFound", err)
		}
		if want := []string{"miss", "hit", "miss", "hit", "miss", "hit", "miss"}; !slices.Equal(lookups, want) {
			t.Errorf("cache lookups %q, want %q", lookups, want)
		}
	})
}

func TestListenerAppliesEventsPublishedWhileItWasDown(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		seed(t, r.store, 2)
		r.work(t, r.store, 1)
		svc := r.service()
		publish := func(from, to int) {
			for i := from; i < to; i++ {
				body := fmt.Sprintf(`{"location":"city-%d","multiplier":%d.%04d}`, i%5, 1+i/10, i)
				ev, err := pricing.DecodeEvent([]byte(body), false)
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := svc.PublishEvent(t.Context(), ev); err != nil {
					t.Fatal(err)
				}
			}
		}
		listen := func() (stop func()) {
			ctx, cancel := context.WithCancel(t.Context())
			l := pricing.NewListener(r.store, r.store, r.bus, r.broker, pricing.ListenerConfig{Quiet: 20 * time.Millisecond,
				MaxDelay: 200 * time.Millisecond, Poll: time.Hour, Now: time.Now}, r.log)
			done := make(chan error, 1)
			go func() { done <- l.Run(ctx) }()
			return func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("listener: %v", err)
				}
			}
		}
		applied := func(n int) {
			testenv.Poll(t, fmt.Sprintf("%d events applied", n), func() bool {
				st, err := r.store.PricingState(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				return st.Events == int64(n) && st.Applied == st.Events && st.Done == st.Requested
			})
		}
		publish(0, 10) // no listener yet
		stop := listen()
		applied(10)
		publish(10, 20) // heard on the bus
		applied(20)
		stop()
		publish(20, 40) // while the listener restarts
		stop = listen()
		defer stop()
		applied(40)
		for city := range 5 {
			last := 35 + city // the last event for city-k is number 35+k
			want, _ := pricing.ParseRate(fmt.Sprintf("%d.%04d", 1+last/10, last))
			m, _, err := r.store.Market(t.Context(), fmt.Sprintf("city-%d", city), true)
			if err != nil || m.Multiplier != want {
				t.Errorf("market city-%d = %+v, %v; want multiplier %s", city, m, err, want)
			}
		}
	})
}

// hungCache answers nothing until its caller gives up, like a Redis that stopped
// responding without closing its connections.
type hungCache struct{}

func (hungCache) Get(ctx context.Context, _ string) ([]byte, int64, error) {
	<-ctx.Done()
	return nil, 0, ctx.Err()
}
func (hungCache) Set(ctx context.Context, _ string, _ int64, _ []byte, _ time.Duration) error {
	<-ctx.Done()
	return ctx.Err()
}
func (hungCache) SetVersion(ctx context.Context, _ int64) error { <-ctx.Done(); return ctx.Err() }

func TestQuotesSurviveAHungCache(t *testing.T) {
	r := embedded(t)
	plans := seed(t, r.store, 1)
	var lookups []string
	svc := r.serviceWith(pricing.NewQuoter(r.store, hungCache{}, pricing.QuoterConfig{TTL: time.Minute,
		Lookup: func(result string) { lookups = append(lookups, result) }}, r.log))
	req := pricing.Request{ProductID: pricing.Products(plans[0])[0].ID, Location: "madrid"}
	for range 3 { // the request's own context has no deadline: the cache's bound ends the wait
		if got := quote(t, svc, req); got.Source != pricing.SourceDatabase || got.Final.String() != "20.00" {
			t.Errorf("quote with a hung cache = %+v, want 20.00 from the database", got)
		}
	}
	if want := []string{"error", "error", "error"}; !slices.Equal(lookups, want) {
		t.Errorf("cache lookups %q, want %q", lookups, want)
	}
}

// frozenReplica is a store whose replica stopped replaying: the reads that may go to a
// replica answer what they answered when it froze, the primary's are live. It counts
// the reads of the pricing state.
type frozenReplica struct {
	stores
	product pricing.Priced
	market  pricing.Market
	version int64
	states  atomic.Int32
}

// freeze returns s with its replica frozen now, for the product id at location.
func freeze(t *testing.T, s stores, id catalog.ID, location string) *frozenReplica {
	f := &frozenReplica{stores: s}
	var err error
	if f.product, err = s.Product(t.Context(), id, false); err != nil {
		t.Fatal(err)
	}
	if f.market, f.version, err = s.Market(t.Context(), location, false); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *frozenReplica) Product(ctx context.Context, id catalog.ID, primary bool) (pricing.Priced, error) {
	if primary {
		return f.stores.Product(ctx, id, true)
	}
	return f.product, nil
}

func (f *frozenReplica) Market(ctx context.Context, location string, primary bool) (pricing.Market, int64, error) {
	if primary {
		return f.stores.Market(ctx, location, true)
	}
	return f.market, f.version, nil
}

func (f *frozenReplica) PricingState(ctx context.Context) (pricing.State, error) {
	f.states.Add(1)
	return f.stores.PricingState(ctx)
}

// failingCache fails every call at once, like a Redis that refuses connections.
type failingCache struct{}

var errCacheDown = errors.New("cache down")

func (failingCache) Get(context.Context, string) ([]byte, int64, error) { return nil, 0, errCacheDown }
func (failingCache) Set(context.Context, string, int64, []byte, time.Duration) error {
	return errCacheDown
}
func (failingCache) SetVersion(context.Context, int64) error { return errCacheDown }

// TestNoStaleQuoteWhenTheCacheCannotTell quotes, after a recalculation succeeded, from
// a replica that has not replayed it, through caches that cannot say which version is
// current: failing, hung, or new (Redis lost its data). The quote must have the new
// price: the primary's version is the floor then. Through the cache that the
// recalculation updated, the quote is just as new, and the primary's version is never
// read for it.
func TestNoStaleQuoteWhenTheCacheCannotTell(t *testing.T) {
	r := embedded(t)
	plans := seed(t, r.store, 1)
	r.work(t, r.store, 1)
	svc := r.service()
	req := pricing.Request{ProductID: pricing.Products(plans[0])[0].ID, Location: "madrid"}
	if got := quote(t, svc, req); got.Final.String() != "20.00" {
		t.Fatalf("quote before the event = %+v, want 20.00", got)
	}
	frozen := freeze(t, r.store, req.ProductID, req.Location)
	ev, err := pricing.DecodeEvent([]byte(`{"location":"madrid","multiplier":2}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.PublishEvent(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	if rec := r.await(t, r.enqueue(t).ID); rec.State != task.Succeeded {
		t.Fatalf("recalculation ended %s: %s", rec.State, rec.Error)
	}
	for _, tt := range []struct {
		name    string
		cache   pricing.Cache
		timeout time.Duration // of each cache call; 0: the default
		states  int32         // reads of the primary's version by one quote
	}{
		{"healthy", r.cache, patientCache, 0},
		{"failing", failingCache{}, 0, 1},
		{"hung", hungCache{}, 0, 1},
		{"new", memory.NewPriceCache(10, nil), 0, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			frozen.states.Store(0)
			q := pricing.NewQuoter(frozen, tt.cache, pricing.QuoterConfig{TTL: time.Minute, CacheTimeout: tt.timeout}, r.log)
			got := quote(t, r.serviceWith(q), req)
			if got.Final.String() != "40.00" || got.Source != pricing.SourceDatabase {
				t.Errorf("quote = %+v, want 40.00 from the database", got)
			}
			if n := frozen.states.Load(); n != tt.states {
				t.Errorf("the quote read the primary's version %d times, want %d", n, tt.states)
			}
		})
	}
	// The new cache learnt the version from the quote: the next one is a hit, and reads
	// nothing.
	cache := memory.NewPriceCache(10, nil)
	q := pricing.NewQuoter(frozen, cache, pricing.QuoterConfig{TTL: time.Minute}, r.log)
	svc = r.serviceWith(q)
	quote(t, svc, req)
	frozen.states.Store(0)
	if got := quote(t, svc, req); got.Final.String() != "40.00" || got.Source != pricing.SourceCache || frozen.states.Load() != 0 {
		t.Errorf("second quote through a new cache = %+v after %d reads of the version, want 40.00 from the cache after none", got, frozen.states.Load())
	}
}

// panickyStore panics in PricingState until calm is set, like a store adapter with a
// bug that some data triggers.
type panickyStore struct {
	stores
	calm atomic.Bool
}

func (p *panickyStore) PricingState(ctx context.Context) (pricing.State, error) {
	if !p.calm.Load() {
		panic("pricing state: index out of range")
	}
	return p.stores.PricingState(ctx)
}

// TestListenerSurvivesAPanic checks that a panic in the listener's loop is recovered,
// counted and logged, and that the listener goes on to enqueue for the events once the
// cause is gone.
func TestListenerSurvivesAPanic(t *testing.T) {
	r := embedded(t)
	seed(t, r.store, 2)
	r.work(t, r.store, 1)
	store := &panickyStore{stores: r.store}
	var panics atomic.Int32
	l := pricing.NewListener(store, r.store, r.bus, r.broker, pricing.ListenerConfig{Quiet: time.Millisecond,
		MaxDelay: 10 * time.Millisecond, Poll: 10 * time.Millisecond, Now: time.Now,
		Panicked: func() { panics.Add(1) }}, r.log)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	ev, err := pricing.DecodeEvent([]byte(`{"location":"madrid","multiplier":1.5}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.service().PublishEvent(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, "the listener to panic twice", func() bool { return panics.Load() >= 2 })
	store.calm.Store(true)
	testenv.Poll(t, "the event applied", func() bool {
		st, err := r.store.PricingState(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return st.Events == 1 && st.Applied == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("listener: %v", err)
	}
}
