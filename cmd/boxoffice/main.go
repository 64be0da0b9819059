// Command boxoffice integrates a provider's plans, serves searches over them, and
// prices their zones. One binary runs every role: all at once on embedded defaults
// (`boxoffice run`), or one role per process on PostgreSQL, Redis and RabbitMQ.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"boxoffice/redis"
	"boxoffice/telemetry"
)

// version and commit are set at build time with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = ""
)

const usage = `usage: boxoffice <command> [flags]

commands:
  run            every role in one process: HTTP API, provider sync, worker, listener
                 (embedded defaults: SQLite store and durable broker queue under
                 DATA_DIR, in-process lock, and the built-in provider simulator when
                 EXTERNAL_API_URL is unset)
  migrate        apply the database migrations and exit
  provider-sim   serve the provider simulator (GET /api/events)
  version        print build information
  healthcheck [URL]
                 exit 0 when URL answers: http(s):// a 2xx, tcp://host:port a
                 connection (default http://127.0.0.1:8000/health); for containers
                 without a shell
  api, ingest, worker, listener
                 one role per process, on PostgreSQL, Redis and RabbitMQ: api serves
                 searches and prices, ingest syncs the provider, worker stores plans
                 and recalculates prices, listener turns market events into
                 recalculations

Settings come from flags, then the environment, then a .env file.
'boxoffice <command> -h' lists a command's flags.`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "boxoffice:", err)
		os.Exit(1)
	}
}

// run is the whole program: main only adds the process's arguments, environment and
// exit code, so tests call run in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, usage)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	switch args[0] {
	case "version":
		_, err := fmt.Fprintln(stdout, buildInfo())
		return err
	case "healthcheck":
		return healthcheck(ctx, args[1:])
	}
	cfg, err := loadConfig(args[0], args[1:], getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))).
		With("cmd", args[0])
	redis.RouteDriverLogs(log)
	tracing, err := telemetry.Setup(ctx, "boxoffice-"+args[0], version, getenv, log)
	if err != nil {
		return err
	}
	defer func() {
		// The spans of the last moments, flushed within a bound: a collector that is down
		// must not hold up the exit.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			log.Warn("flush spans", "err", err)
		}
	}()
	cfg.Tracing = tracing.TracerProvider()
	switch args[0] {
	case "run":
		return runAll(ctx, cfg, log)
	case "migrate":
		return migrate(ctx, cfg, log)
	case "provider-sim":
		return runProviderSim(ctx, cfg, log)
	case "api":
		return runAPI(ctx, cfg, log)
	case "ingest":
		return runIngest(ctx, cfg, log)
	case "worker":
		return runWorker(ctx, cfg, log)
	case "listener":
		return runListener(ctx, cfg, log)
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
}

// tracingFlushTimeout bounds how long a stopping process spends exporting its last spans.
const tracingFlushTimeout = 5 * time.Second

// buildInfo describes the binary: version, commit and Go version.
func buildInfo() string {
	s := "boxoffice " + version
	if commit != "" {
		s += " (" + commit + ")"
	} else if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" {
				s += " (" + kv.Value + ")"
			}
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		s += " " + bi.GoVersion
	}
	return s
}
