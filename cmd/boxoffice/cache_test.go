package main

import (
	"bytes"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/httpapi"
	"boxoffice/redis"
	"boxoffice/sqlite"
	"boxoffice/testenv"
)

// noIndex is a catalog that never has an index, as before the first load: searches go
// through the caches to the store.
type noIndex struct{}

func (noIndex) Index() *catalog.Index { return nil }

// openTestStore returns a migrated SQLite store holding plans.
func openTestStore(t *testing.T, plans ...catalog.Plan) *sqlite.Store {
	t.Helper()
	store, err := openSQLite(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.UpsertPlans(t.Context(), plans); err != nil {
		t.Fatal(err)
	}
	return store
}

// searchOn answers GET target on h and returns the status and body.
func searchOn(h http.Handler, target string) (int, []byte) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Code, rec.Body.Bytes()
}

// cacheCount returns boxoffice_search_cache_requests_total{tier, result} in reg.
func cacheCount(t *testing.T, reg *prometheus.Registry, tier, result string) float64 {
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
			var gotTier, gotResult string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "tier":
					gotTier = l.GetValue()
				case "result":
					gotResult = l.GetValue()
				}
			}
			if gotTier == tier && gotResult == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no boxoffice_search_cache_requests_total{tier=%q,result=%q}", tier, result)
	return 0
}

// TestUpdateReachesEveryAPIInstance runs two API instances over one store: a plan
// update is served by each once the new catalog version reaches it, and not before,
// whatever their caches held.
func TestUpdateReachesEveryAPIInstance(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	store := openTestStore(t, catalogtest.NewPlan("b1", "p1", catalogtest.Title("Before")))
	var searchers []*catalog.Searcher
	var apis []*httpapi.Handler
	for range 2 {
		s := catalog.NewSearcher(store, httpapi.EncodeEvent, catalog.SearcherConfig{Poll: time.Hour}, log)
		if _, err := s.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		searchers = append(searchers, s)
		apis = append(apis, httpapi.New(s, log, httpapi.Config{Store: store}))
	}
	const target = "/search?starts_at=2021-06-01"
	for i, api := range apis {
		searchOn(api, target) // fills L1
		if _, body := searchOn(api, target); !bytes.Contains(body, []byte(`"Before"`)) {
			t.Fatalf("instance %d before the update: %s", i, body)
		}
	}

	if _, err := store.UpsertPlans(t.Context(), []catalog.Plan{
		catalogtest.NewPlan("b1", "p1", catalogtest.Title("After"), catalogtest.Revision(2)),
	}); err != nil {
		t.Fatal(err)
	}
	// The new version reaches instance 0 only (its refresh, as on an announcement).
	if _, err := searchers[0].Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, body := searchOn(apis[0], target); !bytes.Contains(body, []byte(`"After"`)) {
		t.Errorf("instance 0 after its refresh: %s, want the title After", body)
	}
	if _, body := searchOn(apis[1], target); !bytes.Contains(body, []byte(`"Before"`)) {
		t.Errorf("instance 1 before its refresh: %s, want its version's title Before", body)
	}
	if _, err := searchers[1].Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, body := searchOn(apis[1], target); !bytes.Contains(body, []byte(`"After"`)) {
		t.Errorf("instance 1 after its refresh: %s, want the title After", body)
	}
}

// TestSearchesSurviveRedisStopping serves searches without an index, through L1 and
// L2 on Redis to the store, and cuts Redis off: searches keep answering 200 with the
// right bodies, and count L2 misses.
func TestSearchesSurviveRedisStopping(t *testing.T) {
	redisURL := testenv.RedisURL(t)
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, u.Host)
	u.Host = proxy.Addr()
	rc, err := redis.Open(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })

	start := catalogtest.Epoch
	var plans []catalog.Plan
	for i := range 6 {
		plans = append(plans, catalogtest.NewPlan("b", string(rune('a'+i)), catalogtest.At(start.Add(time.Duration(i)*24*time.Hour), time.Hour)))
	}
	store := openTestStore(t, plans...)
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	api := httpapi.New(noIndex{}, log, httpapi.Config{
		Store:    store,
		Cache:    redis.NewCache(rc, "boxoffice-test:"+rand.Text()), // its keys expire with CacheTTL
		CacheTTL: 10 * time.Second,
		Metrics:  reg,
	})
	indexed := httpapi.New(fixedIndex{catalog.NewIndex(1, plans, httpapi.EncodeEvent)}, log, httpapi.Config{})
	windows := []string{"/search?starts_at=2021-06-30", "/search?starts_at=2021-07-02", "/search?ends_at=2021-07-03", "/search"}

	check := func(target string) {
		t.Helper()
		status, body := searchOn(api, target)
		_, want := searchOn(indexed, target)
		if status != http.StatusOK || !bytes.Equal(body, want) {
			t.Errorf("GET %s = %d %s, want 200 %s", target, status, body, want)
		}
	}
	check(windows[0])
	if got := cacheCount(t, reg, "l2", "miss"); got != 1 {
		t.Fatalf("l2 misses with Redis up = %v, want 1", got)
	}
	proxy.Cut()
	for _, target := range windows {
		check(target)
	}
	if got := cacheCount(t, reg, "l2", "miss"); got != float64(len(windows)) {
		t.Errorf("l2 misses after Redis stopped = %v, want %d (the first window is an L1 hit)", got, len(windows))
	}
	if got := cacheCount(t, reg, "l1", "hit"); got != 1 {
		t.Errorf("l1 hits = %v, want 1", got)
	}
}

// fixedIndex is a catalog with a fixed index.
type fixedIndex struct{ ix *catalog.Index }

func (c fixedIndex) Index() *catalog.Index { return c.ix }
