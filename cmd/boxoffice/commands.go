package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
)

// A command is one of the binary's commands that loads a configuration: what it does,
// the settings it takes (its flags and variables, and no others), and the services it
// opens. This table is the one place that says what each command needs.
type command struct {
	name    string
	summary string // for the usage text, one or more lines
	run     func(ctx context.Context, cfg config, log *slog.Logger) error

	// settings are the variables the command reads, by name (see settings).
	settings []string
	// needs are the services it opens. A distributed role (embedded false) refuses to
	// start without the URL of each; an embedded command uses the embedded adapter
	// (SQLite store and broker queue under DATA_DIR, the in-process lock, the built-in
	// simulator) for each URL that is unset.
	needs needs
	// flags registers the command's flags beyond its settings (the simulator's).
	flags func(fs *flag.FlagSet, c *config)
	// args names the positional arguments the command requires, each once (config.Args).
	args []string
	// check refuses a configuration the command must not start with, beyond a missing
	// URL; nil accepts any.
	check func(c config) error
}

// needs lists the services a command opens.
type needs struct {
	store    bool // DATABASE_WRITE_URL: PostgreSQL, embedded SQLite
	broker   bool // BROKER_URL: RabbitMQ, embedded a durable queue under DATA_DIR
	redis    bool // REDIS_URL: locks, caches, Pub/Sub; embedded in process
	provider bool // EXTERNAL_API_URL: the provider; embedded the built-in simulator

	// embedded: a service whose URL is unset runs in process instead.
	embedded bool
}

// The settings every service role takes.
var roleSettings = []string{"HTTP_ADDR", "NAMESPACE", "LOG_LEVEL", "TLS_CERT_FILE", "TLS_KEY_FILE", "OPS_ADDR"}

// The settings of each service, taken by the commands that open it.
var (
	storeSettings    = []string{"DATABASE_WRITE_URL", "DATABASE_READ_URL"}
	brokerSettings   = []string{"BROKER_URL", "TASK_MAX_ATTEMPTS", "TASK_RETRY_SECONDS"}
	redisSettings    = []string{"REDIS_URL"}
	workerSettings   = []string{"TASK_REDRIVE_SECONDS", "TASK_LOST_SECONDS"}
	providerSettings = []string{"EXTERNAL_API_URL", "PROVIDER_MAX_BYTES", "PROVIDER_NAME", "PROVIDERS", "PROVIDERS_FILE", "SYNC_INTERVAL_SECONDS", "SYNC_BATCH_PLANS", "SYNC_BASELINE_MAX_PLANS", "SYNC_MAX_ATTEMPTS", "SYNC_RETRY_SECONDS", "SYNC_RETRY_MAX_SECONDS", "API_TIMEOUT_SECONDS"}
	apiSettings      = []string{"CACHE_TTL_SECONDS", "PRICE_CACHE_TTL_SECONDS", "API_KEYS", "ALLOW_UNAUTHENTICATED_WRITES", "MARKET_EVENTS_CHANNEL", "L1_CACHE_MAX_BYTES", "INDEX_MAX_BYTES", "INDEX_HISTORY", "CURSOR_SECRET",
		"SEARCH_TIMEOUT_SECONDS", "QUOTE_TIMEOUT_SECONDS", "READ_TIMEOUT_SECONDS", "WRITE_TIMEOUT_SECONDS", "MAX_IN_FLIGHT",
		"RATE_LIMIT_PER_SECOND", "RATE_LIMIT_BURST", "RATE_LIMIT_WRITES_PER_SECOND", "RATE_LIMIT_WRITES_BURST", "TRUSTED_PROXIES", "SEARCH_STORE_READS"}
)

// commands are the commands that load a configuration, in the order the usage lists
// them. version and healthcheck take none and are handled before these.
var commands = []command{
	{
		name: "run",
		summary: `every role in one process: HTTP API, provider sync, worker, listener
(embedded defaults: SQLite store and durable broker queue under
DATA_DIR, in-process lock, and the built-in provider simulator when
EXTERNAL_API_URL is unset)`,
		run:      runAll,
		settings: allSettings(),
		needs:    needs{store: true, broker: true, redis: true, provider: true, embedded: true},
		flags:    func(fs *flag.FlagSet, c *config) { c.Sim.register(fs, "sim-") },
	},
	{
		name: "migrate",
		summary: `apply the database migrations and exit: PostgreSQL's with
DATABASE_WRITE_URL, else the SQLite store's under DATA_DIR`,
		run:      migrate,
		settings: []string{"DATABASE_WRITE_URL", "DATA_DIR", "LOG_LEVEL"},
		needs:    needs{store: true, embedded: true},
	},
	{
		name: "backup",
		summary: `write a consistent copy of the embedded store in DATA_DIR to FILE,
also while run is running (for PostgreSQL see docs/OPERATIONS.md)`,
		run:      runBackup,
		settings: []string{"DATA_DIR", "LOG_LEVEL"},
		args:     []string{"FILE"},
		flags: func(fs *flag.FlagSet, c *config) {
			fs.BoolVar(&c.Force, "force", false, "replace FILE if it exists (once the new backup is complete and checked)")
		},
	},
	{
		name: "restore",
		summary: `replace the embedded store in DATA_DIR with the backup FILE, and its
queue with an empty one, keeping the previous ones in
DATA_DIR/pre-restore-<time>; refuses while a boxoffice process has
DATA_DIR open`,
		run:      runRestore,
		settings: []string{"DATA_DIR", "LOG_LEVEL"},
		args:     []string{"FILE"},
	},
	{
		name:     "provider-sim",
		summary:  "serve the provider simulator (GET /api/events, and /NAME/api/events for each of -feeds)",
		run:      runProviderSim,
		settings: []string{"LOG_LEVEL"},
		flags: func(fs *flag.FlagSet, c *config) {
			c.Sim.register(fs, "")
			fs.StringVar(&c.Sim.Addr, "addr", "127.0.0.1:8080", "address the simulator listens on")
		},
	},
	{
		name:     "api",
		summary:  "one role per process: serves searches and prices",
		run:      runAPI,
		settings: concat(roleSettings, storeSettings, brokerSettings, redisSettings, apiSettings),
		needs:    needs{store: true, broker: true, redis: true},
		check:    checkAPI,
	},
	{
		name:     "ingest",
		summary:  "one role per process: syncs the providers (one process leads each)",
		run:      runIngest,
		settings: concat(roleSettings, storeSettings, brokerSettings, redisSettings, providerSettings),
		needs:    needs{store: true, broker: true, redis: true, provider: true},
	},
	{
		name:     "worker",
		summary:  "one role per process: stores plan batches and recalculates prices",
		run:      runWorker,
		settings: concat(roleSettings, storeSettings, brokerSettings, redisSettings, workerSettings),
		needs:    needs{store: true, broker: true, redis: true},
	},
	{
		name:     "listener",
		summary:  "one role per process: turns market events into recalculations",
		run:      runListener,
		settings: concat(roleSettings, storeSettings, brokerSettings, redisSettings, []string{"MARKET_EVENTS_CHANNEL"}),
		needs:    needs{store: true, broker: true, redis: true},
	},
	{
		name: "dead-letters",
		summary: `list|replay|purge the messages that failed for good, on RabbitMQ
(BROKER_URL, NAMESPACE) or on the embedded broker under DATA_DIR (also
beside a running boxoffice run): list shows them, replay sends them back
to be processed again, purge --yes deletes them`,
		run:      runDeadLetters,
		settings: []string{"BROKER_URL", "NAMESPACE", "DATA_DIR", "TASK_MAX_ATTEMPTS", "TASK_RETRY_SECONDS", "LOG_LEVEL"},
		needs:    needs{broker: true, embedded: true},
		flags:    func(fs *flag.FlagSet, c *config) { c.DeadLetters.register(fs) },
	},
}

// findCommand returns the command named name.
func findCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// required returns the variables of the services in n, in the order of needs; none for
// an embedded command, which runs in process what is unset.
func (n needs) required() []string {
	if n.embedded {
		return nil
	}
	var out []string
	for _, r := range []struct {
		need bool
		name string
	}{
		{n.store, "DATABASE_WRITE_URL"},
		{n.broker, "BROKER_URL"},
		{n.redis, "REDIS_URL"},
		{n.provider, requiredProvider},
	} {
		if r.need {
			out = append(out, r.name)
		}
	}
	return out
}

// requiredProvider is what a command that syncs needs: one provider at least.
const requiredProvider = "EXTERNAL_API_URL (or PROVIDERS or PROVIDERS_FILE)"

// missing returns the variables n requires that cfg leaves unset.
func (n needs) missing(cfg config) []string {
	set := map[string]string{
		"DATABASE_WRITE_URL": cfg.DatabaseWriteURL,
		"BROKER_URL":         cfg.BrokerURL,
		"REDIS_URL":          cfg.RedisURL,
	}
	if len(cfg.ProviderList) > 0 {
		set[requiredProvider] = "set"
	}
	var out []string
	for _, name := range n.required() {
		if set[name] == "" {
			out = append(out, name)
		}
	}
	return out
}

// requiredError says which variables a role is missing: "worker: DATABASE_WRITE_URL,
// BROKER_URL and REDIS_URL are required".
func requiredError(cmd string, names []string) error {
	if len(names) == 1 {
		return fmt.Errorf("%s: %s is required; only run has embedded defaults", cmd, names[0])
	}
	return fmt.Errorf("%s: %s and %s are required; only run has embedded defaults",
		cmd, strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
}

// allSettings returns the name of every setting.
func allSettings() []string {
	names := make([]string, len(settings))
	for i, s := range settings {
		names[i] = s.env
	}
	return names
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// usage is the program's usage text, listing every command.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: boxoffice <command> [flags]\n\ncommands:\n")
	line := func(name, summary string) {
		for i, l := range strings.Split(summary, "\n") {
			if i == 0 && len(name) < 15 {
				fmt.Fprintf(&b, "  %-15s%s\n", name, l)
				continue
			}
			if i == 0 {
				fmt.Fprintf(&b, "  %s\n", name)
			}
			fmt.Fprintf(&b, "  %-15s%s\n", "", l)
		}
	}
	for _, c := range commands {
		line(c.name+argsUsage(c.args), c.summary)
	}
	line("version", "print build information")
	line("healthcheck [URL]", healthcheckSummary)
	b.WriteString(`
Settings come from flags, then the environment, then a .env file. The distributed
roles (api, ingest, worker, listener) run on PostgreSQL, Redis and RabbitMQ and refuse
to start without the URLs they need; only run has embedded defaults.
'boxoffice <command> -h' lists a command's flags.`)
	return b.String()
}

// checkAPI is the api's check: its write endpoints need keys (requireAPIKeys), and its
// instances a shared cursor key (requireCursorKey).
func checkAPI(c config) error {
	if err := requireAPIKeys(c); err != nil {
		return err
	}
	return requireCursorKey(c)
}

// requireCursorKey refuses an api without a key to sign search cursors with that its
// instances share: CURSOR_SECRET, or API_KEYS to derive one from. A random key per
// process would make one instance's cursors a 400 on the next.
func requireCursorKey(c config) error {
	if c.cursorKey() == nil {
		return errors.New("api: CURSOR_SECRET is required when API_KEYS is unset: every instance must sign " +
			"paginated search cursors with the same key; set CURSOR_SECRET (at least 32 characters)")
	}
	return nil
}

// requireAPIKeys is the api's check: without API_KEYS its write endpoints would trust
// every client that reaches it (behind a proxy every client looks local, so the
// loopback rule of run does not hold), unless ALLOW_UNAUTHENTICATED_WRITES=true says
// that is meant.
func requireAPIKeys(c config) error {
	if len(c.APIKeys) == 0 && !c.OpenWrites {
		return errors.New("api: API_KEYS is required: without keys the write endpoints would trust every client " +
			"that reaches this process; set API_KEYS, or ALLOW_UNAUTHENTICATED_WRITES=true to serve writes to anyone")
	}
	return nil
}
