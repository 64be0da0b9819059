package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// noDotenv points the config at a .env file that does not exist.
func noDotenv(t *testing.T) []string {
	return []string{"--env-file", filepath.Join(t.TempDir(), "absent.env")}
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig("run", noDotenv(t), env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8000" || c.DataDir != "./data" || c.SyncInterval != 300*time.Second ||
		c.APITimeout != 30*time.Second || c.CacheTTL != 300*time.Second || c.L1CacheMaxBytes != 64<<20 || c.ProviderName != "fever" || c.ExternalAPIURL != "" {
		t.Errorf("defaults = %+v", c)
	}
}

func TestLoadConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	dotenv := filepath.Join(dir, ".env")
	os.WriteFile(dotenv, []byte("SYNC_INTERVAL_SECONDS=10\nAPI_TIMEOUT_SECONDS=5\nDATA_DIR=/from/dotenv\n"), 0o600)
	c, err := loadConfig("run", []string{"--env-file", dotenv, "--data-dir", "/from/flag"},
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
		{"log level", map[string]string{"LOG_LEVEL": "loud"}, nil, "LOG_LEVEL"},
		{"L1 budget in MiB", map[string]string{"L1_CACHE_MAX_BYTES": "64MiB"}, nil, `L1_CACHE_MAX_BYTES: not a whole number of bytes: "64MiB"`},
		{"L1 budget too small", map[string]string{"L1_CACHE_MAX_BYTES": "1000"}, nil, "L1_CACHE_MAX_BYTES: must be at least 1 MiB"},
		{"provider document in GiB", map[string]string{"PROVIDER_MAX_BYTES": "4GiB"}, nil, `PROVIDER_MAX_BYTES: not a whole number of bytes: "4GiB"`},
		{"provider document too small", map[string]string{"PROVIDER_MAX_BYTES": "1000"}, nil, "PROVIDER_MAX_BYTES: must be at least 1 MiB"},
		{"flag names itself", nil, []string{"--sync-interval-seconds", "x"}, `--sync-interval-seconds: not a number: "x"`},
		{"read without write", map[string]string{"DATABASE_READ_URL": "postgres://h/db"}, nil, "DATABASE_READ_URL: set without DATABASE_WRITE_URL"},
		{"stray argument", nil, []string{"extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig("run", append(noDotenv(t), tt.args...), env(tt.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("loadConfig() = %v, want an error containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q leaks a password", err)
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
