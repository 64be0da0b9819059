package main

import (
	"cmp"
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"boxoffice/catalog"
	"boxoffice/ingest"
	"boxoffice/pricing"
	"boxoffice/task"
)

// metrics are a process's Prometheus metrics beyond the HTTP API's own: tasks, locks,
// syncs, versions, and, read at each scrape, the database pools, the Pub/Sub
// subscriptions and the broker's queues.
// Every role serves them at /metrics.
type metrics struct {
	reg            *prometheus.Registry
	taskRuns       *prometheus.CounterVec
	taskDuration   *prometheus.HistogramVec
	lockContended  *prometheus.CounterVec
	syncs          *prometheus.CounterVec
	syncDuration   *prometheus.HistogramVec
	plansParsed    *prometheus.CounterVec
	plansSkipped   *prometheus.CounterVec
	catalogSeen    atomic.Int64                     // the last version this process committed
	searcher       atomic.Pointer[catalog.Searcher] // the API's, whose index has a version
	pricingVersion prometheus.Gauge
	marketEvents   *prometheus.CounterVec
	priceCache     *prometheus.CounterVec
	panics         *prometheus.CounterVec
	redriven       *prometheus.CounterVec
}

func newMetrics() *metrics {
	// A table of declarations: the collectors are alike in shape, each its own metric.
	m := &metrics{
		reg: prometheus.NewRegistry(),
		taskRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boxoffice_task_runs_total", Help: "Task attempts by kind and outcome (succeeded, skipped, retried, failed).",
		}, []string{"kind", "outcome"}),
		taskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "boxoffice_task_duration_seconds", Help: "Duration of task attempts by kind and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14), // 5 ms to 41 s
		}, []string{"kind", "outcome"}),
		lockContended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boxoffice_lock_contended_total", Help: "Attempts to take a lock that another owner held.",
		}, []string{"lock"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boxoffice_sync_total", Help: "Provider syncs by provider and outcome (ok, not_modified, failed).",
		}, []string{"provider", "outcome"}),
		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "boxoffice_sync_duration_seconds", Help: "Duration of provider syncs by provider and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 15), // 10 ms to 164 s
		}, []string{"provider", "outcome"}),
		plansParsed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boxoffice_sync_plans_parsed_total", Help: "Plans parsed from provider documents, by provider.",
		}, []string{"provider"}),
		plansSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boxoffice_sync_plans_skipped_total", Help: "Plans skipped for bad data, by provider and reason.",
		}, []string{"provider", "reason"}),
		pricingVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "boxoffice_pricing_version", Help: "The pricing version this process last published.",
		}),
		marketEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boxoffice_market_events_received_total", Help: "Market event payloads the listener received, by outcome.",
		}, []string{"outcome"}),
		priceCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boxoffice_price_cache_requests_total", Help: "Price quote cache lookups by result (hit, miss, error).",
		}, []string{"result"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boxoffice_panics_total", Help: "Panics recovered, by component (worker, listener, ingest); each is logged with its stack.",
		}, []string{"component"}),
		redriven: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boxoffice_task_redriven_total", Help: "Tasks the outbox published again (never published, lost by the broker, or left running by a worker that died), by kind.",
		}, []string{"kind"}),
	}
	for _, c := range []string{"worker", "listener", "ingest"} {
		m.panics.WithLabelValues(c) // at 0 from the start, so that increase() sees the first
	}
	catalogVersion := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "boxoffice_catalog_version", Help: "The catalog version this process committed or serves, the higher.",
	}, func() float64 {
		v := m.catalogSeen.Load()
		if s := m.searcher.Load(); s != nil {
			if ix := s.Index(); ix != nil {
				v = max(v, ix.Version())
			}
		}
		return float64(v)
	})
	index := func(f func(s *catalog.Searcher, ix *catalog.Index) float64) func() float64 {
		return func() float64 {
			if s := m.searcher.Load(); s != nil {
				return f(s, s.Index())
			}
			return 0
		}
	}
	indexPlans := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "boxoffice_search_index_plans", Help: "Plans in the API's in-memory search index (0 while not loaded, or over its budget).",
	}, index(func(_ *catalog.Searcher, ix *catalog.Index) float64 {
		if ix == nil {
			return 0
		}
		return float64(ix.Len())
	}))
	indexBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "boxoffice_search_index_bytes", Help: "Estimated memory of the API's search index, with the previous versions it keeps for paginated searches (INDEX_MAX_BYTES bounds it).",
	}, index(func(s *catalog.Searcher, _ *catalog.Index) float64 { return float64(s.Bytes()) }))
	overBudget := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "boxoffice_search_index_over_budget", Help: "1 when the catalog is beyond INDEX_MAX_BYTES and searches read the store.",
	}, index(func(s *catalog.Searcher, _ *catalog.Index) float64 {
		if s.OverBudget() {
			return 1
		}
		return 0
	}))
	m.reg.MustRegister(indexPlans, indexBytes, overBudget)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.taskRuns, m.taskDuration, m.lockContended, m.syncs, m.syncDuration, m.plansParsed, m.plansSkipped,
		catalogVersion, m.pricingVersion, m.marketEvents, m.priceCache, m.panics, m.redriven)
	return m
}

// observeSync returns the Observe hook of provider's Syncer, which counts each sync.
func (m *metrics) observeSync(provider string) func(res ingest.Result, err error) {
	m.plansParsed.WithLabelValues(provider) // at 0 from the start, so that rate() sees the first
	return func(res ingest.Result, err error) {
		outcome := ingest.OutcomeOK
		switch {
		case err != nil:
			outcome = ingest.OutcomeFailed
		case res.NotModified:
			outcome = ingest.OutcomeNotModified
		}
		if p := (*task.PanicError)(nil); errors.As(err, &p) {
			m.panics.WithLabelValues("ingest").Inc()
		}
		m.syncs.WithLabelValues(provider, outcome).Inc()
		m.syncDuration.WithLabelValues(provider, outcome).Observe(res.Duration.Seconds())
		m.plansParsed.WithLabelValues(provider).Add(float64(res.Parsed))
		if res.Skipped > 0 {
			m.plansSkipped.WithLabelValues(provider, "invalid_plan").Add(float64(res.Skipped))
		}
	}
}

// quoteLookup returns the Lookup hook of the Quoter, which counts its cache lookups by
// result.
func (m *metrics) quoteLookup() func(result string) {
	results := map[string]prometheus.Counter{}
	for _, r := range []string{"hit", "miss", "error"} {
		results[r] = m.priceCache.WithLabelValues(r)
	}
	return func(result string) { results[result].Inc() }
}

// redriveCount returns the Redriven hook of the Redriver of kind, which counts what it
// publishes again.
func (m *metrics) redriveCount(kind string) func(n int) {
	c := m.redriven.WithLabelValues(kind) // at 0 from the start
	return func(n int) { c.Add(float64(n)) }
}

// instrumentRecalc returns cfg with the Recalculator's hooks wired to the metrics.
func (m *metrics) instrumentRecalc(cfg pricing.RecalcConfig) pricing.RecalcConfig {
	cfg.Observe = func(outcome string, d time.Duration) {
		m.taskRuns.WithLabelValues(pricing.Kind, outcome).Inc()
		m.taskDuration.WithLabelValues(pricing.Kind, outcome).Observe(d.Seconds())
	}
	key := cmp.Or(cfg.LockKey, pricing.LockKey)
	cfg.Contend = func() { m.lockContended.WithLabelValues(key).Inc() }
	cfg.Published = func(v int64) { m.pricingVersion.Set(float64(v)) }
	return cfg
}

// depsCollector reads the pools, subscriptions and queues of a process's adapters at
// each scrape.
type depsCollector struct {
	d        *deps
	pool     *prometheus.Desc
	fallback *prometheus.Desc
	subs     *prometheus.Desc
	depth    *prometheus.Desc
	cons     *prometheus.Desc
	dead     *prometheus.Desc
	ckptFail *prometheus.Desc
	ckptLag  *prometheus.Desc
}

// scrapeTimeout bounds the broker's queue inspection during a scrape.
const scrapeTimeout = 2 * time.Second

// topics are the broker topics whose queues the metrics report.
var topics = []string{ingest.TopicPlans, pricing.TopicRecalculate}

func (m *metrics) collectDeps(d *deps) {
	m.reg.MustRegister(&depsCollector{
		d:        d,
		pool:     prometheus.NewDesc("boxoffice_db_pool_connections", "Database pool connections by pool and state (idle, in_use, total, max).", []string{"pool", "state"}, nil),
		fallback: prometheus.NewDesc("boxoffice_replica_fallback", "1 while reads fall back to the primary because the replica is unreachable.", nil, nil),
		subs:     prometheus.NewDesc("boxoffice_pubsub_subscriptions", "Live subscriptions to a Redis Pub/Sub channel this process listens to (the api's catalog versions, the listener's market events); 0 while one is being retried.", []string{"channel"}, nil),
		depth:    prometheus.NewDesc("boxoffice_broker_queue_depth", "Messages ready in a broker queue.", []string{"queue"}, nil),
		cons:     prometheus.NewDesc("boxoffice_broker_consumers", "Consumers of a broker queue.", []string{"queue"}, nil),
		dead:     prometheus.NewDesc("boxoffice_broker_dead_letters", "Messages dead-lettered on a topic and not yet replayed or purged (boxoffice dead-letters).", []string{"topic"}, nil),
		ckptFail: prometheus.NewDesc("boxoffice_sqlite_checkpoint_failures_total", "Checkpoints of an embedded SQLite database's WAL that failed (the next commit tries again; the writer checkpoints itself once the WAL is large).", []string{"db"}, nil),
		ckptLag:  prometheus.NewDesc("boxoffice_sqlite_checkpoint_behind_commits", "Commits of an embedded SQLite database whose WAL pages are not yet copied into the database file.", []string{"db"}, nil),
	})
}

func (c *depsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pool
	ch <- c.fallback
	ch <- c.subs
	ch <- c.depth
	ch <- c.cons
	ch <- c.dead
	ch <- c.ckptFail
	ch <- c.ckptLag
}

// collectPool sends the connection counts of one database pool, by state.
func (c *depsCollector) collectPool(ch chan<- prometheus.Metric, pool string, idle, inUse, total, maxConns int) {
	for state, n := range map[string]int{"idle": idle, "in_use": inUse, "total": total, "max": maxConns} {
		ch <- prometheus.MustNewConstMetric(c.pool, prometheus.GaugeValue, float64(n), pool, state)
	}
}

// The reports a depsCollector reads, found on the adapters by type assertion: a small
// interface per capability, so that the collector names no adapter.
type (
	// poolReporter is a store that reports its connection pools (postgres.Store,
	// sqlite.Store).
	poolReporter interface {
		ReportPools(report func(pool string, idle, inUse, total, maxConns int))
	}
	// replicaReporter is a store whose reads may fall back from a replica to the
	// primary (postgres.Store).
	replicaReporter interface {
		ReplicaDown() bool
	}
	// subscriptionReporter is a Pub/Sub adapter that reports its live subscriptions
	// once the process subscribes to its channel (redis.Notifier, redis.Bus).
	subscriptionReporter interface {
		ReportSubscriptions(report func(channel string, live int))
	}
	// checkpointReporter is an embedded SQLite database that checkpoints its WAL beside
	// its writer (sqlite.Store, sqlite.Broker).
	checkpointReporter interface {
		ReportCheckpoints(report func(db string, failed, behind int64))
	}
	// queueReporter is a broker that reports a topic's queue (rabbitmq.Broker,
	// sqlite.Broker); consumers is negative when the broker does not count them.
	queueReporter interface {
		ReportQueue(ctx context.Context, topic string) (ready, consumers int, err error)
	}
)

func (c *depsCollector) Collect(ch chan<- prometheus.Metric) {
	if p, ok := c.d.store.(poolReporter); ok {
		p.ReportPools(func(pool string, idle, inUse, total, maxConns int) {
			c.collectPool(ch, pool, idle, inUse, total, maxConns)
		})
	}
	for _, p := range []any{c.d.store, c.d.broker} {
		if r, ok := p.(checkpointReporter); ok {
			r.ReportCheckpoints(func(db string, failed, behind int64) {
				ch <- prometheus.MustNewConstMetric(c.ckptFail, prometheus.CounterValue, float64(failed), db)
				ch <- prometheus.MustNewConstMetric(c.ckptLag, prometheus.GaugeValue, float64(behind), db)
			})
		}
	}
	if r, ok := c.d.store.(replicaReporter); ok {
		down := 0.0
		if r.ReplicaDown() {
			down = 1
		}
		ch <- prometheus.MustNewConstMetric(c.fallback, prometheus.GaugeValue, down)
	}
	for _, p := range []any{c.d.notifier, c.d.bus} {
		if r, ok := p.(subscriptionReporter); ok {
			r.ReportSubscriptions(func(channel string, live int) {
				ch <- prometheus.MustNewConstMetric(c.subs, prometheus.GaugeValue, float64(live), channel)
			})
		}
	}
	if c.d.broker == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	for _, topic := range topics {
		if n, err := c.d.broker.CountDeadLetters(ctx, topic); err == nil { // else the broker is away: no sample
			ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(n), topic)
		}
	}
	q, ok := c.d.broker.(queueReporter)
	if !ok {
		return
	}
	for _, topic := range topics {
		ready, consumers, err := q.ReportQueue(ctx, topic)
		if err != nil {
			continue // the queue is not declared yet, or the broker is away: no sample
		}
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(ready), topic)
		if consumers >= 0 {
			ch <- prometheus.MustNewConstMetric(c.cons, prometheus.GaugeValue, float64(consumers), topic)
		}
	}
}
