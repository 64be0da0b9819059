// Package testenv finds the real services that integration tests talk to: PostgreSQL
// (primary and streaming replica), Redis and RabbitMQ on their loopback defaults, or
// where the TEST_* variables say. A service that does not answer skips the test, unless
// CI=true, where it fails it: CI must exercise the real services. `make services`
// (scripts/services.sh) starts them all.
package testenv

import (
	"net"
	"net/url"
	"os"
	"testing"
	"time"
)

// The services' addresses, and the variables that override them.
const (
	DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/boxoffice?sslmode=disable"
	DefaultReplicaURL  = "postgres://postgres@127.0.0.1:5433/boxoffice?sslmode=disable"
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
	DefaultBrokerURL   = "amqp://guest:guest@127.0.0.1:5672/"
)

// PostgresURL returns the primary's URL (TEST_DATABASE_WRITE_URL), or skips.
func PostgresURL(t testing.TB) string {
	return need(t, "PostgreSQL primary", "TEST_DATABASE_WRITE_URL", DefaultPostgresURL)
}

// ReplicaURL returns the streaming replica's URL (TEST_DATABASE_READ_URL), or skips.
func ReplicaURL(t testing.TB) string {
	return need(t, "PostgreSQL replica", "TEST_DATABASE_READ_URL", DefaultReplicaURL)
}

// RedisURL returns Redis's URL (TEST_REDIS_URL), or skips.
func RedisURL(t testing.TB) string { return need(t, "Redis", "TEST_REDIS_URL", DefaultRedisURL) }

// BrokerURL returns RabbitMQ's URL (TEST_BROKER_URL), or skips.
func BrokerURL(t testing.TB) string { return need(t, "RabbitMQ", "TEST_BROKER_URL", DefaultBrokerURL) }

// CI reports whether the tests run in CI, where absent services are failures.
func CI() bool { return os.Getenv("CI") == "true" }

func need(t testing.TB, name, variable, def string) string {
	t.Helper()
	raw := os.Getenv(variable)
	if raw == "" {
		raw = def
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Fatalf("%s: not a URL with a host: %q", variable, raw)
	}
	c, err := net.DialTimeout("tcp", u.Host, time.Second)
	switch {
	case err == nil:
		c.Close()
	case CI():
		t.Fatalf("%s is required when CI=true: %v (start it with `make services`)", name, err)
	default:
		t.Skipf("%s not reachable at %s (%v); start it with `make services` or set %s", name, u.Host, err, variable)
	}
	return raw
}
