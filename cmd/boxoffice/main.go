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
	"strings"
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

func main() {
	routeDriverLogs(os.Getenv, os.Stderr)
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "boxoffice:", err)
		os.Exit(1)
	}
}

// run is the whole program: main only adds the process's arguments, environment and
// exit code, so tests call run in-process. An unknown command is reported before
// anything else happens; -h prints a command's flags and returns nil.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) || args[0] == "help" {
		fmt.Fprintln(stderr, usage())
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	name := args[0]
	cmd, known := findCommand(name)
	switch {
	case name == "version" || name == "healthcheck":
	case !known:
		return fmt.Errorf("unknown command %q\n%s", name, usage())
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch name {
	case "version":
		if len(args) > 1 && isHelp(args[1]) {
			fmt.Fprintln(stderr, "usage: boxoffice version\n\nprint build information")
			return nil
		}
		_, err := fmt.Fprintln(stdout, buildInfo())
		return err
	case "healthcheck":
		if len(args) > 1 && isHelp(args[1]) {
			fmt.Fprintf(stderr, "usage: boxoffice healthcheck [URL]\n\n%s\n", healthcheckSummary)
			return nil
		}
		return healthcheck(ctx, args[1:])
	}
	cmdArgs := args[1:]
	var action string // of dead-letters: its first argument
	if name == "dead-letters" && len(cmdArgs) > 0 && !strings.HasPrefix(cmdArgs[0], "-") {
		action, cmdArgs = cmdArgs[0], cmdArgs[1:]
	}
	cfg, err := loadConfig(cmd, cmdArgs, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the flag set printed the command's usage
	}
	if err != nil {
		return err
	}
	if name == "dead-letters" {
		if cfg.DeadLetters.Action, err = deadLettersAction(action); err != nil {
			return err
		}
	}
	cfg.Stdout = stdout
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))).
		With("cmd", name)
	tracing, err := telemetry.Setup(ctx, "boxoffice-"+name, version, getenv, log)
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
	if isTerminal(stderr) {
		cfg.Progress = stderr
	}
	return cmd.run(ctx, cfg, log)
}

// routeDriverLogs sends the Redis driver's own messages to stderr as JSON at LOG_LEVEL
// from the environment (info when unset or not a level; the driver logs at debug). The
// driver's logger is process-wide, so main sets it once, before run: run is called
// many times in one test process, and a flag or .env LOG_LEVEL does not reach it.
func routeDriverLogs(getenv func(string) string, stderr io.Writer) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(getenv("LOG_LEVEL"))); err != nil {
		level = slog.LevelInfo // run reports a bad LOG_LEVEL
	}
	redis.RouteDriverLogs(slog.New(telemetry.LogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))))
}

// isHelp tells whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}

// tracingFlushTimeout bounds how long a stopping process spends exporting its last spans.
const tracingFlushTimeout = 5 * time.Second

// buildInfo describes the binary: version, commit and Go version.
func buildInfo() string {
	s := "boxoffice " + version
	rev := commit
	bi, ok := debug.ReadBuildInfo()
	if rev == "" && ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" {
				rev = kv.Value
			}
		}
	}
	if rev != "" {
		s += " (" + rev + ")"
	}
	if ok {
		s += " " + bi.GoVersion
	}
	return s
}
