package redis

import (
	"context"
	"crypto/rand"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9/maintnotifications"

	"boxoffice/testenv"
)

// open returns a Client on the test Redis, closed when the test ends.
func open(t *testing.T) *Client {
	t.Helper()
	return openURL(t, testenv.RedisURL(t))
}

// openURL returns a Client on redisURL, closed when the test ends.
func openURL(t *testing.T, redisURL string) *Client {
	t.Helper()
	c, err := Open(t.Context(), redisURL)
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newPrefix returns a key prefix no other test uses and deletes its keys when the test
// ends.
func newPrefix(t *testing.T, c *Client) string {
	t.Helper()
	prefix := "boxoffice-test:" + rand.Text()
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.rdb.Scan(ctx, 0, prefix+":*", 100).Iterator()
		for iter.Next(ctx) {
			c.rdb.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("delete keys under %s: %v", prefix, err)
		}
	})
	return prefix
}

// withQuery returns redisURL with the query parameter key set to value.
func withQuery(t *testing.T, redisURL, key, value string) string {
	t.Helper()
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestOpenRejectsBadURLs(t *testing.T) {
	// Every password contains "cret", which no message may show.
	tests := []struct {
		name string
		give string
		want string
	}{
		{"empty", "", "redis url: empty"},
		{"other scheme", "http://:secret@127.0.0.1:6379", `redis url "http://:xxxxx@127.0.0.1:6379": want redis:// or rediss://`},
		{"no host", "redis://", "want redis:// or rediss:// and a host"},
		{"opaque", "redis:secret@127.0.0.1:6379", `redis url "redis:xxxxx@127.0.0.1:6379": want redis://`},
		{"bad escape in password", "redis://:se%zzcret@127.0.0.1:6379/0", `redis url "redis://:xxxxx@127.0.0.1:6379/0": invalid user information`},
		{"slash in password", "redis://user:se/cret@127.0.0.1:6379/0", `redis url "redis://user:xxxxx@127.0.0.1:6379/0": invalid user information`},
		{"at sign in password", "redis://user:se@cret@127.0.0.1:x/0", `redis url "redis://user:xxxxx@127.0.0.1:x/0": invalid port ":x" after host`},
		{"bad database", "redis://:secret@127.0.0.1:6379/zero", `redis url "redis://:xxxxx@127.0.0.1:6379/zero": invalid database number: "zero"`},
		{"unknown option", "redis://:secret@127.0.0.1:6379/0?colour=blue", "unexpected option: colour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Open(t.Context(), tt.give)
			if err == nil {
				c.Close()
				t.Fatalf("Open(%q) = nil error, want %q", tt.give, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open(%q) = %q, want it to contain %q", tt.give, err, tt.want)
			}
			if strings.Contains(err.Error(), "cret") {
				t.Errorf("Open(%q) = %q, which shows the password", tt.give, err)
			}
		})
	}
}

func TestParseURLDisablesMaintNotifications(t *testing.T) {
	opt, err := parseURL("redis://:secret@127.0.0.1:6379/3?pool_size=7")
	if err != nil {
		t.Fatal(err)
	}
	if opt.MaintNotificationsConfig == nil || opt.MaintNotificationsConfig.Mode != maintnotifications.ModeDisabled {
		t.Errorf("MaintNotificationsConfig = %+v, want mode %q", opt.MaintNotificationsConfig, maintnotifications.ModeDisabled)
	}
	if opt.Addr != "127.0.0.1:6379" || opt.Password != "secret" || opt.DB != 3 || opt.PoolSize != 7 || !opt.ContextTimeoutEnabled {
		t.Errorf("options = addr %q password %q db %d pool %d context timeouts %v, want 127.0.0.1:6379 secret 3 7 true",
			opt.Addr, opt.Password, opt.DB, opt.PoolSize, opt.ContextTimeoutEnabled)
	}
}

func TestOpenReportsUnreachableServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	c, err := Open(t.Context(), "redis://:secret@"+addr+"/0")
	if err == nil {
		c.Close()
		t.Fatalf("Open(%s) = nil error, want a refused connection", addr)
	}
	if want := "redis " + addr + ": ping: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Open() = %q, want it to start with %q", err, want)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("Open() = %q, which shows the password", err)
	}
}

func TestOpenPingsAndCloses(t *testing.T) {
	c, err := Open(t.Context(), testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(t.Context()); err != nil {
		t.Errorf("Ping() = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := c.Ping(t.Context()); err == nil {
		t.Error("Ping() after Close() = nil, want an error")
	}
}
