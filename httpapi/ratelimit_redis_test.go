package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"boxoffice/catalog"
	"boxoffice/redis"
	"boxoffice/testenv"
)

// redisRates returns shared rate limits on the test's Redis under a namespace of the
// test's own, whose keys are deleted when it ends, and the client, which the test may
// close early.
func redisRates(t *testing.T) (*redis.Rates, *redis.Client) {
	t.Helper()
	url := testenv.RedisURL(t)
	c, err := redis.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ns := fmt.Sprintf("t%016x", rand.Uint64())
	t.Cleanup(func() {
		opt, err := goredis.ParseURL(url)
		if err != nil {
			return
		}
		rc := goredis.NewClient(opt)
		defer rc.Close()
		ctx := context.Background()
		iter := rc.Scan(ctx, 0, "rate:"+ns+":*", 100).Iterator()
		for iter.Next(ctx) {
			rc.Del(ctx, iter.Val())
		}
	})
	return redis.NewRates(c, ns), c
}

// runAPI returns an API over an empty catalog with cfg, running until the test ends.
func runAPI(t *testing.T, cfg Config) *Handler {
	t.Helper()
	h := New(fixedCatalog{ix: catalog.NewIndex(1, nil, EncodeEvent)}, slog.New(slog.DiscardHandler), cfg)
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	wg.Go(func() { h.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return h
}

// TestRedisSharesRateLimits runs two instances on one Redis: a client that spent its
// budget on one is refused by the other once that one has reported.
func TestRedisSharesRateLimits(t *testing.T) {
	rates, _ := redisRates(t)
	cfg := Config{SharedRates: rates, RateLimits: RateLimits{Search: Rate{PerSecond: 0.01, Burst: 5}}}
	a, b := runAPI(t, cfg), runAPI(t, cfg)
	const client = "192.0.2.1:1"
	checkSharedBudget(t, a, b, client, 5)
	// a learns of b's request too.
	getFrom(a, "/search", "192.0.2.2:1") // any admitted request keeps a reporting
	syncOnce(t, a)
	if rec := getFrom(a, "/search", client); rec.Code != http.StatusTooManyRequests {
		t.Errorf("request to a = %d, want 429", rec.Code)
	}
}

// TestRedisDownKeepsServing closes the Redis client under a running instance: requests
// go on being served within the instance's own limits, never failed.
func TestRedisDownKeepsServing(t *testing.T) {
	rates, client := redisRates(t)
	h := runAPI(t, Config{SharedRates: rates, RateLimits: RateLimits{Search: Rate{PerSecond: 0.01, Burst: 3}}})
	if rec := getFrom(h, "/search", "192.0.2.1:1"); rec.Code != http.StatusOK {
		t.Fatalf("with Redis up = %d, want 200", rec.Code)
	}
	syncOnce(t, h)
	client.Close()
	for i := range 2 {
		if rec := getFrom(h, "/search", "192.0.2.1:1"); rec.Code != http.StatusOK {
			t.Fatalf("request %d with Redis down = %d, want 200", i+2, rec.Code)
		}
		syncOnce(t, h)
	}
	if rec := getFrom(h, "/search", "192.0.2.1:1"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("over the local budget with Redis down = %d, want 429", rec.Code)
	}
	for i := range 20 {
		if rec := getFrom(h, "/search", fmt.Sprintf("198.51.100.%d:1", i)); rec.Code != http.StatusOK {
			t.Errorf("new client %d with Redis down = %d, want 200", i, rec.Code)
		}
	}
}
