package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"boxoffice/catalog"
	"boxoffice/clock"
	"boxoffice/httpapi"
	"boxoffice/ingest"
	"boxoffice/memory"
	"boxoffice/postgres"
	"boxoffice/pricing"
	"boxoffice/rabbitmq"
	"boxoffice/redis"
	"boxoffice/sqlite"
	"boxoffice/task"
)

// deps are the adapters a process runs on: the real service of each URL that is set, and
// for an embedded command (run, migrate) the in-process adapter of each that is unset,
// so `run` works on any mix. A distributed role never gets here without the URLs it
// needs: loadConfig refuses them (needs.missing).
type deps struct {
	store interface {
		catalog.Store
		pricing.Store
		task.Records
		task.Outbox
		ingest.BatchStore
		ingest.SyncLog
		ingest.Baseline
		httpapi.ProviderLog
	}
	checks map[string]httpapi.Check // readiness, by dependency

	broker interface {
		task.Publisher
		task.Subscriber
		task.DeadLetters
	}
	locker task.Locker
	// batch bounds a sync's batches when no setting does: ingest's defaults on
	// RabbitMQ, larger ones on the embedded broker (embeddedBatch).
	batch batchLimits

	// cache is the second tier of the search response cache, shared by API processes;
	// nil without Redis.
	cache httpapi.Cache

	// notifier tells the API processes on the store that a new catalog version is
	// committed: Redis Pub/Sub, else in process.
	notifier catalog.Notifier

	// priceCache keeps price quotes: Redis when REDIS_URL is set, else in process.
	priceCache pricing.Cache
	// bus carries market event notifications: Redis Pub/Sub, else in process.
	bus pricing.Bus
	// rates shares the API's rate limits across processes: Redis, else nil (each
	// process limits on its own).
	rates httpapi.SharedRates

	metrics *metrics

	// ops is OPS_ADDR's listener, for the operations endpoints and the profiler; nil
	// when OPS_ADDR is unset.
	ops net.Listener

	closers []func() error
}

// priceCacheEntries bounds the in-process price cache of the embedded mode.
const priceCacheEntries = 100_000

// openDeps opens the adapters n asks for. On error it closes what it opened.
func openDeps(ctx context.Context, cfg config, n needs, log *slog.Logger) (d *deps, err error) {
	d = &deps{
		metrics:  newMetrics(),
		checks:   map[string]httpapi.Check{},
		notifier: memory.NewNotifier(),
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()

	if n.store {
		if cfg.DatabaseWriteURL != "" {
			pg, err := postgres.Open(ctx, cfg.DatabaseWriteURL, cfg.DatabaseReadURL, log, postgres.WithTracing(cfg.Tracing))
			if err != nil {
				return d, fmt.Errorf("DATABASE_WRITE_URL: %w", err)
			}
			d.closers = append(d.closers, func() error { pg.Close(); return nil })
			if err := pg.Migrate(ctx); err != nil {
				return d, err
			}
			d.store = pg
			for name, check := range pg.Checks() {
				d.checks[name] = check
			}
		} else {
			lite, err := openSQLite(ctx, cfg.DataDir)
			if err != nil {
				return d, err
			}
			d.closers = append(d.closers, lite.Close)
			d.store = lite
			d.checks["sqlite"] = lite.Ping
		}
	}

	if n.broker {
		if cfg.BrokerURL != "" {
			b, err := rabbitmq.Open(ctx, cfg.BrokerURL, rabbitmq.Config{Prefix: cfg.Namespace, Retry: cfg.retry()}, log)
			if err != nil {
				return d, fmt.Errorf("BROKER_URL: %w", err)
			}
			d.closers = append(d.closers, b.Close)
			d.broker = b
			d.checks["rabbitmq"] = func(ctx context.Context) error {
				_, _, err := b.QueueDepth(ctx, ingest.TopicPlans)
				return err
			}
		} else {
			b, err := sqlite.OpenBroker(ctx, cfg.DataDir, sqlite.BrokerConfig{Retry: cfg.retry()}, log)
			if err != nil {
				return d, fmt.Errorf("DATA_DIR: %w", err)
			}
			d.closers = append(d.closers, b.Close)
			d.broker = b
			d.batch = embeddedBatch
		}
	}

	if !n.redis {
		d.metrics.collectDeps(d)
		return d, nil
	}
	if cfg.RedisURL != "" {
		rc, err := redis.Open(ctx, cfg.RedisURL, redis.WithTracing(cfg.Tracing))
		if err != nil {
			return d, fmt.Errorf("REDIS_URL: %w", err)
		}
		d.closers = append(d.closers, rc.Close)
		d.checks["redis"] = rc.Ping
		d.locker = redis.NewLocker(rc, cfg.Namespace)
		d.cache = redis.NewCache(rc, cfg.Namespace)
		d.notifier = redis.NewNotifier(rc, cfg.Namespace, log)
		d.priceCache = redis.NewPriceCache(rc, cfg.Namespace) //nolint:contextcheck // its lookup batcher lives as long as rc; each lookup carries its caller's context
		d.bus = redis.NewBus(rc, cfg.MarketChannel, log)
		d.rates = redis.NewRates(rc, cfg.Namespace)
	} else {
		d.locker = memory.NewLocker(clock.System{})
		d.priceCache = memory.NewPriceCache(priceCacheEntries, clock.System{})
		d.bus = memory.NewBus()
	}
	d.metrics.collectDeps(d)
	return d, nil
}

var _ httpapi.Cache = (*redis.Cache)(nil)

// The adapters whose pools, replica, subscriptions and queues /metrics reports (see
// depsCollector).
var (
	_ poolReporter         = (*postgres.Store)(nil)
	_ poolReporter         = (*sqlite.Store)(nil)
	_ replicaReporter      = (*postgres.Store)(nil)
	_ subscriptionReporter = (*redis.Notifier)(nil)
	_ subscriptionReporter = (*redis.Bus)(nil)
	_ queueReporter        = (*rabbitmq.Broker)(nil)
	_ queueReporter        = (*sqlite.Broker)(nil)
)

// Close closes the adapters in reverse order of opening.
func (d *deps) Close() error {
	var errs []error
	for i := len(d.closers) - 1; i >= 0; i-- {
		errs = append(errs, d.closers[i]())
	}
	d.closers = nil
	return errors.Join(errs...)
}

// batchLimits are the most plans and bytes of JSON of a sync's batch; zero takes
// ingest's default.
type batchLimits struct{ plans, bytes int }

// embeddedBatch bounds the batches of the embedded broker, whose queue is a local file
// without RabbitMQ's message limit: 20000 plans of at most 16 MiB, four times ingest's
// defaults. Each batch is one transaction of the SQLite store, which writes each page a
// batch dirties once to its WAL and again at the checkpoint, and at a million plans a
// batch's inserts land on mostly distinct pages of the plans' and products' random
// indexes: larger batches share more of them (docs/BENCHMARKS.md, "Embedded cold
// ingest"). The price is a longer hold on the store's writer: a few seconds per batch
// once the store holds a million plans.
var embeddedBatch = batchLimits{plans: 20_000, bytes: 16 << 20}
