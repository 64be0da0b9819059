package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"boxoffice/httpapi"
	"boxoffice/ingest"
	"boxoffice/provider"
	"boxoffice/redact"
	"boxoffice/task"
)

// config is every setting of every command. Flags beat the environment, which beats the
// .env file, which beats the embedded-mode defaults below. A command reads only the
// settings it takes (commands); the others keep their defaults.
type config struct {
	HTTPAddr         string
	DataDir          string
	DatabaseWriteURL string
	DatabaseReadURL  string
	RedisURL         string
	BrokerURL        string
	ExternalAPIURL   string
	ProviderName     string
	Providers        []providerConfig // PROVIDERS
	FileProviders    []providerConfig // PROVIDERS_FILE's
	// ProviderList is every provider the command syncs (config.providers): set by
	// loadConfig for the commands that sync, not a setting of its own.
	ProviderList     []providerConfig
	Namespace        string
	SyncInterval     time.Duration
	SyncBatchPlans   int
	SyncBaseline     int           // SYNC_BASELINE_MAX_PLANS: stored plans a sync reads to publish only changes
	SyncMaxAttempts  int           // SYNC_MAX_ATTEMPTS: fetch attempts of a sync
	SyncRetry        time.Duration // SYNC_RETRY_SECONDS: delay before a sync's second attempt
	SyncRetryMax     time.Duration // SYNC_RETRY_MAX_SECONDS: cap on one delay
	APITimeout       time.Duration
	CacheTTL         time.Duration
	PriceCacheTTL    time.Duration
	APIKeys          []string
	OpenWrites       bool // ALLOW_UNAUTHENTICATED_WRITES
	MarketChannel    string
	L1CacheMaxBytes  int64
	IndexMaxBytes    int64
	IndexHistory     int    // INDEX_HISTORY: previous catalog versions kept for paginated searches
	CursorSecret     string // CURSOR_SECRET: signs search cursors; never shown
	ProviderMaxBytes int64
	TaskMaxAttempts  int
	TaskRetry        time.Duration
	TaskRedrive      time.Duration // TASK_REDRIVE_SECONDS: the outbox's round
	TaskLost         time.Duration // TASK_LOST_SECONDS: a published task's wait before it counts as lost
	LogLevel         slog.Level
	EnvFile          string

	// GoMemLimit: GOMEMLIMIT is set, so the Go runtime's memory limit is the
	// operator's and limitMemory leaves it alone; not a setting of boxoffice's own.
	GoMemLimit bool

	// The HTTP edge: deadlines by route class and the in-flight cap.
	Timeouts       httpapi.Timeouts
	MaxInFlight    int
	ReadRate       httpapi.Rate // RATE_LIMIT_PER_SECOND, RATE_LIMIT_BURST: searches, quotes, other reads
	WriteRate      httpapi.Rate // RATE_LIMIT_WRITES_PER_SECOND, RATE_LIMIT_WRITES_BURST
	TrustedProxies []netip.Prefix
	OpsAddr        string
	StoreReads     int
	TLSCertFile    string
	TLSKeyFile     string

	// Tracing records the spans of the process's adapters; nil leaves them
	// uninstrumented. Set by run from the OTEL_* variables (telemetry.Setup), not a
	// setting of its own.
	Tracing trace.TracerProvider

	Sim simConfig // provider-sim, and the simulator that run starts without EXTERNAL_API_URL

	DeadLetters deadLettersConfig // dead-letters: its action and flags
	// Stdout is where a command writes what it reports (dead-letters). Set by run, not a
	// setting of its own.
	Stdout io.Writer

	// Args are the command's positional arguments, as many as its entry in commands
	// names (backup's and restore's FILE).
	Args  []string
	Force bool // backup --force: replace FILE

	// Progress is the terminal that long commands (backup, restore, dead-letters replay)
	// draw their progress on: stderr when it is a terminal, else nil, and they draw
	// nothing. Set by run, not a setting of its own.
	Progress io.Writer

	// needs are the services the command opens (from commands).
	needs needs
}

// minCursorSecret is the shortest CURSOR_SECRET accepted: 32 characters.
const minCursorSecret = 32

// cursorKey returns the key that signs the API's search cursors: CURSOR_SECRET, else one
// derived from API_KEYS (HMAC-SHA256 of the sorted keys under a label of its own, so
// instances with the same keys share it and it reveals nothing of them), else nil: a
// random key per process, which only run, one process, may use (see checkAPI).
func (c config) cursorKey() []byte {
	if c.CursorSecret != "" {
		return []byte(c.CursorSecret)
	}
	if len(c.APIKeys) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, []byte("boxoffice search cursor key v1"))
	for _, k := range slices.Sorted(slices.Values(c.APIKeys)) {
		m.Write([]byte(k))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// setting is one configuration value: its environment name, its flag, and how it parses.
type setting struct {
	env, flag, def, usage string
	set                   func(c *config, v string) error
}

// settings lists the configuration of the commands, with the defaults of the embedded
// mode; each command takes the ones its entry in commands names.
var settings = []setting{
	{"HTTP_ADDR", "http-addr", ":8000", "address the HTTP API (or a role's /health, /ready and /metrics) listens on", func(c *config, v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("not a host:port address: %q", v)
		}
		c.HTTPAddr = v
		return nil
	}},
	{"DATA_DIR", "data-dir", "./data", "directory of the embedded SQLite store", func(c *config, v string) error {
		if v == "" {
			return errors.New("must not be empty")
		}
		c.DataDir = v
		return nil
	}},
	{"DATABASE_WRITE_URL", "database-write-url", "", "PostgreSQL primary (postgres://…)", urlSetter(func(c *config) *string { return &c.DatabaseWriteURL }, "postgres", "postgresql")},
	{"DATABASE_READ_URL", "database-read-url", "", "PostgreSQL replica for reads (postgres://…); empty reads from the primary", urlSetter(func(c *config) *string { return &c.DatabaseReadURL }, "postgres", "postgresql")},
	{"REDIS_URL", "redis-url", "", "Redis (redis://…): locks, caches, Pub/Sub", urlSetter(func(c *config) *string { return &c.RedisURL }, "redis", "rediss")},
	{"BROKER_URL", "broker-url", "", "RabbitMQ (amqp://…)", urlSetter(func(c *config) *string { return &c.BrokerURL }, "amqp", "amqps")},
	{"EXTERNAL_API_URL", "external-api-url", "", "one provider's endpoint (http://…), named PROVIDER_NAME; see also PROVIDERS and PROVIDERS_FILE", urlSetter(func(c *config) *string { return &c.ExternalAPIURL }, "http", "https")},
	{"PROVIDER_NAME", "provider-name", "fever", "provider name, part of every plan id: changing it changes the ids", func(c *config, v string) error {
		if v == "" || strings.Contains(v, "/") {
			return fmt.Errorf("must be non-empty and without '/': %q", v)
		}
		c.ProviderName = v
		return nil
	}},
	{"PROVIDERS", "providers", "", "more providers: whitespace-separated name=url or name:format=url (format planList, eventList, json or auto, the default)", func(c *config, v string) error {
		ps, err := parseProviders(v)
		c.Providers = ps
		return err
	}},
	{"PROVIDERS_FILE", "providers-file", "", "JSON file of providers, each with name, url and optionally format, interval_seconds, timeout_seconds, max_bytes, headers (docs/PROVIDER.md)", func(c *config, v string) error {
		c.FileProviders = nil
		if v == "" {
			return nil
		}
		ps, err := readProvidersFile(v)
		c.FileProviders = ps
		return err
	}},
	// NAMESPACE and MARKET_EVENTS_CHANNEL are checked alike, not the same: a namespace takes no ':'.
	{"NAMESPACE", "namespace", "boxoffice", "prefix of queue names, Redis keys and channels, so deployments can share a broker and a Redis", func(c *config, v string) error {
		if v == "" || strings.ContainsAny(v, " :*?[]") {
			return fmt.Errorf("must be non-empty, without spaces, ':' or glob characters: %q", v)
		}
		c.Namespace = v
		return nil
	}},
	{"SYNC_INTERVAL_SECONDS", "sync-interval-seconds", "300", "seconds between provider syncs", secondsSetter(func(c *config) *time.Duration { return &c.SyncInterval })},
	{"SYNC_BATCH_PLANS", "sync-batch-plans", "", fmt.Sprintf("plans per published batch, at most; empty: %d, or %d on the embedded broker (a batch also ends before its plans' JSON passes %d MiB, or %d MiB): each is one store transaction and one index refresh", ingest.DefaultConfig().BatchSize, embeddedBatch.plans, ingest.DefaultConfig().BatchBytes>>20, embeddedBatch.bytes>>20), optional(intSetter(func(c *config) *int { return &c.SyncBatchPlans }, 1, 100_000))},
	{"SYNC_BASELINE_MAX_PLANS", "sync-baseline-max-plans", strconv.Itoa(ingest.DefaultConfig().BaselinePlans), "stored plans of a provider, at most, that a sync reads (about 25 bytes of memory each) to publish only the plans it changes; a provider with more has every plan published at each sync", intSetter(func(c *config) *int { return &c.SyncBaseline }, 1, 1_000_000_000)},
	{"SYNC_MAX_ATTEMPTS", "sync-max-attempts", strconv.Itoa(ingest.DefaultConfig().Attempts), "fetch attempts of a provider sync, the first included, before the sync fails (timeouts, 5xx, 408, 429 and broken connections are tried again)", intSetter(func(c *config) *int { return &c.SyncMaxAttempts }, 1, 100)},
	{"SYNC_RETRY_SECONDS", "sync-retry-seconds", seconds(ingest.DefaultConfig().Backoff), "delay before a sync's second fetch attempt; it doubles with each attempt, with jitter, up to SYNC_RETRY_MAX_SECONDS", secondsSetter(func(c *config) *time.Duration { return &c.SyncRetry })},
	{"SYNC_RETRY_MAX_SECONDS", "sync-retry-max-seconds", seconds(ingest.DefaultConfig().MaxBackoff), "longest delay between two fetch attempts of a sync", secondsSetter(func(c *config) *time.Duration { return &c.SyncRetryMax })},
	{"API_TIMEOUT_SECONDS", "api-timeout-seconds", "30", "provider timeout: connect, headers, and each pause in the body", secondsSetter(func(c *config) *time.Duration { return &c.APITimeout })},
	{"CACHE_TTL_SECONDS", "cache-ttl-seconds", "300", "time to live of cached responses", secondsSetter(func(c *config) *time.Duration { return &c.CacheTTL })},
	{"PRICE_CACHE_TTL_SECONDS", "price-cache-ttl-seconds", "300", "time to live of cached price quotes; a recalculation invalidates them at once", secondsSetter(func(c *config) *time.Duration { return &c.PriceCacheTTL })},
	{"API_KEYS", "api-keys", "", "comma-separated bearer keys for the write endpoints; empty accepts loopback clients only", func(c *config, v string) error {
		c.APIKeys = nil
		for _, k := range strings.Split(v, ",") {
			k = strings.TrimSpace(k)
			switch {
			case k == "" && v == "":
				return nil
			case len(k) < 16:
				return fmt.Errorf("each key must have at least 16 characters (a key of %d is too easy to guess)", len(k))
			case strings.ContainsAny(k, " \t\"'"):
				return errors.New("keys must not contain spaces or quotes")
			}
			c.APIKeys = append(c.APIKeys, k)
		}
		return nil
	}},
	{"ALLOW_UNAUTHENTICATED_WRITES", "allow-unauthenticated-writes", "false", "true: without API_KEYS, the write endpoints serve every client (else loopback ones only, and `api` refuses to start)", func(c *config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("not true or false: %q", v)
		}
		c.OpenWrites = b
		return nil
	}},
	{"MARKET_EVENTS_CHANNEL", "market-events-channel", "market_events", "Redis Pub/Sub channel of market events", func(c *config, v string) error {
		if v == "" || strings.ContainsAny(v, " *?[]") {
			return fmt.Errorf("must be non-empty, without spaces or glob characters: %q", v)
		}
		c.MarketChannel = v
		return nil
	}},
	{"L1_CACHE_MAX_BYTES", "l1-cache-max-bytes", "67108864", "bytes of search responses each API process keeps in memory; one above a sixteenth of it is served uncached", bytesSetter(func(c *config) *int64 { return &c.L1CacheMaxBytes })},
	{"INDEX_MAX_BYTES", "index-max-bytes", "1073741824", "memory budget of each API process's search index; a catalog beyond it is searched in the store, through the response caches", bytesSetter(func(c *config) *int64 { return &c.IndexMaxBytes })},
	{"INDEX_HISTORY", "index-history", "4", "previous catalog versions each API process keeps in its search index (within INDEX_MAX_BYTES) so that paginated searches read every page at the version they started at; a cursor of an older version gets 410", intSetter(func(c *config) *int { return &c.IndexHistory }, 0, 100)},
	{"CURSOR_SECRET", "cursor-secret", "", "key that signs the cursors of paginated searches, at least 32 characters, the same on every api instance behind one load balancer; empty: api derives it from API_KEYS, run picks a random one", func(c *config, v string) error {
		if v != "" && len(v) < minCursorSecret {
			return fmt.Errorf("must have at least %d characters (this one has %d)", minCursorSecret, len(v))
		}
		c.CursorSecret = v
		return nil
	}},
	{"PROVIDER_MAX_BYTES", "provider-max-bytes", strconv.Itoa(provider.DefaultMaxBytes), "largest provider document a sync reads; a larger one aborts the sync, which publishes nothing", bytesSetter(func(c *config) *int64 { return &c.ProviderMaxBytes })},
	{"TASK_MAX_ATTEMPTS", "task-max-attempts", "6", "deliveries of a broker message (a plan batch, a recalculation), the first included, before it is dead-lettered", func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return fmt.Errorf("must be a whole number from 1 to 100: %q", v)
		}
		c.TaskMaxAttempts = n
		return nil
	}},
	{"TASK_RETRY_SECONDS", "task-retry-seconds", "1", "countdown before a failed broker message's first retry; it doubles with each attempt, up to 30 s", secondsSetter(func(c *config) *time.Duration { return &c.TaskRetry })},
	{"TASK_REDRIVE_SECONDS", "task-redrive-seconds", "30", "how often a worker publishes again the pending recalculations whose message never reached the broker (recorded at least this long ago)", secondsSetter(func(c *config) *time.Duration { return &c.TaskRedrive })},
	{"TASK_LOST_SECONDS", "task-lost-seconds", "600", "how long a published recalculation may stay pending without an attempt, or running since its attempt started, before a worker publishes it again, as lost by the broker or by a worker that died", secondsSetter(func(c *config) *time.Duration { return &c.TaskLost })},
	{"SEARCH_TIMEOUT_SECONDS", "search-timeout-seconds", "2", "deadline of a search that reads the store (one from the in-memory index does no I/O)", secondsSetter(func(c *config) *time.Duration { return &c.Timeouts.Search })},
	{"QUOTE_TIMEOUT_SECONDS", "quote-timeout-seconds", "1", "deadline of a price quote (cache, then store reads on a miss)", secondsSetter(func(c *config) *time.Duration { return &c.Timeouts.Quote })},
	{"READ_TIMEOUT_SECONDS", "read-timeout-seconds", "2", "deadline of the other reads (an event's products, a task)", secondsSetter(func(c *config) *time.Duration { return &c.Timeouts.Read })},
	{"WRITE_TIMEOUT_SECONDS", "write-timeout-seconds", "5", "deadline of the write endpoints (recalculate, publish-market-event)", secondsSetter(func(c *config) *time.Duration { return &c.Timeouts.Write })},
	{"MAX_IN_FLIGHT", "max-in-flight", "1000", "requests each process serves at once; past it 503 at once (/health is never shed); 0: no cap", intSetter(func(c *config) *int { return &c.MaxInFlight }, 0, 1_000_000)},
	{"RATE_LIMIT_PER_SECOND", "rate-limit-per-second", "100", "requests a second each client (its API key, else its address) may make of each read class: searches, price quotes, the other reads; 0: no limit", rateSetter(func(c *config) *float64 { return &c.ReadRate.PerSecond })},
	{"RATE_LIMIT_BURST", "rate-limit-burst", "200", "requests a client may make at once of each read class, above its rate", intSetter(func(c *config) *int { return &c.ReadRate.Burst }, 1, 1_000_000)},
	{"RATE_LIMIT_WRITES_PER_SECOND", "rate-limit-writes-per-second", "10", "requests a second each client may make of the write endpoints; 0: no limit", rateSetter(func(c *config) *float64 { return &c.WriteRate.PerSecond })},
	{"RATE_LIMIT_WRITES_BURST", "rate-limit-writes-burst", "20", "write requests a client may make at once, above its rate", intSetter(func(c *config) *int { return &c.WriteRate.Burst }, 1, 1_000_000)},
	{"TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated CIDRs (or addresses) of reverse proxies whose X-Forwarded-For names the client for rate limits", func(c *config, v string) error {
		c.TrustedProxies = nil
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			p, err := netip.ParsePrefix(f)
			if err != nil {
				a, aerr := netip.ParseAddr(f)
				if aerr != nil {
					return fmt.Errorf("not a CIDR or an address: %q", f)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			c.TrustedProxies = append(c.TrustedProxies, p.Masked())
		}
		return nil
	}},
	{"SEARCH_STORE_READS", "search-store-reads", "2", "searches each API process runs against the store at once when it has no index (catalog beyond INDEX_MAX_BYTES, or not loaded yet); identical windows share one read", intSetter(func(c *config) *int { return &c.StoreReads }, 1, 1000)},
	{"OPS_ADDR", "ops-addr", "", "address of a second listener, plain HTTP, for /health, /ready, /metrics and the profiler (/debug/pprof/); keep it private; empty: none", func(c *config, v string) error {
		if v == "" {
			return nil
		}
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("not a host:port address: %q", v)
		}
		c.OpsAddr = v
		return nil
	}},
	{"TLS_CERT_FILE", "tls-cert-file", "", "PEM certificate (chain) to serve HTTPS with HTTP/2 on HTTP_ADDR; reloaded when it changes or on SIGHUP", func(c *config, v string) error {
		c.TLSCertFile = v
		return nil
	}},
	{"TLS_KEY_FILE", "tls-key-file", "", "PEM private key of TLS_CERT_FILE", func(c *config, v string) error {
		c.TLSKeyFile = v
		return nil
	}},
	{"LOG_LEVEL", "log-level", "info", "debug, info, warn or error", func(c *config, v string) error {
		return c.LogLevel.UnmarshalText([]byte(v))
	}},
}

// urlSetter returns a setter for a URL-valued setting whose scheme must be one of
// schemes; the empty value leaves the adapter on its embedded default.
func urlSetter(field func(*config) *string, schemes ...string) func(c *config, v string) error {
	return func(c *config, v string) error {
		if v == "" {
			return nil
		}
		u, err := url.Parse(v)
		if err != nil {
			// Never url's error: it quotes v whole, and its reason may quote the password.
			return fmt.Errorf("not a URL: %q", redact.URL(v))
		}
		for _, s := range schemes {
			if u.Scheme == s && u.Host != "" {
				*field(c) = v
				return nil
			}
		}
		return fmt.Errorf("want a %s:// URL with a host, got %q", schemes[0], redact.URL(v))
	}
}

// bytesSetter returns a setter for a size in bytes of at least 1 MiB.
func bytesSetter(field func(*config) *int64) func(c *config, v string) error {
	return func(c *config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not a whole number of bytes: %q", v)
		}
		if n < 1<<20 {
			return fmt.Errorf("must be at least 1 MiB (1048576): %q", v)
		}
		*field(c) = n
		return nil
	}
}

// rateSetter returns a setter for a rate a second: 0 or more, 0 meaning no limit.
func rateSetter(field func(*config) *float64) func(c *config, v string) error {
	return func(c *config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("not a number: %q", v)
		}
		if f < 0 || f > 1e9 {
			return fmt.Errorf("must be between 0 (no limit) and 1e9: %q", v)
		}
		*field(c) = f
		return nil
	}
}

// intSetter returns a setter for a whole number between lo and hi.
func intSetter(field func(*config) *int, lo, hi int) func(c *config, v string) error {
	return func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not a whole number: %q", v)
		}
		if n < lo || n > hi {
			return fmt.Errorf("must be between %d and %d: %q", lo, hi, v)
		}
		*field(c) = n
		return nil
	}
}

// optional makes set leave the empty value to the setting's zero, which picks a
// default later.
func optional(set func(c *config, v string) error) func(c *config, v string) error {
	return func(c *config, v string) error {
		if v == "" {
			return nil
		}
		return set(c, v)
	}
}

// seconds writes d as a setting's default in seconds.
func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

func secondsSetter(field func(*config) *time.Duration) func(c *config, v string) error {
	return func(c *config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("not a number: %q", v)
		}
		if f <= 0 || f > 365*24*3600 {
			return fmt.Errorf("must be above 0 and at most a year: %q", v)
		}
		*field(c) = time.Duration(f * float64(time.Second))
		return nil
	}
}

// embeddedUsage says what an embedded command does when a URL is unset.
var embeddedUsage = map[string]string{
	"DATABASE_WRITE_URL": "empty selects SQLite under --data-dir",
	"REDIS_URL":          "empty keeps them in process",
	"BROKER_URL":         "empty selects the embedded broker, a durable queue under --data-dir",
	"EXTERNAL_API_URL":   "empty, with neither PROVIDERS nor PROVIDERS_FILE, starts the built-in simulator",
}

// loadConfig reads the settings of command cmd from args, getenv and the .env file.
// Errors name the variable or flag and the value; a distributed role missing a URL it
// needs is an error naming every one missing.
func loadConfig(cmd command, args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	c := config{needs: cmd.needs}
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: boxoffice %s [flags]%s\n\n%s\n\nflags:\n", cmd.name, argsUsage(cmd.args), cmd.summary)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.EnvFile, "env-file", ".env", "file of KEY=VALUE defaults read when present")
	takes := map[string]bool{}
	for _, name := range cmd.settings {
		takes[name] = true
	}
	flagged := make([]*string, len(settings))
	for i, s := range settings {
		if !takes[s.env] {
			continue
		}
		var how string
		switch {
		case slices.Contains(cmd.needs.required(), s.env):
			how = fmt.Sprintf("env %s, required", s.env)
		case s.def == "":
			how = "env " + s.env
		default:
			how = fmt.Sprintf("env %s, default %q", s.env, s.def)
		}
		usage := s.usage
		if e, ok := embeddedUsage[s.env]; ok && cmd.needs.embedded {
			usage += "; " + e
		}
		flagged[i] = fs.String(s.flag, "", fmt.Sprintf("%s (%s)", usage, how))
	}
	if cmd.flags != nil {
		cmd.flags(fs, &c)
	}
	positional, err := parseArgs(fs, args, len(cmd.args) > 0)
	if err != nil {
		return c, err
	}
	switch {
	case len(positional) > 0 && len(cmd.args) == 0:
		return c, fmt.Errorf("%s: unexpected arguments %q", cmd.name, positional)
	case len(positional) != len(cmd.args):
		return c, fmt.Errorf("%s: want%s, got %q", cmd.name, argsUsage(cmd.args), positional)
	}
	c.Args = positional
	c.GoMemLimit = getenv("GOMEMLIMIT") != ""
	dotenv, err := readDotenv(c.EnvFile)
	if err != nil {
		return c, err
	}
	setFlags := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setFlags[f.Name] = true })
	for i, s := range settings {
		v, from := s.def, s.env
		if takes[s.env] {
			if dv, ok := dotenv[s.env]; ok {
				v = dv
			}
			if ev, ok := lookup(getenv, s.env); ok {
				v = ev
			}
			if setFlags[s.flag] {
				v, from = *flagged[i], "--"+s.flag
			}
		}
		v = strings.TrimSpace(v)
		if err := s.set(&c, v); err != nil {
			return c, fmt.Errorf("%s: %w", from, err)
		}
	}
	if err := c.Sim.validate(); err != nil {
		return c, err
	}
	if cmd.name == "dead-letters" {
		if err := c.DeadLetters.validate(); err != nil {
			return c, err
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return c, errTLSPair
	}
	if c.DatabaseReadURL != "" && c.DatabaseWriteURL == "" {
		return c, errors.New("DATABASE_READ_URL: set without DATABASE_WRITE_URL")
	}
	if cmd.needs.provider {
		if c.ProviderList, err = c.providers(); err != nil {
			return c, err
		}
		if len(c.ProviderList) == 0 {
			if err := c.Sim.checkFeedNames(c.ProviderName); err != nil {
				return c, err
			}
		}
	}
	if missing := cmd.needs.missing(c); len(missing) > 0 {
		return c, requiredError(cmd.name, missing)
	}
	if cmd.check != nil {
		if err := cmd.check(c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// parseArgs parses args with fs and returns the positional arguments. With interleaved,
// flags may also follow them (`boxoffice backup FILE --force`); else the first positional
// argument ends the flags, as the flag package has it.
func parseArgs(fs *flag.FlagSet, args []string, interleaved bool) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if !interleaved || fs.NArg() == 0 {
			return append(positional, fs.Args()...), nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// argsUsage is the usage of positional arguments: " FILE".
func argsUsage(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return " " + strings.Join(args, " ")
}

// retry is the policy of the process's broker, and of the recalculation that must
// know its last attempt: TASK_MAX_ATTEMPTS and TASK_RETRY_SECONDS, and the default
// delivery limit.
func (c config) retry() task.RetryPolicy {
	return task.RetryPolicy{MaxAttempts: c.TaskMaxAttempts, Countdown: c.TaskRetry,
		MaxDelay: max(task.DefaultRetry.MaxDelay, c.TaskRetry), DeliveryLimit: task.DefaultRetry.DeliveryLimit}
}

// lookup distinguishes an unset variable from an empty one only through getenv, which
// cannot: an empty variable counts as unset, so `FOO= boxoffice run` keeps the default.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}
