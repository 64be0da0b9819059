package redis

import (
	"bytes"
	"context"
	"testing"
	"time"

	"boxoffice/httpapi/httpapitest"
)

// TestCache runs the httpapi.Cache contract, each sub-test under a prefix of its own.
func TestCache(t *testing.T) {
	httpapitest.TestCache(t, func(t *testing.T) httpapitest.Cache {
		c := open(t)
		return NewCache(c, newPrefix(t, c))
	})
}

// TestCacheGetSet checks the keys and expiries the cache keeps in Redis.
func TestCacheGetSet(t *testing.T) {
	t.Parallel()
	c := open(t)
	prefix := newPrefix(t, c)
	cache := NewCache(c, prefix)
	ctx := t.Context()

	if val, ok, err := cache.Get(ctx, "7:a:b"); err != nil || ok || val != nil {
		t.Fatalf("Get() of a missing key = %q, %v, %v, want nil, false, nil", val, ok, err)
	}
	want := []byte(`{"data":{"events":[]},"error":null}`)
	if err := cache.Set(ctx, "7:a:b", want, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, ok, err := cache.Get(ctx, "7:a:b")
	if err != nil || !ok || !bytes.Equal(got, want) {
		t.Fatalf("Get() = %q, %v, %v, want %q, true, nil", got, ok, err, want)
	}
	key := prefix + ":search:7:a:b"
	if ttl, err := c.rdb.PTTL(ctx, key).Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL %s = %v, %v, want within a minute", key, ttl, err)
	}
	if err := cache.Set(ctx, "7:a:b", want, 0); err == nil {
		t.Error("Set() with a zero ttl succeeded; Redis would keep the key forever")
	}
}

func TestCacheFailsFastWhenRedisIsGone(t *testing.T) {
	t.Parallel()
	p, c := proxied(t)
	cache := NewCache(c, "boxoffice-test-gone")
	p.cut()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, ok, err := cache.Get(ctx, "k"); err == nil || ok {
		t.Errorf("Get() through a cut connection = %v, %v, want an error", ok, err)
	}
	if err := cache.Set(ctx, "k", []byte("v"), time.Minute); err == nil {
		t.Error("Set() through a cut connection succeeded")
	}
}
