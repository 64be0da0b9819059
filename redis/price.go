package redis

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"boxoffice/pricing"
)

var _ pricing.Cache = (*PriceCache)(nil)

// versionBytes is the length of the version prefix of an entry's value.
const versionBytes = 8

// setVersion sets KEYS[1] to ARGV[1] unless it holds a higher number already, and
// returns 1 when it set it. A value that is not a number is replaced. Lua compares
// doubles, exact for versions up to 2^53.
var setVersion = goredis.NewScript(`
local current = tonumber(redis.call('GET', KEYS[1]))
if current ~= nil and current >= tonumber(ARGV[1]) then
	return 0
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`)

// PriceCache is the price cache shared by the API instances: the current pricing
// version under "<prefix>:price:version" (decimal, no expiry), and encoded quotes under
// "<prefix>:price:q:<key>", each value the 8-byte big-endian version it was stored for
// followed by the entry, with an expiry. An entry counts only while its version is the
// current one, so a new version invalidates every entry at once and old ones expire.
// It is safe for concurrent use.
type PriceCache struct {
	rdb     *goredis.Client
	lookups *lookups // Get's MGETs: concurrent ones share pipelines
	version string   // "<prefix>:price:version"
	entries string   // "<prefix>:price:q:"
}

// NewPriceCache returns a PriceCache on c whose keys live under "<prefix>:price:". Its
// lookups are pipelined together (see lookups) until c closes.
func NewPriceCache(c *Client, prefix string) *PriceCache {
	return &PriceCache{rdb: c.rdb, lookups: newLookups(c.rdb, c.closed), version: prefix + ":price:version", entries: prefix + ":price:q:"}
}

// Get returns the entry under key when it was stored for the current version, and the
// current version; both keys are read in one round trip (MGET). Without a version key
// (never set, or Redis lost its data) the current version is 0 and nothing is a hit. A
// value too short to hold a version is a miss.
func (c *PriceCache) Get(ctx context.Context, key string) (entry []byte, current int64, err error) {
	vals, err := c.lookups.mget(ctx, c.version, c.entries+key)
	if err != nil {
		return nil, 0, fmt.Errorf("redis price cache: get %s: %w", key, err)
	}
	if len(vals) != 2 {
		return nil, 0, fmt.Errorf("redis price cache: get %s: %d values from MGET of 2 keys", key, len(vals))
	}
	v, _ := vals[0].(string)
	if v == "" {
		return nil, 0, nil
	}
	if current, err = strconv.ParseInt(v, 10, 64); err != nil {
		return nil, 0, fmt.Errorf("redis price cache: %s: %w", c.version, err)
	}
	val, _ := vals[1].(string)
	if len(val) < versionBytes || int64(binary.BigEndian.Uint64([]byte(val[:versionBytes]))) != current {
		return nil, current, nil
	}
	return []byte(val[versionBytes:]), current, nil
}

// Set stores entry under key for version, for ttl, replacing any entry there. A ttl
// under a millisecond is an error: Redis would keep the key forever.
func (c *PriceCache) Set(ctx context.Context, key string, version int64, entry []byte, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("redis price cache: set %s: ttl %v is under a millisecond", key, ttl)
	}
	val := make([]byte, versionBytes, versionBytes+len(entry))
	binary.BigEndian.PutUint64(val, uint64(version))
	val = append(val, entry...)
	if err := c.rdb.Set(ctx, c.entries+key, val, ttl).Err(); err != nil {
		return fmt.Errorf("redis price cache: set %s: %w", key, err)
	}
	return nil
}

// SetVersion makes version current unless a higher one already is, atomically (a Lua
// script). Versions up to 0 change nothing: 0 is what a cache without a version has.
func (c *PriceCache) SetVersion(ctx context.Context, version int64) error {
	if version <= 0 {
		return nil
	}
	if err := setVersion.Run(ctx, c.rdb, []string{c.version}, version).Err(); err != nil {
		return fmt.Errorf("redis price cache: set version %d: %w", version, err)
	}
	return nil
}
