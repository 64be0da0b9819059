package pricingtest

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"boxoffice/pricing"
	"boxoffice/testenv"
)

// TestCache runs the pricing.Cache contract against c, which must be new: empty, at
// version 0, and used by nothing else while the test runs. The steps run in order on
// the one cache, since a version, once current, stays so. elapse makes time pass for c:
// the Advance of the manual clock an in-process cache expires on; nil for a service on
// real time, whose expiry the suite polls for.
//
// Besides what pricing.Cache documents, the suite holds adapters to these decisions:
//
//   - At version 0 (a cache that never saw SetVersion, or lost it) nothing is a hit.
//   - An entry stored ahead of the current version counts once its version is current;
//     one stored for an older version never does.
//   - Set and Get copy: changing the bytes passed to Set, or returned by Get, changes
//     no entry.
//   - Set replaces the entry and its ttl.
func TestCache(t *testing.T, c pricing.Cache, elapse func(time.Duration)) {
	ctx := t.Context()
	const ttl = time.Minute

	// want checks that Get(key) returns entry (nil: a miss) and current.
	want := func(step, key string, entry []byte, current int64) {
		t.Helper()
		got, cur, err := c.Get(ctx, key)
		if err != nil {
			t.Fatalf("%s: Get(%q) = %v", step, key, err)
		}
		if (got == nil) != (entry == nil) || !bytes.Equal(got, entry) || cur != current {
			t.Errorf("%s: Get(%q) = %q, %d, want %q, %d", step, key, got, cur, entry, current)
		}
	}
	set := func(key string, version int64, entry []byte, ttl time.Duration) {
		t.Helper()
		if err := c.Set(ctx, key, version, entry, ttl); err != nil {
			t.Fatalf("Set(%q, %d, %q, %v) = %v", key, version, entry, ttl, err)
		}
	}
	setVersion := func(version int64) {
		t.Helper()
		if err := c.SetVersion(ctx, version); err != nil {
			t.Fatalf("SetVersion(%d) = %v", version, err)
		}
	}

	want("new cache", "a", nil, 0)
	set("a", 1, []byte("a at 1"), ttl)
	want("no version yet", "a", nil, 0)
	setVersion(0)
	want("after SetVersion(0)", "a", nil, 0)

	setVersion(1)
	want("version 1", "a", []byte("a at 1"), 1)
	want("version 1", "missing", nil, 1)

	buf := []byte("b at 1")
	set("b", 1, buf, ttl)
	buf[0] = 'X'
	got, _, err := c.Get(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > 0 {
		got[0] = 'Y'
	}
	want("after changing the bytes passed to Set and returned by Get", "b", []byte("b at 1"), 1)

	setVersion(2)
	want("version 2 invalidates", "a", nil, 2)
	want("version 2 invalidates", "b", nil, 2)
	set("a", 2, []byte("a at 2"), ttl)
	want("stored at 2", "a", []byte("a at 2"), 2)

	setVersion(1)
	want("SetVersion(1) at 2", "a", []byte("a at 2"), 2)
	setVersion(2)
	want("SetVersion(2) at 2", "a", []byte("a at 2"), 2)

	set("a", 1, []byte("a at 1, late"), ttl) // a writer that read a lagging replica
	want("stale entry", "a", nil, 2)

	set("c", 3, []byte("c at 3"), ttl)
	want("entry ahead of the version", "c", nil, 2)
	setVersion(3)
	want("version 3", "c", []byte("c at 3"), 3)

	// Concurrent writers of versions 4 to 53, in random order: the highest wins.
	var wg sync.WaitGroup
	for _, v := range rand.Perm(50) {
		wg.Go(func() {
			if err := c.SetVersion(ctx, int64(v)+4); err != nil {
				t.Errorf("SetVersion(%d) = %v", v+4, err)
			}
		})
	}
	wg.Wait()
	want("concurrent SetVersion 4 to 53", "c", nil, 53)

	set("d", 53, []byte("d at 53"), ttl)
	want("before a shorter ttl", "d", []byte("d at 53"), 53)
	set("d", 53, []byte("d at 53, short"), 50*time.Millisecond)
	if elapse != nil {
		want("a shorter ttl not yet over", "d", []byte("d at 53, short"), 53)
		elapse(50 * time.Millisecond)
		want("a shorter ttl over", "d", nil, 53)
		return
	}
	testenv.Poll(t, "the entry set for 50ms to expire", func() bool {
		got, cur, err := c.Get(ctx, "d")
		if err != nil {
			t.Fatalf("Get(%q) = %v", "d", err)
		}
		if cur != 53 {
			t.Fatalf("Get(%q) current = %d, want 53", "d", cur)
		}
		return got == nil
	})
}
