package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"boxoffice/redact"
)

// Client is a pool of connections to one Redis server, shared by the Locker and the
// Notifier built on it. It is safe for concurrent use.
type Client struct {
	rdb       *goredis.Client
	addr      string        // host:port, for error messages; never the credentials
	closed    chan struct{} // closed by Close, which stops the goroutines of adapters on c
	closeOnce sync.Once
}

// Open connects to the Redis server at redisURL and pings it. The URL is
// redis://[user:password@]host[:port][/db] (rediss:// for TLS), optionally with
// go-redis's query options such as ?pool_size=20&read_timeout=2s.
//
// The client disables go-redis's maintenance notifications: since 9.15 it sends a
// CLIENT MAINT_NOTIFICATIONS handshake on every connection, which Redis 7.0 rejects. It
// honours context deadlines, so a caller's timeout bounds each command. Errors never
// contain the password: they show the URL with its user information replaced by xxxxx.
// opts add instrumentation (WithTracing).
func Open(ctx context.Context, redisURL string, opts ...Option) (*Client, error) {
	opt, err := parseURL(redisURL)
	if err != nil {
		return nil, err
	}
	var o options
	for _, apply := range opts {
		apply(&o)
	}
	c := &Client{rdb: goredis.NewClient(opt), addr: opt.Addr, closed: make(chan struct{})}
	if err := o.instrument(c.rdb); err != nil {
		c.rdb.Close()
		return nil, err
	}
	if err := c.Ping(ctx); err != nil {
		c.rdb.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the client's connections. Running subscriptions then return an error
// (goredis.ErrClosed): close the client after the adapters built on it have stopped.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		if c.closed != nil {
			close(c.closed)
		}
	})
	return c.rdb.Close()
}

// Ping checks that the server answers; it is the readiness check of the Redis
// dependency.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: ping: %w", c.addr, err)
	}
	return nil
}

// parseURL turns a redis:// or rediss:// URL into client options. Its errors show the
// URL only through redact.URL.
func parseURL(raw string) (*goredis.Options, error) {
	shown := redact.URL(raw)
	if raw == "" {
		return nil, errors.New("redis url: empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// The parse error quotes the URL, password included: report the error of the
		// redacted URL instead, or, when that one parses, blame the user information.
		reason := "invalid user information"
		var ue *url.Error
		if _, rerr := url.Parse(shown); errors.As(rerr, &ue) {
			reason = ue.Err.Error()
		}
		return nil, fmt.Errorf("redis url %q: %s", shown, reason)
	}
	if (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return nil, fmt.Errorf("redis url %q: want redis:// or rediss:// and a host", shown)
	}
	opt, err := goredis.ParseURL(raw)
	if err != nil {
		// go-redis's messages name the offending path or option, never the user
		// information; drop their "redis: " prefix, which ours already says.
		return nil, fmt.Errorf("redis url %q: %s", shown, strings.TrimPrefix(err.Error(), "redis: "))
	}
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	opt.ContextTimeoutEnabled = true
	return opt, nil
}
