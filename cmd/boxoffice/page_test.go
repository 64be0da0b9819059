package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"boxoffice/providersim"
)

// page is a paginated search's answer.
type page struct {
	Data struct {
		Events     []event `json:"events"`
		NextCursor *string `json:"next_cursor"`
	} `json:"data"`
	Error *struct {
		Code string `json:"code"`
	} `json:"error"`
}

// getPage asks base for the page of limit after cursor ("" for the first), returning
// its status and body.
func getPage(t *testing.T, base string, limit int, cursor string) (int, page) {
	t.Helper()
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	status, body := searchBody(t, base+"/search?"+q.Encode())
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("page body %s: %v", body, err)
	}
	return status, p
}

// walk pages from cursor to the end, returning the events of every page.
func walk(t *testing.T, base string, limit int, cursor string) []event {
	t.Helper()
	return walkAcross(t, []string{base}, limit, cursor)
}

// walkAcross pages from cursor to the end asking each of bases in turn, as a load
// balancer would send the pages, returning the events of every page.
func walkAcross(t *testing.T, bases []string, limit int, cursor string) []event {
	t.Helper()
	var evs []event
	for n := 0; ; n++ {
		status, p := getPage(t, bases[n%len(bases)], limit, cursor)
		if status != http.StatusOK || n > 10_000 {
			t.Fatalf("page %d = %d %+v", n, status, p.Error)
		}
		evs = append(evs, p.Data.Events...)
		if p.Data.NextCursor == nil {
			return evs
		}
		cursor = *p.Data.NextCursor
	}
}

// TestRunPagesThroughSyncs pages through the catalog of a running process while the
// provider's catalog churns: a walk started before a sync reads every page at the
// version it started at, and its pages concatenate to the unpaginated answer of that
// version; a walk started after reads the new one; and once the version is older than
// INDEX_HISTORY keeps, its cursor gets 410.
func TestRunPagesThroughSyncs(t *testing.T) {
	sim := providersim.New(providersim.Config{Mode: providersim.Synthetic, Seed: 3, BasePlans: 120, Plans: 3, Zones: 2,
		VanishRate: 0.1, PriceChangeRate: 0.3, TimeChangeRate: 0.3})
	t.Cleanup(func() { sim.Close() })
	gp := newGatedProvider(sim, 2, 3, 4) // 4 is never released: the catalog stays at sync 3's
	provider := httptest.NewServer(gp)
	t.Cleanup(provider.Close)
	base, _ := startRun(t, map[string]string{
		"HTTP_ADDR":             freeAddr(t),
		"DATA_DIR":              t.TempDir(),
		"EXTERNAL_API_URL":      provider.URL + "/api/events",
		"SYNC_INTERVAL_SECONDS": "0.05",
		"INDEX_HISTORY":         "1",
	})

	<-gp.arrived(2) // sync 1 is over; sync 2 waits
	v1 := searchable(t, sim, []int{1})
	if len(v1) < 150 {
		t.Fatalf("%d searchable plans: the test would prove little", len(v1))
	}
	waitEvents(t, base+"/search", v1)
	const limit = 40
	status, first := getPage(t, base, limit, "")
	if status != http.StatusOK || first.Data.NextCursor == nil {
		t.Fatalf("first page = %d, next cursor %v", status, first.Data.NextCursor)
	}
	_, second := getPage(t, base, limit, *first.Data.NextCursor)

	gp.release(2) // sync 2 changes the catalog; sync 3 waits
	<-gp.arrived(3)
	v2 := searchable(t, sim, []int{1, 2})
	if gocmp.Equal(v1, v2) {
		t.Fatal("sync 2 changed nothing: the test would prove nothing")
	}
	waitEvents(t, base+"/search", v2)
	got := append(append(first.Data.Events, second.Data.Events...), walk(t, base, limit, *second.Data.NextCursor)...)
	if diff := gocmp.Diff(v1, got); diff != "" {
		t.Errorf("a walk across sync 2 mixed versions (-version 1 +pages):\n%s", diff)
	}
	if diff := gocmp.Diff(v2, walk(t, base, limit, "")); diff != "" {
		t.Errorf("a walk after sync 2 (-version 2 +pages):\n%s", diff)
	}

	gp.release(3) // sync 3: version 1 is now two behind, and INDEX_HISTORY keeps one
	<-gp.arrived(4)
	v3 := searchable(t, sim, []int{1, 2, 3})
	if gocmp.Equal(v2, v3) {
		t.Fatal("sync 3 changed nothing: the test would prove nothing")
	}
	waitEvents(t, base+"/search", v3)
	if status, p := getPage(t, base, limit, *second.Data.NextCursor); status != http.StatusGone || p.Error == nil || p.Error.Code != "cursor_expired" {
		t.Errorf("a cursor of version 1 after two newer ones = %d %+v, want 410 cursor_expired", status, p.Error)
	}
}
