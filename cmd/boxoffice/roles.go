package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"boxoffice/catalog"
	"boxoffice/httpapi"
	"boxoffice/ingest"
	"boxoffice/memory"
	"boxoffice/provider"
	"boxoffice/sqlite"
	"boxoffice/task"
)

// indexPoll is how often a reader checks the store for a new catalog version when no
// notification came; in one process the worker notifies at once.
const indexPoll = time.Second

// brokerCapacity bounds the in-process queue of plan batches: ingest waits while the
// worker is this many batches behind.
const brokerCapacity = 64

// runAll runs every role in one process on the embedded adapters.
func runAll(ctx context.Context, cfg config, log *slog.Logger) error {
	if cfg.DatabaseWriteURL != "" || cfg.RedisURL != "" || cfg.BrokerURL != "" {
		return errors.New("DATABASE_WRITE_URL, REDIS_URL and BROKER_URL select distributed adapters, which this build does not have yet; unset them to run embedded")
	}
	store, err := openSQLite(ctx, cfg.DataDir)
	if err != nil {
		return err
	}
	defer store.Close()

	searcher := catalog.NewSearcher(store, httpapi.EncodeEvent, indexPoll, log)
	if _, err := searcher.Refresh(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	g, ctx := errgroup.WithContext(ctx)

	source := cfg.ExternalAPIURL
	if source == "" {
		url, serveSim, err := startSimulator(cfg.Sim, log)
		if err != nil {
			ln.Close()
			return err
		}
		log.Info("EXTERNAL_API_URL is unset: syncing from the built-in provider simulator", "url", url, "mode", cfg.Sim.Mode)
		source = url
		g.Go(func() error { return serveSim(ctx) })
	}

	broker := memory.NewBroker(task.DefaultRetry, brokerCapacity, log)
	syncer := ingest.NewSyncer(provider.NewClient(source, cfg.APITimeout, cfg.ProviderName), broker, memory.NewLocker(),
		ingest.Config{Interval: cfg.SyncInterval}, log)
	worker := task.NewWorker(broker, map[string]task.Handler{
		ingest.TopicPlans: ingest.BatchHandler(store, func(int64) { searcher.Notify() }),
	}, 1, log)
	api := httpapi.New(searcher, log, httpapi.Config{
		Checks: map[string]httpapi.Check{"store": store.Ping},
		Build:  httpapi.BuildInfo{Version: version, Commit: commit},
	})

	g.Go(func() error { return serveHTTP(ctx, ln, api, log) })
	g.Go(func() error { return searcher.Run(ctx) })
	g.Go(func() error { return worker.Run(ctx) })
	g.Go(func() error { return syncer.Run(ctx) })
	return g.Wait()
}

// migrate applies the schema migrations of the configured store.
func migrate(ctx context.Context, cfg config, log *slog.Logger) error {
	if cfg.DatabaseWriteURL != "" {
		return errors.New("DATABASE_WRITE_URL: PostgreSQL migrations are not in this build yet")
	}
	store, err := openSQLite(ctx, cfg.DataDir)
	if err != nil {
		return err
	}
	log.Info("migrated", "store", "sqlite", "data_dir", cfg.DataDir)
	return store.Close()
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
