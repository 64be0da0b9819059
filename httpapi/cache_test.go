package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"boxoffice/catalog"
	"boxoffice/httpapi/httpapitest"
)

// swappableCatalog is a Catalog whose index a test replaces, as a refresh would.
type swappableCatalog struct{ ix atomic.Pointer[catalog.Index] }

func (c *swappableCatalog) Index() *catalog.Index { return c.ix.Load() }

// manyPlans returns n plans, one starting every hour from 2021-01-01, each two hours
// long, so that a response of a few of them is worth gzipping.
func manyPlans(t testing.TB, n int) []catalog.Plan {
	t.Helper()
	start := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	plans := make([]catalog.Plan, n)
	for i := range plans {
		p := newPlan(t, strconv.Itoa(i), "Concierto "+strconv.Itoa(i), "2021-01-01 00:00:00", "2021-01-01 02:00:00", "15.00", "30.00")
		p.StartsAt = start.Add(time.Duration(i) * time.Hour)
		p.EndsAt = p.StartsAt.Add(2 * time.Hour)
		plans[i] = p
	}
	return plans
}

// counter returns the value of boxoffice_search_cache_requests_total{tier, result} in reg.
func counter(t *testing.T, reg *prometheus.Registry, tier, result string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "boxoffice_search_cache_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["tier"] == tier && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no boxoffice_search_cache_requests_total{tier=%q,result=%q}", tier, result)
	return 0
}

// get serves GET target on h with the request headers given as name, value pairs.
func get(h http.Handler, target string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip.NewReader() = %v", err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("read gzip body: %v", err)
	}
	return plain
}

func TestSearchL1HitThenMissOnNewVersion(t *testing.T) {
	plans := manyPlans(t, 10)
	cat := &swappableCatalog{}
	cat.ix.Store(catalog.NewIndex(1, plans, EncodeEvent))
	reg := prometheus.NewRegistry()
	h := New(cat, slog.New(slog.DiscardHandler), Config{Metrics: reg, CacheTTL: 30 * time.Second})
	const target = "/search?starts_at=2021-01-01&ends_at=2021-01-01T05:00:00Z"

	// A small response is kept from its second use: miss, miss, hit.
	first := get(h, target)
	get(h, target)
	second := get(h, target)
	if first.Code != http.StatusOK || second.Code != http.StatusOK {
		t.Fatalf("statuses = %d, %d, want 200", first.Code, second.Code)
	}
	if !bytes.Equal(first.Body.Bytes(), second.Body.Bytes()) {
		t.Errorf("a cached response differs:\n%s\nwant\n%s", second.Body, first.Body)
	}
	if got := counter(t, reg, "l1", "miss"); got != 2 {
		t.Errorf("l1 misses = %v, want 2", got)
	}
	if got := counter(t, reg, "l1", "hit"); got != 1 {
		t.Errorf("l1 hits = %v, want 1", got)
	}
	etag := first.Header().Get("ETag")
	if etag == "" || etag != second.Header().Get("ETag") {
		t.Errorf("ETags = %q, %q, want the same, non-empty", etag, second.Header().Get("ETag"))
	}
	if got, want := first.Header().Get("Cache-Control"), "public, max-age=30"; got != want {
		t.Errorf("Cache-Control = %q, want %q", got, want)
	}
	if got := first.Header().Get("Vary"); got != "Accept-Encoding" {
		t.Errorf("Vary = %q, want Accept-Encoding", got)
	}

	// Version 2 renames a plan in the window: a new key, a miss, the new title.
	renamed := plans[1]
	renamed.Title = "Renamed"
	cat.ix.Store(cat.Index().Apply(catalog.Changes{Plans: []catalog.Plan{renamed}, Version: 2}, EncodeEvent))
	third := get(h, target)
	if got := counter(t, reg, "l1", "miss"); got != 3 {
		t.Errorf("l1 misses after a new version = %v, want 3", got)
	}
	if !bytes.Contains(third.Body.Bytes(), []byte(`"Renamed"`)) {
		t.Errorf("body at version 2 lacks the new title: %s", third.Body)
	}
	if third.Header().Get("ETag") == etag {
		t.Errorf("ETag %q did not change with the version", etag)
	}
	if got := counter(t, reg, "l2", "miss"); got != 0 {
		t.Errorf("l2 misses = %v, want 0: L2 serves only the store path", got)
	}
}

func TestSearchOversizeResponsesAreNotCached(t *testing.T) {
	reg := prometheus.NewRegistry()
	ix := catalog.NewIndex(1, manyPlans(t, 100), EncodeEvent)
	// A sixteenth of 16 KiB is 1 KiB: a few plans fit, a hundred do not.
	h := New(fixedCatalog{ix: ix}, slog.New(slog.DiscardHandler), Config{Metrics: reg, L1MaxBytes: 16 << 10})
	wide := get(h, "/search")
	again := get(h, "/search", "Accept-Encoding", "gzip")
	if wide.Code != http.StatusOK || again.Code != http.StatusOK {
		t.Fatalf("statuses = %d, %d, want 200", wide.Code, again.Code)
	}
	if n := bytes.Count(wide.Body.Bytes(), []byte(`"id"`)); n != 100 {
		t.Errorf("wide search returned %d plans, want 100", n)
	}
	if !bytes.Equal(wide.Body.Bytes(), again.Body.Bytes()) || again.Header().Get("Content-Encoding") != "" {
		t.Errorf("an oversize response differs the second time, or is gzipped (%q)", again.Header().Get("Content-Encoding"))
	}
	if got := counter(t, reg, "l1", "miss"); got != 2 {
		t.Errorf("l1 misses = %v, want 2", got)
	}
	if got := counter(t, reg, "l1", "hit"); got != 0 {
		t.Errorf("l1 hits = %v, want 0", got)
	}
	if n := h.l1.EstimatedSize(); n != 0 {
		t.Errorf("L1 holds %d entries, want 0", n)
	}
	if wide.Header().Get("ETag") == "" {
		t.Error("an oversize response has no ETag")
	}

	narrow := "/search?starts_at=2021-01-01&ends_at=2021-01-01T03:00:00Z"
	for range 3 { // kept from its second use, a hit on its third
		get(h, narrow)
	}
	if got := counter(t, reg, "l1", "hit"); got != 1 {
		t.Errorf("l1 hits of a small response = %v, want 1", got)
	}
}

// TestSearchKeepsSmallResponsesFromTheirSecondUse checks the doorkeeper in front of L1:
// one-off windows (a client busting the cache) leave L1 empty; a window asked for
// again is kept, and the bytes are the same either way.
func TestSearchKeepsSmallResponsesFromTheirSecondUse(t *testing.T) {
	ix := catalog.NewIndex(1, manyPlans(t, 1000), EncodeEvent)
	h := New(fixedCatalog{ix: ix}, slog.New(slog.DiscardHandler), Config{})
	window := func(i int) string {
		from := time.Date(2021, 1, 1, 0, 0, i, 0, time.UTC)
		return "/search?starts_at=" + from.Format(time.RFC3339) + "&ends_at=" + from.Add(6*time.Hour).Format(time.RFC3339)
	}
	first := make([][]byte, 200)
	for i := range first {
		first[i] = get(h, window(i)).Body.Bytes()
	}
	h.l1.CleanUp()
	if n := h.l1.EstimatedSize(); n != 0 {
		t.Errorf("L1 holds %d entries after 200 one-off windows, want 0", n)
	}
	for i := range first {
		if again := get(h, window(i)).Body.Bytes(); !bytes.Equal(again, first[i]) {
			t.Fatalf("window %d: the second response differs from the first:\n%s\nwant\n%s", i, again, first[i])
		}
	}
	h.l1.CleanUp()
	if n := h.l1.EstimatedSize(); n != len(first) {
		t.Errorf("L1 holds %d entries after each window's second use, want %d", n, len(first))
	}
}

func TestDoorkeeper(t *testing.T) {
	d := newDoorkeeper()
	keys := make([]searchKey, 200)
	for i := range keys {
		keys[i] = searchKey{version: 3, from: int64(i) * 60, to: int64(i)*60 + 3600}
	}
	for _, k := range keys {
		if d.seen(k) {
			t.Fatalf("seen(%+v) on its first use", k)
		}
	}
	seen := 0
	for _, k := range keys {
		if d.seen(k) {
			seen++
		}
	}
	// 200 keys in 65536 slots: a pair that shares a slot looks new again (about 1.2
	// keys expected with random hashes; the keys and the hash are fixed, so the count is
	// too); more than a few means the hash spreads keys badly.
	if seen < len(keys)*97/100 {
		t.Errorf("%d of %d keys seen on their second use, want nearly all", seen, len(keys))
	}
	if d.seen(searchKey{version: 4, from: 0, to: 3600}) {
		t.Error("a key of a new version was seen before its first use")
	}
}

func TestSearchGzip(t *testing.T) {
	ix := catalog.NewIndex(1, manyPlans(t, 50), EncodeEvent)
	h := New(fixedCatalog{ix: ix}, slog.New(slog.DiscardHandler), Config{})
	tests := []struct {
		name           string
		target         string
		acceptEncoding string
		wantGzip       bool
	}{
		{"gzip", "/search", "gzip", true},
		{"gzip among others", "/search", "br;q=1.0, gzip;q=0.8, *;q=0.1", true},
		{"star", "/search", "*", true},
		{"identity", "/search", "identity", false},
		{"gzip refused", "/search", "gzip;q=0, *", false},
		{"none", "/search", "", false},
		{"too small to gzip", "/search?starts_at=2021-01-01&ends_at=2021-01-01T02:00:00Z", "gzip", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain := get(h, tt.target)
			rec := get(h, tt.target, "Accept-Encoding", tt.acceptEncoding)
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			body := rec.Body.Bytes()
			if gotGzip := rec.Header().Get("Content-Encoding") == "gzip"; gotGzip != tt.wantGzip {
				t.Fatalf("Accept-Encoding %q: Content-Encoding = %q, want gzip %v", tt.acceptEncoding, rec.Header().Get("Content-Encoding"), tt.wantGzip)
			}
			if tt.wantGzip {
				if len(body) >= plain.Body.Len() {
					t.Errorf("gzipped body is %d bytes, plain %d", len(body), plain.Body.Len())
				}
				body = gunzip(t, body)
			}
			if !bytes.Equal(body, plain.Body.Bytes()) {
				t.Errorf("body differs from the plain one:\n%s\nwant\n%s", body, plain.Body)
			}
			if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want {
				t.Errorf("Content-Length = %s, want %s", got, want)
			}
			if rec.Header().Get("ETag") != plain.Header().Get("ETag") {
				t.Errorf("ETag %q differs from the plain response's %q", rec.Header().Get("ETag"), plain.Header().Get("ETag"))
			}
		})
	}
}

func TestSearchNotModified(t *testing.T) {
	h := newTestHandler(t, testPlans(t))
	const target = "/search?starts_at=2021-02-01"
	etag := get(h, target).Header().Get("ETag")
	if !strings.HasPrefix(etag, `W/"`) {
		t.Fatalf("ETag = %q, want a weak one", etag)
	}
	strong := strings.TrimPrefix(etag, "W/")
	tests := []struct {
		name        string
		ifNoneMatch string
		want        int
	}{
		{"same", etag, http.StatusNotModified},
		{"strong form", strong, http.StatusNotModified},
		{"in a list", `"x", ` + etag + `, "y"`, http.StatusNotModified},
		{"star", "*", http.StatusNotModified},
		{"other", `W/"1.x.-"`, http.StatusOK},
		{"prefix of it", strong[:len(strong)-2] + `"`, http.StatusOK},
		{"malformed", "nonsense", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(h, target, "If-None-Match", tt.ifNoneMatch)
			if rec.Code != tt.want {
				t.Fatalf("If-None-Match %s: status = %d, want %d", tt.ifNoneMatch, rec.Code, tt.want)
			}
			if tt.want == http.StatusNotModified {
				if rec.Body.Len() != 0 {
					t.Errorf("304 has a body: %s", rec.Body)
				}
				if rec.Header().Get("ETag") != etag || rec.Header().Get("Cache-Control") == "" {
					t.Errorf("304 headers = %v, want ETag %s and Cache-Control", rec.Header(), etag)
				}
			}
		})
	}
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"x-gzip", true},
		{"deflate, gzip", true},
		{"gzip;q=0", false},
		{"gzip; q=0.001", true},
		{"gzip;q=0.0, *", false},
		{"*", true},
		{"*;q=0", false},
		{"br, deflate", false},
		{"identity;q=1, *;q=0", false},
	}
	for _, tt := range tests {
		if got := acceptsGzip([]string{tt.give}); got != tt.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

// fakeStore is a Store over a fixed list of plans at a version, counting searches,
// failing while err is set.
type fakeStore struct {
	mu       sync.Mutex // guards the fields
	plans    []catalog.Plan
	version  int64
	err      error
	searches int
}

func (s *fakeStore) ChangedSince(_ context.Context, version int64) (catalog.Changes, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return catalog.Changes{}, s.err
	}
	return catalog.Changes{Version: s.version}, nil
}

func (s *fakeStore) SearchPlans(_ context.Context, w catalog.Window) ([]catalog.Plan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	s.searches++
	var out []catalog.Plan
	for _, p := range s.plans {
		if w.Contains(p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b catalog.Plan) int {
		if c := a.StartsAt.Compare(b.StartsAt); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	return out, nil
}

func (s *fakeStore) set(version int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version, s.err = version, err
}

func (s *fakeStore) searchCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.searches
}

// mapCache is an L2 in a map, failing while err is set.
type mapCache struct {
	mu   sync.Mutex // guards the fields
	m    map[string][]byte
	err  error
	sets int
}

func (c *mapCache) Get(_ context.Context, key string) ([]byte, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, false, c.err
	}
	v, ok := c.m[key]
	return v, ok, nil
}

func (c *mapCache) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if ttl <= 0 {
		return errors.New("no ttl")
	}
	c.m[key] = val
	c.sets++
	return nil
}

func TestSearchWithoutIndexReadsStoreOnceThenCaches(t *testing.T) {
	store := &fakeStore{plans: manyPlans(t, 20), version: 7}
	l2 := &mapCache{m: map[string][]byte{}}
	want := get(newTestHandler(t, nil), "/search") // 503: no index, no store
	if want.Code != http.StatusServiceUnavailable {
		t.Fatalf("search without index or store: status = %d, want 503", want.Code)
	}
	indexed := New(fixedCatalog{ix: catalog.NewIndex(7, store.plans, EncodeEvent)}, slog.New(slog.DiscardHandler), Config{})
	const target = "/search?starts_at=2021-01-01T03:00:00Z&ends_at=2021-01-01T10:00:00Z"
	wantBody := get(indexed, target).Body.Bytes()

	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Store: store, Cache: l2, Metrics: regA})
	b := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Store: store, Cache: l2, Metrics: regB})
	for i, h := range []*Handler{a, a, b} {
		rec := get(h, target)
		if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), wantBody) {
			t.Fatalf("search %d = %d %s, want 200 %s", i, rec.Code, rec.Body, wantBody)
		}
	}
	if n := store.searchCount(); n != 1 {
		t.Errorf("store searched %d times, want 1", n)
	}
	for _, c := range []struct {
		reg          *prometheus.Registry
		tier, result string
		want         float64
	}{
		{regA, "l1", "miss", 1}, {regA, "l1", "hit", 1}, {regA, "l2", "miss", 1}, {regA, "l2", "hit", 0},
		{regB, "l1", "miss", 1}, {regB, "l1", "hit", 0}, {regB, "l2", "miss", 0}, {regB, "l2", "hit", 1},
	} {
		if got := counter(t, c.reg, c.tier, c.result); got != c.want {
			t.Errorf("%s %s = %v, want %v", c.tier, c.result, got, c.want)
		}
	}

	// A new version is a new key: the store is read again.
	store.set(8, nil)
	if rec := get(a, target); rec.Code != http.StatusOK {
		t.Fatalf("search at version 8: status = %d", rec.Code)
	}
	if n := store.searchCount(); n != 2 {
		t.Errorf("store searched %d times after a new version, want 2", n)
	}

	// With the store down, cached windows still answer, at the last version read;
	// others get 503.
	store.set(8, errors.New("connection refused"))
	if rec := get(a, target); rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), wantBody) {
		t.Errorf("cached search with the store down = %d %s, want 200", rec.Code, rec.Body)
	}
	if rec := get(a, "/search?starts_at=2021-01-02"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("uncached search with the store down: status = %d, want 503", rec.Code)
	} else if strings.Contains(rec.Body.String(), "refused") {
		t.Errorf("503 shows the store's error: %s", rec.Body)
	}
}

func TestSearchWithoutIndexDegradesWhenL2Fails(t *testing.T) {
	store := &fakeStore{plans: manyPlans(t, 5), version: 3}
	l2 := &mapCache{m: map[string][]byte{}, err: errors.New("redis down")}
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	h := New(fixedCatalog{}, slog.New(slog.NewTextHandler(&logs, nil)), Config{Store: store, Cache: l2, Metrics: reg})
	for i := range 3 {
		target := "/search?starts_at=2021-01-01T0" + strconv.Itoa(i) + ":00:00Z"
		if rec := get(h, target); rec.Code != http.StatusOK {
			t.Fatalf("GET %s with L2 down: status = %d, want 200", target, rec.Code)
		}
	}
	if got := counter(t, reg, "l2", "miss"); got != 3 {
		t.Errorf("l2 misses = %v, want 3", got)
	}
	if n := strings.Count(logs.String(), "L2 failing"); n != 1 {
		t.Errorf("logged the L2 failure %d times, want once:\n%s", n, logs.String())
	}
}

// TestSearchGzipsSmallResponsesFromTheirSecondUse checks the gzip policy: a response
// under eagerGzipBytes goes out plain the first time (a one-off random window is not
// worth the CPU) and gzipped once it is asked for again; a large one is gzipped at once.
func TestSearchGzipsSmallResponsesFromTheirSecondUse(t *testing.T) {
	h := New(fixedCatalog{ix: catalog.NewIndex(1, manyPlans(t, 1000), EncodeEvent)}, slog.New(slog.DiscardHandler), Config{})
	small := "/search?starts_at=2021-01-01&ends_at=2021-01-03"
	encodings := func(target string) (first, second string, size int) {
		a := get(h, target, "Accept-Encoding", "gzip")
		b := get(h, target, "Accept-Encoding", "gzip")
		return a.Header().Get("Content-Encoding"), b.Header().Get("Content-Encoding"), len(get(h, target).Body.Bytes())
	}
	if first, second, size := encodings(small); first != "" || second != "gzip" || size < minGzipBytes || size >= eagerGzipBytes {
		t.Errorf("small window (%d bytes): encodings %q then %q, want plain then gzip for a body in [%d, %d)", size, first, second, minGzipBytes, eagerGzipBytes)
	}
	if first, _, size := encodings("/search"); first != "gzip" || size < eagerGzipBytes {
		t.Errorf("whole catalog (%d bytes): first encoding %q, want gzip at once above %d bytes", size, first, eagerGzipBytes)
	}
}

// The suite's Cache is this package's: each converts to the other.
var (
	_ Cache             = httpapitest.Cache(nil)
	_ httpapitest.Cache = Cache(nil)
)
