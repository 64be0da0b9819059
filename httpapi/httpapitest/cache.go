// Package httpapitest holds the contract suite of the httpapi ports that adapters
// implement: TestCache, for the second response cache tier (Cache). It does
// not import httpapi, so that adapters' tests run it without depending on the HTTP
// layer (adapters never import each other).
package httpapitest

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// Cache is httpapi.Cache, the port under test: the same method set.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
}

// TestCache runs the httpapi.Cache contract against an adapter. open returns a cache
// whose keys no other test uses (for example under a unique prefix), cleaned up by
// t.Cleanup; sub-tests run in parallel.
//
// Besides what httpapi.Cache documents, the suite holds adapters to these decisions:
//
//   - values come back byte for byte, an empty one too;
//   - Set replaces a value; keys are told apart by every byte;
//   - a ttl that is not positive is an error, never an entry kept for ever;
//   - Get and Set with a context already done return an error.
func TestCache(t *testing.T, open func(t *testing.T) Cache) {
	run := func(name string, test func(t *testing.T, c Cache)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open(t))
		})
	}
	run("GetSet", testGetSet)
	run("Replace", testReplace)
	run("KeysApart", testKeysApart)
	run("TTLNotPositive", testTTLNotPositive)
	run("CanceledContext", testCanceled)
}

func testGetSet(t *testing.T, c Cache) {
	if val, ok, err := c.Get(t.Context(), "7:a:b"); err != nil || ok || val != nil {
		t.Fatalf("Get() of a missing key = %q, %v, %v, want nil, false, nil", val, ok, err)
	}
	for key, want := range map[string][]byte{
		"7:a:b":   []byte(`{"data":{"events":[]},"error":null}`),
		"7:c:d":   {0, 1, 0xff, '\n', 0x1f, 0x8b}, // bytes pass as they are (a gzip header)
		"7:empty": {},
	} {
		set(t, c, key, want, time.Minute)
		wantValue(t, c, key, want)
	}
}

func testReplace(t *testing.T, c Cache) {
	set(t, c, "k", []byte("first"), time.Minute)
	set(t, c, "k", []byte("second"), time.Minute)
	wantValue(t, c, "k", []byte("second"))
}

func testKeysApart(t *testing.T, c Cache) {
	keys := []string{"8:1:2", "8:1:20", "8:1:2 ", "9:1:2", "8:1:2\x00", "8:1:ñ"}
	for i, k := range keys {
		set(t, c, k, []byte{byte(i)}, time.Minute)
	}
	for i, k := range keys {
		wantValue(t, c, k, []byte{byte(i)})
	}
}

func testTTLNotPositive(t *testing.T, c Cache) {
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := c.Set(t.Context(), "ttl", []byte("v"), ttl); err == nil {
			t.Errorf("Set() with ttl %v = nil, want an error", ttl)
		}
	}
	if val, ok, err := c.Get(t.Context(), "ttl"); err != nil || ok {
		t.Errorf("Get() after refused Sets = %q, %v, %v; want no value", val, ok, err)
	}
}

func testCanceled(t *testing.T, c Cache) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Set(ctx, "k", []byte("v"), time.Minute); err == nil {
		t.Error("Set() with a canceled context = nil, want its error")
	}
	if _, ok, err := c.Get(ctx, "k"); err == nil || ok {
		t.Errorf("Get() with a canceled context = %v, %v; want its error", ok, err)
	}
}

func set(t *testing.T, c Cache, key string, val []byte, ttl time.Duration) {
	t.Helper()
	if err := c.Set(t.Context(), key, val, ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func wantValue(t *testing.T, c Cache, key string, want []byte) {
	t.Helper()
	got, ok, err := c.Get(t.Context(), key)
	if err != nil || !ok || !bytes.Equal(got, want) {
		t.Errorf("Get(%q) = %q, %v, %v; want %q, true, nil", key, got, ok, err, want)
	}
}
