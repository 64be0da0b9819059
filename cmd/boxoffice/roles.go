package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric/noop"
	"golang.org/x/sync/errgroup"

	"boxoffice/catalog"
	"boxoffice/httpapi"
	"boxoffice/ingest"
	"boxoffice/pricing"
	"boxoffice/provider"
	"boxoffice/sqlite"
	"boxoffice/task"
)

// runRole is the skeleton of every service command: open the adapters n asks for,
// listen on HTTP_ADDR, start the role's goroutines, and wait for them.
func runRole(ctx context.Context, cfg config, log *slog.Logger,
	start func(ctx context.Context, g *errgroup.Group, ln net.Listener, d *deps) error) error {
	d, err := openDeps(ctx, cfg, cfg.needs, log)
	if err != nil {
		return err
	}
	defer d.Close()
	var certs *certReloader
	if cfg.TLSCertFile != "" {
		if certs, err = newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile, log); err != nil {
			return err
		}
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	if cfg.OpsAddr != "" {
		if d.ops, err = (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.OpsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("OPS_ADDR: %w", err)
		}
	}
	if certs != nil {
		// HTTPS, with HTTP/2: net/http serves h2 on a listener of TLS connections that
		// offer it.
		ln = tls.NewListener(ln, certs.tlsConfig())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	if certs != nil {
		g.Go(func() error { return certs.Run(gctx, certPoll) })
	}
	if err := start(gctx, g, ln, d); err != nil {
		cancel() // stop what start had already started
		ln.Close()
		if d.ops != nil {
			d.ops.Close()
		}
		return errors.Join(err, g.Wait())
	}
	return wait(g, log)
}

// runAll runs every role in one process, each adapter embedded unless its URL is set.
// On the embedded broker it first hands back the deliveries that a previous run left
// unfinished (killed mid-task): this process is the queue's one consumer.
func runAll(ctx context.Context, cfg config, log *slog.Logger) error {
	return runRole(ctx, cfg, log,
		func(ctx context.Context, g *errgroup.Group, ln net.Listener, d *deps) error {
			if b, ok := d.broker.(*sqlite.Broker); ok {
				n, err := b.Recover(ctx)
				if err != nil {
					return err
				}
				if n > 0 {
					log.Warn("embedded broker: deliveries left unfinished by the previous run are queued again", "messages", n)
				}
			}
			searcher := startAPI(ctx, g, ln, cfg, d, log)
			providers, err := providersOrSimulator(ctx, g, cfg, log)
			if err != nil {
				return err
			}
			startWorker(ctx, g, cfg, d, searcher, log)
			startIngest(ctx, g, cfg, d, providers, log)
			startListener(ctx, g, cfg, d, log)
			return nil
		})
}

// runBackground runs a role without the API: start's work, and /health, /ready and
// /metrics on HTTP_ADDR.
func runBackground(ctx context.Context, cfg config, log *slog.Logger,
	start func(ctx context.Context, g *errgroup.Group, d *deps)) error {
	return runRole(ctx, cfg, log,
		func(ctx context.Context, g *errgroup.Group, ln net.Listener, d *deps) error {
			startOps(ctx, g, ln, d, log)
			start(ctx, g, d)
			return nil
		})
}

// runAPI runs the HTTP API alone: searches from memory, refreshed from the store, and
// price quotes; recalculations it publishes to the broker.
func runAPI(ctx context.Context, cfg config, log *slog.Logger) error {
	return runRole(ctx, cfg, log,
		func(ctx context.Context, g *errgroup.Group, ln net.Listener, d *deps) error {
			startAPI(ctx, g, ln, cfg, d, log)
			return nil
		})
}

// runIngest runs the provider syncs alone; of several ingest processes one leads each
// provider. It reads the state of each provider's syncs from the store (the primary),
// so that a fetch is conditional only on a document whose every batch was applied, and
// records there how each sync went. Like every role it answers /health, /ready and
// /metrics on HTTP_ADDR.
func runIngest(ctx context.Context, cfg config, log *slog.Logger) error {
	return runBackground(ctx, cfg, log, func(ctx context.Context, g *errgroup.Group, d *deps) {
		startIngest(ctx, g, cfg, d, cfg.ProviderList, log)
	})
}

// runWorker consumes plan batches into the store, and runs price recalculations.
func runWorker(ctx context.Context, cfg config, log *slog.Logger) error {
	return runBackground(ctx, cfg, log, func(ctx context.Context, g *errgroup.Group, d *deps) {
		startWorker(ctx, g, cfg, d, nil, log)
	})
}

// runListener turns market events into recalculation tasks.
func runListener(ctx context.Context, cfg config, log *slog.Logger) error {
	return runBackground(ctx, cfg, log, func(ctx context.Context, g *errgroup.Group, d *deps) {
		startListener(ctx, g, cfg, d, log)
	})
}

// startAPI serves the HTTP API on ln and keeps its searcher fresh: it polls the store
// and refreshes at once on a version announcement. Without an index (before the first
// load) searches read the store through the response caches. A subscription to the
// announcements that fails does not stop the API: Follow logs it and tries again, as
// the listener does with market events.
func startAPI(ctx context.Context, g *errgroup.Group, ln net.Listener, cfg config, d *deps, log *slog.Logger) *catalog.Searcher {
	searcher := catalog.NewSearcher(d.store, httpapi.EncodeEvent,
		catalog.SearcherConfig{MaxBytes: cfg.IndexMaxBytes, History: cfg.IndexHistory}, log)
	if !cfg.GoMemLimit {
		// Before the first load, which it bounds as it builds (see limitMemory).
		g.Go(func() error { return limitMemory(ctx, searcher, time.Second) })
	}
	if _, err := searcher.Refresh(ctx); err != nil {
		log.Warn("catalog index not loaded yet; searches read the store until it is", "err", err)
	}
	d.metrics.searcher.Store(searcher)
	quoter := pricing.NewQuoter(d.store, d.priceCache,
		pricing.QuoterConfig{TTL: cfg.PriceCacheTTL, Lookup: d.metrics.quoteLookup()}, log)
	svc := pricing.NewService(quoter, d.store, d.store, d.bus, d.broker,
		pricing.ServiceConfig{Channel: cfg.MarketChannel, TracerProvider: cfg.Tracing}, log)
	if len(cfg.APIKeys) == 0 && cfg.OpenWrites {
		log.Warn("ALLOW_UNAUTHENTICATED_WRITES=true and API_KEYS is unset: the write endpoints serve every client; set API_KEYS before exposing this process")
	}
	api := httpapi.New(searcher, log, apiConfig(cfg, d, svc))
	g.Go(func() error { return serveHTTP(ctx, ln, api, log) })
	serveOps(ctx, g, d, api, log)
	g.Go(func() error { return api.Run(ctx) })
	g.Go(func() error { return searcher.Run(ctx) })
	g.Go(func() error { return searcher.Follow(ctx, d.notifier) })
	return searcher
}

// statusSource is what GET /api/v1/status, and the console with it, shows beyond the
// API's index: the published pricing version, from the store (the replica when there is
// one), and the broker's dead letters on each topic.
type statusSource struct {
	store  pricing.Store
	broker task.DeadLetters
}

var _ httpapi.StatusSource = statusSource{}

func (s statusSource) PricingVersion(ctx context.Context) (int64, error) {
	_, version, err := s.store.Market(ctx, pricing.GlobalLocation, false) // the version is read with any market
	return version, err
}

func (s statusSource) DeadLetters(ctx context.Context) (map[string]int, error) {
	dead := make(map[string]int, len(topics))
	for _, topic := range topics {
		n, err := s.broker.CountDeadLetters(ctx, topic)
		if err != nil {
			return nil, err
		}
		dead[topic] = n
	}
	return dead, nil
}

// apiConfig is the HTTP API's configuration in a process on d, serving prices with svc:
// its checks, caches, limits, keys and tracing, and the process's metrics registry.
func apiConfig(cfg config, d *deps, svc *pricing.Service) httpapi.Config {
	return httpapi.Config{
		Checks:                     d.checks,
		Build:                      httpapi.BuildInfo{Version: version, Commit: commit},
		Store:                      d.store,
		Providers:                  d.store,
		Cache:                      d.cache,
		CacheTTL:                   cfg.CacheTTL,
		L1MaxBytes:                 cfg.L1CacheMaxBytes,
		Metrics:                    d.metrics.reg,
		Timeouts:                   cfg.Timeouts,
		StoreReads:                 cfg.StoreReads,
		MaxInFlight:                cfg.MaxInFlight,
		Pricing:                    svc,
		APIKeys:                    cfg.APIKeys,
		AllowUnauthenticatedWrites: cfg.OpenWrites,
		TracerProvider:             cfg.Tracing,
		RateLimits:                 httpapi.RateLimits{Search: cfg.ReadRate, Quote: cfg.ReadRate, Read: cfg.ReadRate, Write: cfg.WriteRate},
		SharedRates:                d.rates,
		TrustedProxies:             cfg.TrustedProxies,
		CursorKey:                  cfg.cursorKey(),
		Status:                     statusSource{store: d.store, broker: d.broker},
	}
}

// startOps serves the operations endpoints (/health, /ready, /metrics) of a role that
// serves no searches, on ln.
func startOps(ctx context.Context, g *errgroup.Group, ln net.Listener, d *deps, log *slog.Logger) {
	ops := httpapi.New(nil, log, httpapi.Config{
		Checks:  d.checks,
		Build:   httpapi.BuildInfo{Version: version, Commit: commit},
		Metrics: d.metrics.reg,
	})
	g.Go(func() error { return serveHTTP(ctx, ln, ops, log) })
	serveOps(ctx, g, d, ops, log)
}

// serveOps serves h's operations endpoints and the profiler on OPS_ADDR, when it is set.
func serveOps(ctx context.Context, g *errgroup.Group, d *deps, h *httpapi.Handler, log *slog.Logger) {
	if d.ops == nil {
		return
	}
	g.Go(func() error { return serveHTTP(ctx, d.ops, h.OpsHandler(), log.With("listener", "ops")) })
}

// startWorker consumes plan batches, after each commit announcing the new version and
// waking searcher, when this process has one; and it runs price recalculations.
func startWorker(ctx context.Context, g *errgroup.Group, cfg config, d *deps, searcher *catalog.Searcher, log *slog.Logger) {
	committed := func(version int64) {
		d.metrics.catalogSeen.Store(version)
		if err := d.notifier.Publish(ctx, version); err != nil {
			log.Warn("announce catalog version", "version", version, "err", err)
		}
		if searcher != nil {
			searcher.Notify()
		}
	}
	recalc := pricing.NewRecalculator(d.store, d.store, d.priceCache, d.locker, d.metrics.instrumentRecalc(pricing.RecalcConfig{
		Retry: cfg.retry(), TracerProvider: cfg.Tracing,
	}), log)
	w := task.NewWorker(d.broker, map[string]task.Handler{
		ingest.TopicPlans:        ingest.BatchHandler(d.store, committed),
		pricing.TopicRecalculate: recalc.Handle,
	}, task.WorkerConfig{
		TracerProvider: cfg.Tracing,
		Panicked:       func(string) { d.metrics.panics.WithLabelValues("worker").Inc() },
	}, log)
	g.Go(func() error { return w.Run(ctx) })
	redrive := task.NewRedriver(d.store,
		func(ctx context.Context, ids ...string) error {
			return pricing.Requeue(ctx, d.broker, cfg.Tracing, ids...)
		},
		task.RedriverConfig{Kind: pricing.Kind, Interval: cfg.TaskRedrive, LostAfter: cfg.TaskLost,
			Redriven: d.metrics.redriveCount(pricing.Kind)}, log)
	g.Go(func() error { return redrive.Run(ctx) })
}

// startListener turns market events into recalculation tasks, with the listener's
// default timing (see pricing.ListenerConfig).
func startListener(ctx context.Context, g *errgroup.Group, cfg config, d *deps, log *slog.Logger) {
	l := pricing.NewListener(d.store, d.store, d.bus, d.broker, pricing.ListenerConfig{
		Channel:        cfg.MarketChannel,
		TracerProvider: cfg.Tracing,
		Received:       func(outcome string) { d.metrics.marketEvents.WithLabelValues(outcome).Inc() },
		Panicked:       func() { d.metrics.panics.WithLabelValues("listener").Inc() },
	}, log)
	g.Go(func() error { return l.Run(ctx) })
}

// startIngest syncs each of providers on its own schedule, in a goroutine of g of its
// own with a leader lock, retries, timeout and metrics labels of its own, so that one
// provider down, slow or malformed never delays another; with tracing, each request to
// a provider is a client span of its sync.
func startIngest(ctx context.Context, g *errgroup.Group, cfg config, d *deps, providers []providerConfig, log *slog.Logger) {
	var hc *http.Client
	if cfg.Tracing != nil {
		hc = &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport,
			otelhttp.WithTracerProvider(cfg.Tracing),
			otelhttp.WithMeterProvider(noop.NewMeterProvider()),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }), // as the conventions name client spans
		)}
	}
	for _, p := range providers {
		opts := []provider.Option{provider.WithMaxBytes(p.MaxBytes), provider.WithFormat(p.Format)}
		for _, h := range p.Headers {
			opts = append(opts, provider.WithHeader(h[0], h[1]))
		}
		if hc != nil {
			opts = append(opts, provider.WithHTTPClient(hc))
		}
		plog := log.With("provider", p.Name)
		s := ingest.NewSyncer(provider.NewClient(p.URL, p.Timeout, p.Name, opts...), d.broker, d.locker, d.store,
			ingest.Config{Provider: p.Name, Interval: p.Interval, Attempts: p.MaxAttempts, Backoff: p.Retry, MaxBackoff: p.RetryMax,
				BatchSize: cmp.Or(p.BatchPlans, d.batch.plans), BatchBytes: d.batch.bytes, BaselinePlans: cfg.SyncBaseline, Observe: d.metrics.observeSync(p.Name),
				TracerProvider: cfg.Tracing}, plog)
		g.Go(func() error { return s.Run(ctx) })
	}
}

// providersOrSimulator returns the configured providers or, when there are none, starts
// the built-in simulator in g and returns its providers: the one at /api/events named
// PROVIDER_NAME and one per feed of --sim-feeds, named after it.
func providersOrSimulator(ctx context.Context, g *errgroup.Group, cfg config, log *slog.Logger) ([]providerConfig, error) {
	if len(cfg.ProviderList) > 0 {
		return cfg.ProviderList, nil
	}
	sims, serve, err := startSimulator(ctx, cfg.Sim, cfg.ProviderName, log)
	if err != nil {
		return nil, err
	}
	out := make([]providerConfig, 0, len(sims))
	for _, p := range sims {
		log.Info("no provider configured (EXTERNAL_API_URL, PROVIDERS, PROVIDERS_FILE): syncing from the built-in provider simulator",
			"provider", p.name, "url", p.url, "mode", cfg.Sim.Mode)
		pc := providerConfig{Name: p.name, URL: p.url}
		cfg.fillProviderDefaults(&pc)
		out = append(out, pc)
	}
	g.Go(func() error { return serve(ctx) })
	return out, nil
}

// wait waits for a process's goroutines and logs a clean stop.
func wait(g *errgroup.Group, log *slog.Logger) error {
	if err := g.Wait(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// migrate applies the schema migrations of the configured store and exits: PostgreSQL
// with DATABASE_WRITE_URL, else the embedded SQLite store under DATA_DIR (an operator's
// command, so it says which it migrated).
func migrate(ctx context.Context, cfg config, log *slog.Logger) error {
	d, err := openDeps(ctx, cfg, cfg.needs, log)
	if err != nil {
		return err
	}
	if cfg.DatabaseWriteURL != "" {
		log.Info("migrated", "store", "postgres")
	} else {
		log.Info("migrated", "store", "sqlite", "data_dir", cfg.DataDir)
	}
	return d.Close()
}

// openSQLite opens the embedded store and brings its schema up to date.
func openSQLite(ctx context.Context, dataDir string) (*sqlite.Store, error) {
	store, err := sqlite.Open(ctx, dataDir)
	if err != nil {
		return nil, fmt.Errorf("DATA_DIR: %w", err)
	}
	if err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, err
	}
	return store, nil
}

// serveHTTP serves h on ln until ctx is done, then shuts down gracefully: in-flight
// requests get shutdownGrace to finish.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve HTTP: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down HTTP: %w", err)
	}
	return nil
}

// shutdownGrace is how long a stopping server waits for in-flight requests.
const shutdownGrace = 10 * time.Second
