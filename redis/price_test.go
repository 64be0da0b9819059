package redis

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"boxoffice/pricing/pricingtest"
	"boxoffice/testenv"
)

func TestPriceCache(t *testing.T) {
	t.Parallel()
	c := open(t)
	pricingtest.TestCache(t, NewPriceCache(c, newPrefix(t, c)), nil) // Redis expires keys on its own clock
}

func TestPriceCacheKeys(t *testing.T) {
	t.Parallel()
	c := open(t)
	prefix := newPrefix(t, c)
	pc := NewPriceCache(c, prefix)
	ctx := t.Context()
	if err := pc.SetVersion(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if err := pc.Set(ctx, "p|-|madrid", 7, []byte(`{"price":1}`), time.Minute); err != nil {
		t.Fatal(err)
	}

	if v, err := c.rdb.Get(ctx, prefix+":price:version").Result(); err != nil || v != "7" {
		t.Errorf("GET %s:price:version = %q, %v, want \"7\"", prefix, v, err)
	}
	if ttl, err := c.rdb.PTTL(ctx, prefix+":price:version").Result(); err != nil || ttl != -1 {
		t.Errorf("PTTL %s:price:version = %v, %v, want no expiry (-1)", prefix, ttl, err)
	}
	key := prefix + ":price:q:p|-|madrid"
	val, err := c.rdb.Get(ctx, key).Bytes()
	if err != nil {
		t.Fatalf("GET %s = %v", key, err)
	}
	want := binary.BigEndian.AppendUint64(nil, 7)
	want = append(want, `{"price":1}`...)
	if !bytes.Equal(val, want) {
		t.Errorf("GET %s = %q, want %q", key, val, want)
	}
	if ttl, err := c.rdb.PTTL(ctx, key).Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL %s = %v, %v, want within a minute", key, ttl, err)
	}
}

// countHook counts the commands and pipelines a client sends.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *countHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

func TestPriceCacheGetIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	c := open(t) // a client of its own: the hook counts every command on it
	prefix := newPrefix(t, c)
	pc := NewPriceCache(c, prefix)
	ctx := t.Context()
	if err := pc.SetVersion(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := pc.Set(ctx, "k", 3, []byte("quote"), time.Minute); err != nil {
		t.Fatal(err)
	}
	// The first lookup opens the connection the lookups are pipelined on (HELLO,
	// CLIENT SETINFO): once per connection, not per Get.
	if _, _, err := pc.Get(ctx, "warm-up"); err != nil {
		t.Fatal(err)
	}
	var h countHook
	c.rdb.AddHook(&h)
	for _, key := range []string{"k", "missing"} {
		before := h.n.Load()
		if _, _, err := pc.Get(ctx, key); err != nil {
			t.Fatal(err)
		}
		if n := h.n.Load() - before; n != 1 {
			t.Errorf("Get(%q) sent %d commands, want 1", key, n)
		}
	}
}

func TestPriceCacheWithoutAVersionKeyHasNoHits(t *testing.T) {
	t.Parallel()
	c := open(t)
	prefix := newPrefix(t, c)
	pc := NewPriceCache(c, prefix)
	ctx := t.Context()
	if err := pc.SetVersion(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if err := pc.Set(ctx, "k", 4, []byte("quote"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, cur, err := pc.Get(ctx, "k"); err != nil || string(got) != "quote" || cur != 4 {
		t.Fatalf("Get() = %q, %d, %v, want \"quote\", 4, nil", got, cur, err)
	}
	// Redis lost the version (flushed, or restarted without persistence) but not the
	// entry: the entry may be older than what the store has published since.
	if err := c.rdb.Del(ctx, prefix+":price:version").Err(); err != nil {
		t.Fatal(err)
	}
	if got, cur, err := pc.Get(ctx, "k"); err != nil || got != nil || cur != 0 {
		t.Errorf("Get() without a version key = %q, %d, %v, want nil, 0, nil", got, cur, err)
	}
	if err := pc.SetVersion(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if got, cur, err := pc.Get(ctx, "k"); err != nil || string(got) != "quote" || cur != 4 {
		t.Errorf("Get() after SetVersion(4) again = %q, %d, %v, want \"quote\", 4, nil", got, cur, err)
	}
}

func TestPriceCacheMalformedValues(t *testing.T) {
	t.Parallel()
	c := open(t)
	prefix := newPrefix(t, c)
	pc := NewPriceCache(c, prefix)
	ctx := t.Context()
	if err := pc.SetVersion(ctx, 5); err != nil {
		t.Fatal(err)
	}
	// An entry too short to hold a version is a miss, and Set replaces it.
	if err := c.rdb.Set(ctx, prefix+":price:q:short", "abc", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if got, cur, err := pc.Get(ctx, "short"); err != nil || got != nil || cur != 5 {
		t.Errorf("Get() of a 3-byte value = %q, %d, %v, want nil, 5, nil", got, cur, err)
	}

	// A version key that is not a number is an error, and SetVersion replaces it.
	if err := c.rdb.Set(ctx, prefix+":price:version", "five", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, cur, err := pc.Get(ctx, "short"); err == nil || !strings.Contains(err.Error(), "redis price cache") {
		t.Errorf("Get() with version \"five\" = %q, %d, %v, want an error", got, cur, err)
	}
	if err := pc.SetVersion(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if _, cur, err := pc.Get(ctx, "short"); err != nil || cur != 6 {
		t.Errorf("Get() after SetVersion(6) = %d, %v, want 6, nil", cur, err)
	}
}

func TestPriceCacheRejectsTTLsBelowAMillisecond(t *testing.T) {
	t.Parallel()
	c := open(t)
	prefix := newPrefix(t, c)
	pc := NewPriceCache(c, prefix)
	for _, ttl := range []time.Duration{0, -time.Second, time.Microsecond} {
		if err := pc.Set(t.Context(), "k", 1, []byte("v"), ttl); err == nil {
			t.Errorf("Set() with ttl %v succeeded; Redis would keep the key forever", ttl)
		}
	}
	if n, err := c.rdb.Exists(t.Context(), prefix+":price:q:k").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS after rejected Sets = %d, %v, want 0", n, err)
	}
}

func TestPriceCacheFailsWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	opt, err := parseURL("redis://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{rdb: goredis.NewClient(opt), addr: addr}
	t.Cleanup(func() { c.Close() })
	pc := NewPriceCache(c, "boxoffice-test-down")
	ctx := t.Context()

	if got, cur, err := pc.Get(ctx, "k"); err == nil || !strings.HasPrefix(err.Error(), "redis price cache: get k: ") || got != nil || cur != 0 {
		t.Errorf("Get() = %q, %d, %v, want nil, 0 and an error", got, cur, err)
	}
	if err := pc.Set(ctx, "k", 1, []byte("v"), time.Minute); err == nil || !strings.HasPrefix(err.Error(), "redis price cache: set k: ") {
		t.Errorf("Set() = %v, want an error", err)
	}
	if err := pc.SetVersion(ctx, 1); err == nil || !strings.HasPrefix(err.Error(), "redis price cache: set version 1: ") {
		t.Errorf("SetVersion() = %v, want an error", err)
	}
}

// TestPriceCacheConcurrentLookupsGetTheirOwnEntries runs many lookups at once, so they
// share pipelined round trips: each must get its own key's entry, hit or miss.
func TestPriceCacheConcurrentLookupsGetTheirOwnEntries(t *testing.T) {
	t.Parallel()
	c := open(t)
	pc := NewPriceCache(c, newPrefix(t, c))
	ctx := t.Context()
	if err := pc.SetVersion(ctx, 7); err != nil {
		t.Fatal(err)
	}
	const keys = 40
	for i := range keys {
		if i%4 == 3 {
			continue // every fourth key has no entry: a miss in the same batches
		}
		if err := pc.Set(ctx, fmt.Sprint("k", i), 7, fmt.Append(nil, "entry ", i), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, keys*10)
	for g := range keys {
		wg.Go(func() {
			for r := range 10 {
				i := (g + r) % keys
				got, cur, err := pc.Get(ctx, fmt.Sprint("k", i))
				var want []byte
				if i%4 != 3 {
					want = fmt.Append(nil, "entry ", i)
				}
				if err != nil || cur != 7 || !bytes.Equal(got, want) {
					errs <- fmt.Errorf("Get(k%d) = %q, %d, %v, want %q, 7, nil", i, got, cur, err, want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestPriceCacheLookupsEndWhenRedisHangs freezes the network path to Redis: lookups,
// pipelined together, must each end with an error at their own deadline, and once the
// path is back the lookups must work again on new connections.
func TestPriceCacheLookupsEndWhenRedisHangs(t *testing.T) {
	t.Parallel()
	px, c := proxied(t)
	pc := NewPriceCache(c, newPrefix(t, c))
	ctx := t.Context()
	if err := pc.SetVersion(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := pc.Set(ctx, "k", 2, []byte("quote"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, _, err := pc.Get(ctx, "k"); err != nil || string(got) != "quote" {
		t.Fatalf("Get(k) before the freeze = %q, %v, want quote", got, err)
	}

	px.freeze()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			lookupCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			_, _, errs[i] = pc.Get(lookupCtx, "k")
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("lookups still waiting on a frozen Redis 20 s after their deadline")
	}
	for i, err := range errs {
		if err == nil {
			t.Errorf("lookup %d on a frozen Redis = nil error, want one", i)
		}
	}

	px.restore() // frozen connections stay frozen: recovery needs new ones
	testenv.Poll(t, "a lookup to work again after the freeze", func() bool {
		lookupCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		got, _, err := pc.Get(lookupCtx, "k")
		return err == nil && string(got) == "quote"
	})
}

// TestPriceCacheGetAfterCloseFails closes the client: a lookup without a deadline must
// fail at once instead of waiting for a pipeline that will never be sent.
func TestPriceCacheGetAfterCloseFails(t *testing.T) {
	t.Parallel()
	c, err := Open(t.Context(), testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	pc := NewPriceCache(c, "boxoffice-test-closed")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, _, err := pc.Get(context.Background(), "k")
		errc <- err
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, goredis.ErrClosed) {
			t.Errorf("Get() after Close = %v, want %v", err, goredis.ErrClosed)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Get() after Close still waiting after 20 s")
	}
}
