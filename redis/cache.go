package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// searchKeys is the part of a cached search's key after the prefix.
const searchKeys = "search:"

// Cache is the shared response cache of the API instances (their second tier): opaque
// values under the keys "<prefix>:search:<key>", each with an expiry. It is safe for
// concurrent use.
type Cache struct {
	rdb    *goredis.Client
	prefix string // "<prefix>:search:"
}

// NewCache returns a Cache on c whose keys live under "<prefix>:search:".
func NewCache(c *Client, prefix string) *Cache {
	return &Cache{rdb: c.rdb, prefix: prefix + ":" + searchKeys}
}

// Get returns the value stored under key, and false when there is none (never stored,
// or expired). Errors are Redis's own (a refused connection, ctx's deadline); callers
// treat them as a miss.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	val, err := c.rdb.Get(ctx, c.prefix+key).Bytes()
	switch {
	case errors.Is(err, goredis.Nil):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("redis cache get %s%s: %w", c.prefix, key, err)
	}
	return val, true, nil
}

// Set stores val under key for ttl, replacing any value there. A ttl under a
// millisecond is an error: Redis would keep the key forever.
func (c *Cache) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("redis cache set %s%s: ttl %v is under a millisecond", c.prefix, key, ttl)
	}
	if err := c.rdb.Set(ctx, c.prefix+key, val, ttl).Err(); err != nil {
		return fmt.Errorf("redis cache set %s%s: %w", c.prefix, key, err)
	}
	return nil
}
