package memory

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"boxoffice/clock"
	"boxoffice/pricing"
)

var (
	_ pricing.Cache = (*PriceCache)(nil)
	_ pricing.Bus   = (*Bus)(nil)
)

// PriceCache is the in-process price cache of the embedded mode: at most maxEntries
// encoded quotes, each with its own expiry and the pricing version it was stored for,
// and the current version. An entry counts only while its version is the current one,
// so a new version invalidates every entry at once. It is safe for concurrent use.
type PriceCache struct {
	entries *otter.Cache[string, priceEntry]
	current atomic.Int64 // only grows
}

// priceEntry is a cached quote and what it was stored for.
type priceEntry struct {
	version int64
	data    []byte // a copy of the caller's entry; never modified
	ttl     time.Duration
}

// NewPriceCache returns an empty PriceCache, at version 0, that keeps up to maxEntries
// entries, evicting the least likely to be asked for again beyond that; entries expire
// on c (nil is clock.System). It panics when maxEntries is not positive.
func NewPriceCache(maxEntries int, c clock.Clock) *PriceCache {
	if maxEntries <= 0 {
		panic(fmt.Sprintf("memory: NewPriceCache(%d): want a positive number of entries", maxEntries))
	}
	opts := &otter.Options[string, priceEntry]{
		MaximumSize: maxEntries,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, priceEntry]) time.Duration {
			return e.Value.ttl
		}),
	}
	if c != nil {
		if _, system := c.(clock.System); !system { // otter's own source is the system clock, and faster
			opts.Clock = otterClock{c}
		}
	}
	return &PriceCache{entries: otter.Must(opts)}
}

// otterClock is a clock.Clock as otter's time source. Tick paces only otter's
// clean-up of expired entries, which a Get never depends on: it stays on the system
// clock, so that a manual clock counts only the waiters of the code under test.
type otterClock struct{ c clock.Clock }

func (o otterClock) NowNano() int64                      { return o.c.Now().UnixNano() }
func (otterClock) Tick(d time.Duration) <-chan time.Time { return time.Tick(d) }

// Get returns a copy of the entry under key when it was stored for the current
// version, and the current version. At version 0 nothing is a hit.
func (c *PriceCache) Get(ctx context.Context, key string) (entry []byte, current int64, err error) {
	current = c.current.Load()
	if current == 0 {
		return nil, 0, nil
	}
	e, ok := c.entries.GetIfPresent(key)
	if !ok || e.version != current {
		return nil, current, nil
	}
	return bytes.Clone(e.data), current, nil
}

// Set stores a copy of entry under key for version, for ttl, replacing any entry there.
// A ttl that is not positive is an error, as it would be in Redis.
func (c *PriceCache) Set(ctx context.Context, key string, version int64, entry []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory price cache: set %s: ttl %v is not positive", key, ttl)
	}
	c.entries.Set(key, priceEntry{version: version, data: bytes.Clone(entry), ttl: ttl})
	return nil
}

// SetVersion makes version current unless a higher one already is.
func (c *PriceCache) SetVersion(ctx context.Context, version int64) error {
	for {
		cur := c.current.Load()
		if version <= cur || c.current.CompareAndSwap(cur, version) {
			return nil
		}
	}
}

// busBuffer is how many payloads a Bus subscriber may fall behind before the Bus drops
// the newest ones for it.
const busBuffer = 256

// Bus is the in-process market event bus of the embedded mode: Publish hands a copy of
// each payload to every subscription open at the time, in order. It never blocks on a
// slow subscriber: each subscription buffers up to busBuffer payloads, and a payload
// that finds the buffer full is dropped for that subscription and counted (Dropped).
// That is safe because a payload only wakes the listener: the store keeps the events,
// and the listener polls it. A Bus is safe for concurrent use.
type Bus struct {
	dropped atomic.Int64

	mu   sync.Mutex // guards subs, and orders Publish calls
	subs map[chan []byte]struct{}
}

// NewBus returns a Bus without subscriptions.
func NewBus() *Bus { return &Bus{subs: map[chan []byte]struct{}{}} }

// Publish hands payload to every open subscription without waiting for any of them. It
// returns ctx's error when ctx is done, and nil otherwise, also when a subscription
// dropped payload.
func (b *Bus) Publish(ctx context.Context, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- bytes.Clone(payload):
		default:
			b.dropped.Add(1)
		}
	}
	return nil
}

// Subscribe calls f with each payload published from its start on, in order, on the
// calling goroutine, until ctx is done; it returns nil then, and the payloads still
// buffered are discarded.
func (b *Bus) Subscribe(ctx context.Context, f func(payload []byte)) error {
	ch := make(chan []byte, busBuffer)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-ch:
			f(p)
		}
	}
}

// Dropped returns how many payloads subscriptions have missed because their buffer was
// full.
func (b *Bus) Dropped() int64 { return b.dropped.Load() }
