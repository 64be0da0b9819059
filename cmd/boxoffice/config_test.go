package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"boxoffice/httpapi"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// commandNamed returns the command called name.
func commandNamed(t *testing.T, name string) command {
	t.Helper()
	c, ok := findCommand(name)
	if !ok {
		t.Fatalf("no command %q", name)
	}
	return c
}

// noDotenv points the config at a .env file that does not exist.
func noDotenv(t *testing.T) []string {
	return []string{"--env-file", filepath.Join(t.TempDir(), "absent.env")}
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig(commandNamed(t, "run"), noDotenv(t), env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8000" || c.DataDir != "./data" || c.SyncInterval != 300*time.Second ||
		c.APITimeout != 30*time.Second || c.CacheTTL != 300*time.Second || c.L1CacheMaxBytes != 64<<20 || c.ProviderName != "fever" || c.ExternalAPIURL != "" ||
		c.Timeouts != (httpapi.Timeouts{Search: 2 * time.Second, Quote: time.Second, Read: 2 * time.Second, Write: 5 * time.Second}) || c.MaxInFlight != 1000 {
		t.Errorf("defaults = %+v", c)
	}
}

func TestLoadConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	dotenv := filepath.Join(dir, ".env")
	os.WriteFile(dotenv, []byte("SYNC_INTERVAL_SECONDS=10\nAPI_TIMEOUT_SECONDS=5\nDATA_DIR=/from/dotenv\n"), 0o600)
	c, err := loadConfig(commandNamed(t, "run"), []string{"--env-file", dotenv, "--data-dir", "/from/flag"},
		env(map[string]string{"API_TIMEOUT_SECONDS": "2.5", "DATA_DIR": "/from/env"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.SyncInterval, c.APITimeout, c.DataDir}
	want := []any{10 * time.Second, 2500 * time.Millisecond, "/from/flag"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dotenv < env < flag (-want +got):\n%s", diff)
	}
}

func TestLoadConfigRejects(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"interval as duration", map[string]string{"SYNC_INTERVAL_SECONDS": "5m"}, nil, `SYNC_INTERVAL_SECONDS: not a number: "5m"`},
		{"negative timeout", map[string]string{"API_TIMEOUT_SECONDS": "-1"}, nil, "API_TIMEOUT_SECONDS: must be above 0"},
		{"NaN", map[string]string{"CACHE_TTL_SECONDS": "NaN"}, nil, "CACHE_TTL_SECONDS: not a number"},
		{"bad address", map[string]string{"HTTP_ADDR": "8000"}, nil, "HTTP_ADDR: not a host:port"},
		{"provider url scheme", map[string]string{"EXTERNAL_API_URL": "ftp://x/y"}, nil, "EXTERNAL_API_URL: want a http:// URL"},
		{"redacts passwords", map[string]string{"DATABASE_WRITE_URL": "mysql://u:secret@h/db"}, nil, "DATABASE_WRITE_URL: want a postgres:// URL with a host, got \"mysql://u:xxxxx@h/db\""},
		{"redacts a malformed URL", map[string]string{"DATABASE_WRITE_URL": "postgres://u:secret@h:bad/db"}, nil, `DATABASE_WRITE_URL: not a URL: "postgres://u:xxxxx@h:bad/db"`},
		{"redacts a password that breaks the URL", map[string]string{"REDIS_URL": "redis://:se%zcret@h/0"}, nil, `REDIS_URL: not a URL: "redis://:xxxxx@h/0"`},
		{"redacts query secrets", map[string]string{"EXTERNAL_API_URL": "ftp://feed.example/e?api_key=secret"}, nil, `want a http:// URL with a host, got "ftp://feed.example/e?api_key=xxxxx"`},
		{"log level", map[string]string{"LOG_LEVEL": "loud"}, nil, "LOG_LEVEL"},
		{"L1 budget in MiB", map[string]string{"L1_CACHE_MAX_BYTES": "64MiB"}, nil, `L1_CACHE_MAX_BYTES: not a whole number of bytes: "64MiB"`},
		{"L1 budget too small", map[string]string{"L1_CACHE_MAX_BYTES": "1000"}, nil, "L1_CACHE_MAX_BYTES: must be at least 1 MiB"},
		{"provider document in GiB", map[string]string{"PROVIDER_MAX_BYTES": "4GiB"}, nil, `PROVIDER_MAX_BYTES: not a whole number of bytes: "4GiB"`},
		{"provider document too small", map[string]string{"PROVIDER_MAX_BYTES": "1000"}, nil, "PROVIDER_MAX_BYTES: must be at least 1 MiB"},
		{"flag names itself", nil, []string{"--sync-interval-seconds", "x"}, `--sync-interval-seconds: not a number: "x"`},
		{"read without write", map[string]string{"DATABASE_READ_URL": "postgres://h/db"}, nil, "DATABASE_READ_URL: set without DATABASE_WRITE_URL"},
		{"stray argument", nil, []string{"extra"}, "unexpected arguments"},
		{"timeout of zero", map[string]string{"QUOTE_TIMEOUT_SECONDS": "0"}, nil, "QUOTE_TIMEOUT_SECONDS: must be above 0"},
		{"timeout as duration", map[string]string{"SEARCH_TIMEOUT_SECONDS": "2s"}, nil, `SEARCH_TIMEOUT_SECONDS: not a number: "2s"`},
		{"negative in-flight cap", map[string]string{"MAX_IN_FLIGHT": "-1"}, nil, `MAX_IN_FLIGHT: must be between 0 and 1000000: "-1"`},
		{"negative rate", map[string]string{"RATE_LIMIT_PER_SECOND": "-1"}, nil, `RATE_LIMIT_PER_SECOND: must be between 0 (no limit) and 1e9: "-1"`},
		{"rate with a unit", map[string]string{"RATE_LIMIT_WRITES_PER_SECOND": "10/s"}, nil, `RATE_LIMIT_WRITES_PER_SECOND: not a number: "10/s"`},
		{"burst of zero", map[string]string{"RATE_LIMIT_BURST": "0"}, nil, `RATE_LIMIT_BURST: must be between 1 and 1000000: "0"`},
		{"bad proxy", map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}, nil, `TRUSTED_PROXIES: not a CIDR or an address: "proxy.local"`},
		{"fractional in-flight cap", map[string]string{"MAX_IN_FLIGHT": "1.5"}, nil, `MAX_IN_FLIGHT: not a whole number: "1.5"`},
		{"provider without url", map[string]string{"PROVIDERS": "a=http://a.example/x acme"}, nil, `PROVIDERS: entry 2 "acme": want name=url or name:format=url`},
		{"provider url scheme", map[string]string{"PROVIDERS": "a=ftp://u:secret@a.example/x"}, nil, `PROVIDERS: entry 1 "a=ftp://u:xxxxx@a.example/x": url: want an http:// or https:// URL with a host, got "ftp://u:xxxxx@a.example/x"`},
		{"provider url secret in the query", map[string]string{"PROVIDERS": "a=https://?token=secret b"}, nil, `PROVIDERS: entry 1 "a=https://?token=xxxxx": url: want an http:// or https:// URL with a host, got "https://?token=xxxxx"`},
		{"provider name", map[string]string{"PROVIDERS": "a/b=http://a.example/x"}, nil, `PROVIDERS: entry 1 "a/b=http://a.example/x": name "a/b": want 1 to 64 letters`},
		{"provider format", map[string]string{"PROVIDERS": "a:yaml=http://a.example/x"}, nil, `PROVIDERS: entry 1 "a=http://a.example/x": format: unknown format "yaml" (want auto, planList, eventList, json)`},
		{"provider twice", map[string]string{"PROVIDERS": "a=http://a.example/x b=http://b.example/ a:json=http://c.example/"}, nil, `PROVIDERS entry 3: provider "a" is already configured by PROVIDERS entry 1`},
		{"provider also by the shorthand", map[string]string{"EXTERNAL_API_URL": "http://f.example/", "PROVIDERS": "fever=http://a.example/x"}, nil, `PROVIDERS entry 1: provider "fever" is already configured by EXTERNAL_API_URL`},
		{"providers file absent", map[string]string{"PROVIDERS_FILE": "/nonexistent/providers.json"}, nil, `PROVIDERS_FILE: open /nonexistent/providers.json: no such file or directory`},
		{"short cursor secret, not shown", map[string]string{"CURSOR_SECRET": "secret-of-20-letters"}, nil, "CURSOR_SECRET: must have at least 32 characters (this one has 20)"},
		{"negative index history", map[string]string{"INDEX_HISTORY": "-1"}, nil, `INDEX_HISTORY: must be between 0 and 100: "-1"`},
		{"baseline bound in MiB", map[string]string{"SYNC_BASELINE_MAX_PLANS": "100MiB"}, nil, `SYNC_BASELINE_MAX_PLANS: not a whole number: "100MiB"`},
		{"baseline bound of zero", map[string]string{"SYNC_BASELINE_MAX_PLANS": "0"}, nil, `SYNC_BASELINE_MAX_PLANS: must be between 1 and 1000000000: "0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(commandNamed(t, "run"), append(noDotenv(t), tt.args...), env(tt.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("loadConfig() = %v, want an error containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q leaks a password", err)
			}
		})
	}
}

// TestLoadConfigArgs checks the positional arguments of the commands that take them,
// before or among their flags.
func TestLoadConfigArgs(t *testing.T) {
	tests := []struct {
		name      string
		cmd       string
		args      []string
		wantArgs  []string
		wantForce bool
		wantErr   string
	}{
		{"file", "backup", []string{"b.db"}, []string{"b.db"}, false, ""},
		{"flags first", "backup", []string{"--force", "--data-dir", "/d", "b.db"}, []string{"b.db"}, true, ""},
		{"flags after", "backup", []string{"b.db", "--force"}, []string{"b.db"}, true, ""},
		{"no file", "backup", nil, nil, false, `backup: want FILE, got []`},
		{"two files", "restore", []string{"a.db", "b.db"}, nil, false, `restore: want FILE, got ["a.db" "b.db"]`},
		{"restore has no --force", "restore", []string{"a.db", "--force"}, nil, false, "flag provided but not defined: -force"},
		{"run takes none", "run", []string{"x"}, nil, false, `run: unexpected arguments ["x"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(commandNamed(t, tt.cmd), append(noDotenv(t), tt.args...), env(nil), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("loadConfig(%s %q) = %v, want an error containing %q", tt.cmd, tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Args, tt.wantArgs) || c.Force != tt.wantForce {
				t.Errorf("loadConfig(%s %q): args %q, force %v; want %q, %v", tt.cmd, tt.args, c.Args, c.Force, tt.wantArgs, tt.wantForce)
			}
		})
	}
}

func TestParseDotenv(t *testing.T) {
	in := `# comment
export A=1
B = two words # trailing comment
C='single # kept'
D="line\nbreak \"quoted\""
E=
`
	got, err := parseDotenv(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "two words", "C": "single # kept", "D": "line\nbreak \"quoted\"", "E": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseDotenv (-want +got):\n%s", diff)
	}
}

func TestParseDotenvRejects(t *testing.T) {
	for _, in := range []string{"no equals sign", "1BAD=x", "A='open", `A="open`, `A="x" y`, "A B=c"} {
		if _, err := parseDotenv(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("parseDotenv(%q) = %v, want an error naming line 1", in, err)
		}
	}
}

// TestCommandHelp checks that -h prints a command's own flags, and only those, and
// succeeds.
func TestCommandHelp(t *testing.T) {
	tests := []struct {
		cmd     string
		want    []string
		notWant []string
	}{
		{"run", []string{"-sim-mode", "-sim-feeds", "-data-dir", "-database-write-url", "-api-keys", "-sync-interval-seconds"}, []string{"  -addr "}},
		{"provider-sim", []string{"-mode", "-feeds", "-addr", "-error-rate", "-log-level"},
			[]string{"-database", "-redis-url", "-broker-url", "-api-keys", "-l1-cache", "-index-max", "-http-addr", "-data-dir", "-sim-"}},
		{"api", []string{"-http-addr", "-database-write-url", "-database-read-url", "-redis-url", "-broker-url", "-api-keys", "-l1-cache-max-bytes", "-index-max-bytes",
			"-index-history", "-cursor-secret", "-max-in-flight", "-quote-timeout-seconds", "-rate-limit-per-second", "-trusted-proxies"},
			[]string{"-data-dir", "-mode", "-sim-", "-external-api-url", "-sync-interval-seconds"}},
		{"ingest", []string{"-http-addr", "-database-write-url", "-broker-url", "-redis-url", "-external-api-url", "-provider-name", "-sync-interval-seconds", "-api-timeout-seconds"},
			[]string{"-data-dir", "-sim-", "-api-keys", "-cache-ttl", "-index-max", "-cursor-secret", "-market-events-channel", "-rate-limit-per-second", "-max-in-flight"}},
		{"worker", []string{"-http-addr", "-database-write-url", "-broker-url", "-redis-url", "-task-redrive-seconds", "-task-lost-seconds"},
			[]string{"-data-dir", "-sim-", "-api-keys", "-external-api-url", "-cache-ttl", "-market-events-channel"}},
		{"listener", []string{"-http-addr", "-database-write-url", "-broker-url", "-redis-url", "-market-events-channel"},
			[]string{"-data-dir", "-sim-", "-api-keys", "-external-api-url", "-cache-ttl"}},
		{"migrate", []string{"-database-write-url", "-data-dir"}, []string{"-http-addr", "-redis-url", "-broker-url", "-sim-"}},
		{"backup", []string{"usage: boxoffice backup [flags] FILE", "-data-dir", "-force", "-log-level"},
			[]string{"-database-write-url", "-http-addr", "-redis-url", "-broker-url", "-sim-"}},
		{"restore", []string{"usage: boxoffice restore [flags] FILE", "-data-dir", "-log-level"},
			[]string{"-force", "-database-write-url", "-http-addr", "-redis-url", "-broker-url", "-sim-"}},
		{"version", []string{"usage: boxoffice version"}, nil},
		{"healthcheck", []string{"usage: boxoffice healthcheck"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			var stderr strings.Builder
			getenv := func(k string) string {
				t.Errorf("-h read the environment (%s)", k)
				return ""
			}
			if err := run(t.Context(), []string{tt.cmd, "-h"}, getenv, io.Discard, &stderr); err != nil {
				t.Errorf("run(%s -h) = %v, want nil", tt.cmd, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("%s -h does not mention %s:\n%s", tt.cmd, w, stderr.String())
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(stderr.String(), w) {
					t.Errorf("%s -h mentions %s, which is not its own:\n%s", tt.cmd, w, stderr.String())
				}
			}
		})
	}
}

// TestRoleRequiresItsURLs starts each distributed role without some of the URLs it
// needs: it must stop before opening anything, naming every one missing.
func TestRoleRequiresItsURLs(t *testing.T) {
	const (
		pg     = "postgres://u:secret@127.0.0.1:1/db"
		broker = "amqp://u:secret@127.0.0.1:1/"
		redis  = "redis://:secret@127.0.0.1:1/0"
	)
	tests := []struct {
		cmd     string
		env     map[string]string
		wantErr string
	}{
		{"worker", nil, "worker: DATABASE_WRITE_URL, BROKER_URL and REDIS_URL are required"},
		{"api", nil, "api: DATABASE_WRITE_URL, BROKER_URL and REDIS_URL are required"},
		{"listener", nil, "listener: DATABASE_WRITE_URL, BROKER_URL and REDIS_URL are required"},
		{"ingest", nil, "ingest: DATABASE_WRITE_URL, BROKER_URL, REDIS_URL and EXTERNAL_API_URL (or PROVIDERS or PROVIDERS_FILE) are required"},
		{"api", map[string]string{"DATABASE_WRITE_URL": pg}, "api: BROKER_URL and REDIS_URL are required"},
		{"worker", map[string]string{"DATABASE_WRITE_URL": pg, "BROKER_URL": broker}, "worker: REDIS_URL is required"},
		{"listener", map[string]string{"BROKER_URL": broker, "REDIS_URL": redis}, "listener: DATABASE_WRITE_URL is required"},
		{"ingest", map[string]string{"BROKER_URL": broker, "REDIS_URL": redis}, "ingest: DATABASE_WRITE_URL and EXTERNAL_API_URL (or PROVIDERS or PROVIDERS_FILE) are required"},
		{"ingest", map[string]string{"DATABASE_WRITE_URL": pg, "BROKER_URL": broker, "REDIS_URL": redis}, "ingest: EXTERNAL_API_URL (or PROVIDERS or PROVIDERS_FILE) is required"},
		// The replica alone is not the store.
		{"worker", map[string]string{"DATABASE_READ_URL": pg, "BROKER_URL": broker, "REDIS_URL": redis}, "DATABASE_READ_URL: set without DATABASE_WRITE_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			env := map[string]string{"HTTP_ADDR": "127.0.0.1:0"}
			maps.Copy(env, tt.env)
			// A role that went on would open the services and serve: with the context
			// already cancelled it stops at once instead of hanging the test.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			err := run(ctx, append([]string{tt.cmd}, noDotenv(t)...), func(k string) string { return env[k] }, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("run(%s) with %v = %v, want an error containing %q", tt.cmd, tt.env, err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q leaks a password", err)
			}
		})
	}
}

// TestUnknownCommandFirst checks that an unknown command is reported before its flags,
// the environment or a .env file are read.
func TestUnknownCommandFirst(t *testing.T) {
	getenv := func(k string) string {
		t.Errorf("an unknown command read the environment (%s)", k)
		return ""
	}
	err := run(t.Context(), []string{"serve", "--no-such-flag", "--env-file", t.TempDir()}, getenv, io.Discard, io.Discard)
	if err == nil || !strings.HasPrefix(err.Error(), `unknown command "serve"`) {
		t.Errorf("run(serve) = %v, want an error starting with unknown command \"serve\"", err)
	}
}

// TestREADMEConfiguration checks the README's configuration table against settings and
// commands: each setting's flag, default and the commands that take it.
func TestREADMEConfiguration(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(raw), "| variable | flag | default | commands | meaning |\n|---|---|---|---|---|\n")
	if !ok {
		t.Fatal("README.md has no configuration table")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	type row struct{ flag, def, commands string }
	rows := map[string]row{}
	for line := range strings.Lines(table) {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) != 5 {
			t.Fatalf("README configuration row %q has %d cells, want 5", line, len(cells))
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[strings.Trim(cells[0], "`")] = row{cells[1], cells[2], cells[3]}
	}
	roles := "`api`, `ingest`, `worker`, `listener`"
	var all []string
	for _, c := range commands {
		all = append(all, "`"+c.name+"`")
	}
	for _, s := range settings {
		r, ok := rows[s.env]
		if !ok {
			t.Errorf("README configuration table lacks %s", s.env)
			continue
		}
		def := "`" + s.def + "`"
		if s.def == "" {
			def = r.def // "(unset)" or "(none)"
			if def != "(unset)" && def != "(none)" {
				t.Errorf("README: %s default %s, want (unset) or (none)", s.env, def)
			}
		}
		if got := (row{r.flag, r.def, ""}); got != (row{"`--" + s.flag + "`", def, ""}) {
			t.Errorf("README: %s flag %s default %s, want `--%s` %s", s.env, r.flag, r.def, s.flag, def)
		}
		var takes []string
		for _, c := range commands {
			if slices.Contains(c.settings, s.env) {
				takes = append(takes, "`"+c.name+"`")
			}
		}
		got := strings.ReplaceAll(r.commands, "roles", roles)
		if got == "all" {
			got = strings.Join(all, ", ")
		}
		if want := strings.Join(takes, ", "); got != want {
			t.Errorf("README: %s is taken by %s, want %s", s.env, r.commands, want)
		}
	}
}

func TestLoadConfigEdge(t *testing.T) {
	c, err := loadConfig(commandNamed(t, "run"), noDotenv(t), env(map[string]string{
		"TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,fd00::/8", "RATE_LIMIT_PER_SECOND": "2.5", "RATE_LIMIT_WRITES_PER_SECOND": "0",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{fmt.Sprint(c.TrustedProxies), c.ReadRate, c.WriteRate}
	want := []any{"[10.0.0.0/8 192.168.1.7/32 fd00::/8]", httpapi.Rate{PerSecond: 2.5, Burst: 200}, httpapi.Rate{PerSecond: 0, Burst: 20}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("edge settings (-want +got):\n%s", diff)
	}
}

// TestProvidersConfig reads PROVIDERS, PROVIDERS_FILE and the EXTERNAL_API_URL shorthand
// together, each provider with its own format, interval, timeout, size limit, retries
// and batch size, or the global ones.
func TestProvidersConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "providers.json")
	os.WriteFile(file, []byte(`{"providers": [
		{"name": "acme", "url": "https://acme.example/feed.json", "format": "json", "interval_seconds": 60, "timeout_seconds": 5,
		 "max_bytes": 10485760, "max_attempts": 1, "retry_seconds": 0.25, "retry_max_seconds": 2, "batch_plans": 100,
		 "headers": {"X-Api-Key": "k1", "Authorization": "Bearer t"}},
		{"name": "legacy", "url": "http://old.example/events"}
	]}`), 0o600)
	c, err := loadConfig(commandNamed(t, "ingest"), noDotenv(t), env(map[string]string{
		"DATABASE_WRITE_URL": "postgres://h/db", "BROKER_URL": "amqp://h/", "REDIS_URL": "redis://h/0",
		"EXTERNAL_API_URL": "http://fever.example/api/events", "SYNC_INTERVAL_SECONDS": "30", "API_TIMEOUT_SECONDS": "10",
		"SYNC_MAX_ATTEMPTS": "6", "SYNC_RETRY_SECONDS": "0.5",
		"PROVIDERS":      "  b:eventList=http://b.example/x\n\tc=https://c.example/y?page=1  ",
		"PROVIDERS_FILE": file,
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	const maxBytes = 4 << 30 // PROVIDER_MAX_BYTES's default
	global := func(p providerConfig) providerConfig {
		p.Interval, p.Timeout, p.MaxBytes = 30*time.Second, 10*time.Second, maxBytes
		p.MaxAttempts, p.Retry, p.RetryMax = 6, 500*time.Millisecond, 30*time.Second // SYNC_RETRY_MAX_SECONDS by default; SYNC_BATCH_PLANS unset: the broker's
		return p
	}
	want := []providerConfig{
		global(providerConfig{Name: "fever", URL: "http://fever.example/api/events", from: "EXTERNAL_API_URL"}),
		global(providerConfig{Name: "b", URL: "http://b.example/x", Format: "eventList", from: "PROVIDERS entry 1"}),
		global(providerConfig{Name: "c", URL: "https://c.example/y?page=1", from: "PROVIDERS entry 2"}),
		{Name: "acme", URL: "https://acme.example/feed.json", Format: "json", Interval: time.Minute, Timeout: 5 * time.Second, MaxBytes: 10 << 20,
			MaxAttempts: 1, Retry: 250 * time.Millisecond, RetryMax: 2 * time.Second, BatchPlans: 100,
			Headers: [][2]string{{"Authorization", "Bearer t"}, {"X-Api-Key", "k1"}}, from: "PROVIDERS_FILE entry 1"},
		global(providerConfig{Name: "legacy", URL: "http://old.example/events", from: "PROVIDERS_FILE entry 2"}),
	}
	if diff := cmp.Diff(want, c.ProviderList, cmp.AllowUnexported(providerConfig{})); diff != "" {
		t.Errorf("providers (-want +got):\n%s", diff)
	}
}

// TestProvidersFileRejects checks that the providers file's mistakes name the file and
// the entry, and never show a secret.
func TestProvidersFileRejects(t *testing.T) {
	tests := []struct {
		name, doc, wantErr string
	}{
		{"not JSON", `providers: []`, `invalid character 'p' looking for beginning of value`},
		{"no array", `{}`, `no "providers" array`},
		{"unknown field", `{"providers": [{"name": "a", "url": "http://a.example/", "intervl_seconds": 5}]}`, `json: unknown field "intervl_seconds"`},
		{"bad url", `{"providers": [{"name": "a", "url": "http://u:secret@"}]}`, `provider 1 ("a"): url: want an http:// or https:// URL with a host, got "http://u:xxxxx@"`},
		{"bad name", `{"providers": [{"name": "", "url": "http://a.example/"}]}`, `provider 1 (""): name "": want 1 to 64 letters`},
		{"bad format", `{"providers": [{"name": "a", "url": "http://a.example/", "format": "XML"}]}`, `provider 1 ("a"): format: unknown format "XML"`},
		{"bad interval", `{"providers": [{"name": "a", "url": "http://a.example/"}, {"name": "b", "url": "http://b.example/", "interval_seconds": 0}]}`, `provider 2 ("b"): interval_seconds: must be above 0 and at most a year: 0`},
		{"bad timeout", `{"providers": [{"name": "a", "url": "http://a.example/", "timeout_seconds": -1}]}`, `provider 1 ("a"): timeout_seconds: must be above 0 and at most a year: -1`},
		{"twice", `{"providers": [{"name": "a", "url": "http://a.example/"}, {"name": "a", "url": "http://b.example/"}]}`, `PROVIDERS_FILE entry 2: provider "a" is already configured by PROVIDERS_FILE entry 1`},
		{"trailing data", `{"providers": []} {}`, `data after the JSON object`},
		{"no attempt", `{"providers": [{"name": "a", "url": "http://a.example/", "max_attempts": 0}]}`, `provider 1 ("a"): max_attempts: must be a whole number from 1 to 100: 0`},
		{"fractional attempts", `{"providers": [{"name": "a", "url": "http://a.example/", "max_attempts": 1.5}]}`, `cannot unmarshal number 1.5`},
		{"bad retry", `{"providers": [{"name": "a", "url": "http://a.example/", "retry_seconds": 0}]}`, `provider 1 ("a"): retry_seconds: must be above 0 and at most a year: 0`},
		{"bad retry max", `{"providers": [{"name": "a", "url": "http://a.example/", "retry_max_seconds": -2}]}`, `provider 1 ("a"): retry_max_seconds: must be above 0 and at most a year: -2`},
		{"huge batch", `{"providers": [{"name": "a", "url": "http://a.example/", "batch_plans": 100001}]}`, `provider 1 ("a"): batch_plans: must be a whole number from 1 to 100000: 100001`},
		{"small max_bytes", `{"providers": [{"name": "a", "url": "http://a.example/", "max_bytes": 1000}]}`, `provider 1 ("a"): max_bytes: must be at least 1 MiB (1048576): 1000`},
		{"header set by boxoffice", `{"providers": [{"name": "a", "url": "http://a.example/", "headers": {"if-none-match": "secret"}}]}`, `provider 1 ("a"): header If-None-Match: set by boxoffice itself`},
		{"header with a line break", `{"providers": [{"name": "a", "url": "http://a.example/", "headers": {"X-Key": "secret\r\nX-Evil: 1"}}]}`, `provider 1 ("a"): header X-Key: the value holds a line break or a control character`},
		{"bad header name", `{"providers": [{"name": "a", "url": "http://a.example/", "headers": {"X Key": "secret"}}]}`, `provider 1 ("a"): header "X Key": not a header name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "providers.json")
			os.WriteFile(file, []byte(tt.doc), 0o600)
			_, err := loadConfig(commandNamed(t, "run"), noDotenv(t), env(map[string]string{"PROVIDERS_FILE": file}), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "PROVIDERS") {
				t.Errorf("loadConfig() = %v, want an error naming PROVIDERS_FILE and containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q leaks a password", err)
			}
		})
	}
}

// TestCursorKey: the api's instances share the cursor key, from CURSOR_SECRET or else
// derived from API_KEYS whatever their order, and it is never a key itself.
func TestCursorKey(t *testing.T) {
	keys := config{APIKeys: []string{"first-key-0123456789", "second-key-0123456789"}}
	swapped := config{APIKeys: []string{"second-key-0123456789", "first-key-0123456789"}}
	other := config{APIKeys: []string{"first-key-0123456789"}}
	secret := config{APIKeys: keys.APIKeys, CursorSecret: strings.Repeat("s", 32)}
	if k := keys.cursorKey(); k == nil || string(k) != string(swapped.cursorKey()) {
		t.Errorf("cursor keys of the same API_KEYS in another order differ")
	}
	if string(keys.cursorKey()) == string(other.cursorKey()) || strings.Contains(string(keys.cursorKey()), "key-0123456789") {
		t.Errorf("cursor key %q: want one of its own for each set of keys, none of them", keys.cursorKey())
	}
	if string(secret.cursorKey()) != secret.CursorSecret {
		t.Errorf("with CURSOR_SECRET the key is %q, want the secret", secret.cursorKey())
	}
	if (config{}).cursorKey() != nil {
		t.Errorf("without either the key is not nil: run's random key per process")
	}
}
