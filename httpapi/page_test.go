package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"boxoffice/catalog"
	"boxoffice/sqlite"
)

// pageResponse is a paginated search's body.
type pageResponse struct {
	Data struct {
		Events     []json.RawMessage `json:"events"`
		NextCursor *string           `json:"next_cursor"`
	} `json:"data"`
	Error any `json:"error"`
}

// events returns the documents of an unpaginated search's body, checking that it has
// no next_cursor.
func events(t *testing.T, body []byte) []json.RawMessage {
	t.Helper()
	var r struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("search body %s: %v", body, err)
	}
	if _, ok := r.Data["next_cursor"]; ok {
		t.Errorf("unpaginated search has next_cursor: %s", body)
	}
	var evs []json.RawMessage
	if err := json.Unmarshal(r.Data["events"], &evs); err != nil {
		t.Fatalf("search events %s: %v", r.Data["events"], err)
	}
	return evs
}

// sameEvents reports whether a and b are the same documents, byte for byte.
func sameEvents(a, b []json.RawMessage) bool {
	return slices.EqualFunc(a, b, func(x, y json.RawMessage) bool { return bytes.Equal(x, y) })
}

// pageAll pages through the window of query on h at limit, returning the events of
// every page in order; it stops the test at a page that is not a 200.
func pageAll(t *testing.T, h http.Handler, query string, limit int) (evs []json.RawMessage, pages int) {
	t.Helper()
	cursor := ""
	for {
		rec := get(h, pageTarget(query, limit, cursor))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s = %d %s", pageTarget(query, limit, cursor), rec.Code, rec.Body)
		}
		if rec.Header().Get("ETag") == "" || rec.Header().Get("Content-Length") != strconv.Itoa(rec.Body.Len()) {
			t.Errorf("page headers %v, want an ETag and the body's length", rec.Header())
		}
		var p pageResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("page body %s: %v", rec.Body, err)
		}
		if len(p.Data.Events) > limit {
			t.Fatalf("page of limit %d has %d events", limit, len(p.Data.Events))
		}
		evs = append(evs, p.Data.Events...)
		pages++
		if p.Data.NextCursor == nil {
			return evs, pages
		}
		if len(p.Data.Events) != limit {
			t.Errorf("a page with a next cursor has %d events, want %d", len(p.Data.Events), limit)
		}
		if pages > 10_000 {
			t.Fatal("more than 10000 pages")
		}
		cursor = *p.Data.NextCursor
	}
}

func pageTarget(query string, limit int, cursor string) string {
	q, _ := url.ParseQuery(query)
	q.Set("limit", strconv.Itoa(limit))
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	return "/search?" + q.Encode()
}

// pageStore opens an empty, migrated SQLite store.
func pageStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// noIndex is a catalog beyond its index's budget: searches read the store.
type noIndex struct{}

func (noIndex) Index() *catalog.Index { return nil }

var pageWindows = []string{
	"",
	"starts_at=2021-01-03&ends_at=2021-01-09",
	"starts_at=2021-01-05T10:30:00Z",
	"ends_at=2021-01-02T03:00:00Z",
	"starts_at=2029-01-01",
}

// TestPagesConcatenate pages through windows at several page sizes, from the index
// and from the store (a catalog beyond the index's budget): the pages concatenate to
// exactly the unpaginated response's events, the last page's next_cursor is null, and
// the unpaginated response is byte for byte what it was without paging.
func TestPagesConcatenate(t *testing.T) {
	t.Parallel()
	store := pageStore(t)
	plans := manyPlans(t, 150)
	for i := range 40 { // ties on the start, ordered by id
		p := newPlan(t, "tie"+strconv.Itoa(i), "Tie "+strconv.Itoa(i), "2021-01-05 12:00:00", "2021-01-05 13:00:00", "5")
		plans = append(plans, p)
	}
	plans = append(plans, newPlan(t, "long", "Long", "2021-01-04 00:00:00", "2021-03-01 00:00:00")) // ends after the bounded windows
	if _, err := store.UpsertPlans(t.Context(), plans); err != nil {
		t.Fatal(err)
	}
	searcher := catalog.NewSearcher(store, EncodeEvent, catalog.SearcherConfig{Poll: time.Hour}, slog.New(slog.DiscardHandler))
	if _, err := searcher.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	ix := searcher.Index()
	handlers := map[string]*Handler{
		"index": New(searcher, slog.New(slog.DiscardHandler), Config{}),
		"store": New(noIndex{}, slog.New(slog.DiscardHandler), Config{Store: store}),
	}
	for name, h := range handlers {
		for _, query := range pageWindows {
			rec := get(h, "/search?"+query)
			win, _ := url.ParseQuery(query)
			w, err := ParseWindow(win)
			if err != nil {
				t.Fatal(err)
			}
			if want := appendEvents(nil, ix.Search(w)); !bytes.Equal(rec.Body.Bytes(), want) {
				t.Errorf("%s: GET /search?%s = %s, want the unpaginated bytes %s", name, query, rec.Body, want)
			}
			want := events(t, rec.Body.Bytes())
			for _, limit := range []int{2, 7, 100, 1000} {
				got, pages := pageAll(t, h, query, limit)
				if !sameEvents(want, got) {
					t.Errorf("%s: pages of %q at limit %d concatenated (-want +got):\n%s", name, query, limit, cmp.Diff(want, got))
				}
				if wantPages := max(1, (len(want)+limit-1)/limit); pages != wantPages {
					t.Errorf("%s: %q at limit %d took %d pages, want %d", name, query, limit, pages, wantPages)
				}
			}
		}
	}
}

// TestPageSnapshot pages through a window while syncs change it: every page comes
// from the version of the first, the concatenation is the window as it was then, a new
// walk sees the new version, and a cursor whose version is no longer kept gets 410.
func TestPageSnapshot(t *testing.T) {
	t.Parallel()
	store := pageStore(t)
	plans := manyPlans(t, 30)
	v1, err := store.UpsertPlans(t.Context(), plans)
	if err != nil {
		t.Fatal(err)
	}
	searcher := catalog.NewSearcher(store, EncodeEvent, catalog.SearcherConfig{Poll: time.Hour, History: 1}, slog.New(slog.DiscardHandler))
	refresh := func(want int64) {
		t.Helper()
		if v, err := searcher.Refresh(t.Context()); err != nil || v != want {
			t.Fatalf("Refresh() = %d, %v; want %d", v, err, want)
		}
	}
	refresh(v1)
	h := New(searcher, slog.New(slog.DiscardHandler), Config{})
	const query = "starts_at=2021-01-01&ends_at=2021-01-02"
	before := events(t, get(h, "/search?"+query).Body.Bytes())

	first := decodePage(t, get(h, pageTarget(query, 5, "")))
	// A sync moves the first plan after the fifth, retitles the eighth and adds one.
	moved := plans[0]
	moved.StartsAt, moved.EndsAt = plans[5].StartsAt.Add(time.Minute), plans[5].EndsAt
	moved.Revision++
	retitled := plans[7]
	retitled.Title, retitled.Revision = "Retitled", retitled.Revision+1
	added := newPlan(t, "added", "Added", "2021-01-01 08:30:00", "2021-01-01 09:00:00")
	v2, err := store.UpsertPlans(t.Context(), []catalog.Plan{moved, retitled, added})
	if err != nil {
		t.Fatal(err)
	}
	refresh(v2)
	after := events(t, get(h, "/search?"+query).Body.Bytes())
	if sameEvents(before, after) {
		t.Fatal("the sync did not change the window: the test proves nothing")
	}

	got := first.Data.Events
	cursor := first.Data.NextCursor
	var midway string
	for cursor != nil {
		if midway == "" {
			midway = *cursor
		}
		p := decodePage(t, get(h, pageTarget(query, 5, *cursor)))
		got = append(got, p.Data.Events...)
		cursor = p.Data.NextCursor
	}
	if !sameEvents(before, got) {
		t.Errorf("pages walked across a sync (-version %d +pages):\n%s", v1, cmp.Diff(before, got))
	}
	if fresh, _ := pageAll(t, h, query, 5); !sameEvents(after, fresh) {
		t.Errorf("a walk started after the sync = %d events, want version %d's %d", len(fresh), v2, len(after))
	}

	// One more version: with one previous version kept, the first is gone.
	v3, err := store.UpsertPlans(t.Context(), []catalog.Plan{newPlan(t, "third", "Third", "2021-01-01 10:30:00", "2021-01-01 11:00:00")})
	if err != nil {
		t.Fatal(err)
	}
	refresh(v3)
	rec := get(h, pageTarget(query, 5, midway))
	checkError(t, rec, http.StatusGone, "cursor_expired")
	if msg := rec.Body.String(); !strings.Contains(msg, "version "+strconv.FormatInt(v1, 10)) || !strings.Contains(msg, "without a cursor") {
		t.Errorf("410 body %s: want the version and what to do", msg)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("410 Cache-Control = %q, want no-store", rec.Header().Get("Cache-Control"))
	}
}

// TestPageSnapshotFromStore: without an index the store holds only its current
// version, so a cursor survives no sync: 410 once the version moves.
func TestPageSnapshotFromStore(t *testing.T) {
	t.Parallel()
	store := pageStore(t)
	if _, err := store.UpsertPlans(t.Context(), manyPlans(t, 12)); err != nil {
		t.Fatal(err)
	}
	h := New(noIndex{}, slog.New(slog.DiscardHandler), Config{Store: store})
	first := decodePage(t, get(h, pageTarget("", 5, "")))
	if first.Data.NextCursor == nil {
		t.Fatal("first page of 12 plans at 5 has no next cursor")
	}
	if rec := get(h, pageTarget("", 5, *first.Data.NextCursor)); rec.Code != http.StatusOK {
		t.Fatalf("second page before a sync = %d %s", rec.Code, rec.Body)
	}
	if _, err := store.UpsertPlans(t.Context(), []catalog.Plan{newPlan(t, "new", "New", "2021-01-01 00:30:00", "2021-01-01 01:00:00")}); err != nil {
		t.Fatal(err)
	}
	checkError(t, get(h, pageTarget("", 5, *first.Data.NextCursor)), http.StatusGone, "cursor_expired")
}

// TestPageCursorFromAnotherInstance: instances with the same CursorKey accept each
// other's cursors; one with another key does not, and one that has not loaded the
// cursor's version yet answers 503 to retry.
func TestPageCursorFromAnotherInstance(t *testing.T) {
	t.Parallel()
	plans := manyPlans(t, 12)
	key := []byte("0123456789abcdef0123456789abcdef")
	a := New(fixedCatalog{ix: catalog.NewIndex(2, plans, EncodeEvent)}, slog.New(slog.DiscardHandler), Config{CursorKey: key})
	b := New(fixedCatalog{ix: catalog.NewIndex(2, plans, EncodeEvent)}, slog.New(slog.DiscardHandler), Config{CursorKey: key})
	other := New(fixedCatalog{ix: catalog.NewIndex(2, plans, EncodeEvent)}, slog.New(slog.DiscardHandler), Config{CursorKey: []byte("another key, just as long as it")})
	behind := New(fixedCatalog{ix: catalog.NewIndex(1, plans, EncodeEvent)}, slog.New(slog.DiscardHandler), Config{CursorKey: key})

	first := decodePage(t, get(a, pageTarget("", 5, "")))
	next := *first.Data.NextCursor
	fromA := get(a, pageTarget("", 5, next))
	if rec := get(b, pageTarget("", 5, next)); rec.Code != http.StatusOK || rec.Body.String() != fromA.Body.String() {
		t.Errorf("instance b on a's cursor = %d %s, want a's page %s", rec.Code, rec.Body, fromA.Body)
	}
	checkError(t, get(other, pageTarget("", 5, next)), http.StatusBadRequest, "bad_request")
	rec := get(behind, pageTarget("", 5, next))
	checkError(t, rec, http.StatusServiceUnavailable, "unavailable")
	if rec.Header().Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
}

// TestPageBadRequest: a bad limit or cursor is a 400 naming the parameter.
func TestPageBadRequest(t *testing.T) {
	t.Parallel()
	h := newTestHandler(t, testPlans(t))
	first := decodePage(t, get(h, "/search?limit=2"))
	cur := *first.Data.NextCursor
	flip := []byte(cur)
	flip[len(flip)/2] ^= 'A' ^ 'B' // a base64url letter stays one
	if flip[len(flip)/2] == cur[len(cur)/2] {
		t.Fatal("flip changed nothing")
	}
	tests := []struct {
		name  string
		query string
		want  string // in the message
	}{
		{"limit zero", "limit=0", "limit: \"0\""},
		{"limit over 1000", "limit=1001", "limit: \"1001\""},
		{"limit negative", "limit=-5", "limit: \"-5\""},
		{"limit with a sign", "limit=%2B5", "limit: \"+5\""},
		{"limit not a number", "limit=ten", "limit: \"ten\""},
		{"limit empty", "limit=", "limit: \"\""},
		{"limit huge", "limit=99999999999999999999999", "limit: "},
		{"limit twice", "limit=5&limit=6", "limit: given 2 times"},
		{"cursor without limit", "cursor=" + cur, "cursor: give limit with it"},
		{"cursor twice", "limit=2&cursor=" + cur + "&cursor=" + cur, "cursor: given 2 times"},
		{"cursor altered", "limit=2&cursor=" + string(flip), "cursor: not a cursor of this API, or altered"},
		{"cursor truncated", "limit=2&cursor=" + cur[:len(cur)-1], "cursor: not a cursor of this API, or altered"},
		{"cursor extended", "limit=2&cursor=" + cur + "A", "cursor: not a cursor of this API, or altered"},
		{"cursor not base64", "limit=2&cursor=" + strings.Repeat("!", len(cur)), "cursor: not a cursor of this API, or altered"},
		{"cursor of another window", "limit=2&starts_at=2021-01-01&cursor=" + cur, "cursor: made for another window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(h, "/search?"+tt.query)
			var e errorResponse
			checkError(t, rec, http.StatusBadRequest, "bad_request")
			_ = json.Unmarshal(rec.Body.Bytes(), &e)
			if !strings.Contains(e.Error.Message, tt.want) {
				t.Errorf("GET /search?%s message = %q, want it to contain %q", tt.query, e.Error.Message, tt.want)
			}
		})
	}
	// The bounds are fine, and an empty cursor is the first page.
	for _, q := range []string{"limit=1", "limit=1000", "limit=2&cursor=", "limit=2&cursor=" + cur} {
		if rec := get(h, "/search?"+q); rec.Code != http.StatusOK {
			t.Errorf("GET /search?%s = %d %s, want 200", q, rec.Code, rec.Body)
		}
	}
}

// TestPageConditional: a page's ETag names its version, window, limit and position,
// so If-None-Match gets a 304 for the same page and a 200 for another.
func TestPageConditional(t *testing.T) {
	t.Parallel()
	h := newTestHandler(t, testPlans(t))
	first := get(h, "/search?limit=2")
	etag := first.Header().Get("ETag")
	if rec := get(h, "/search?limit=2", "If-None-Match", etag); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("same page with its ETag = %d %s, want 304", rec.Code, rec.Body)
	}
	next := *decodePage(t, first).Data.NextCursor
	for _, target := range []string{"/search?limit=3", "/search?limit=2&cursor=" + next, "/search"} {
		if rec := get(h, target, "If-None-Match", etag); rec.Code != http.StatusOK {
			t.Errorf("GET %s with the first page's ETag = %d, want 200", target, rec.Code)
		}
	}
}

// TestSearchStreamsLargeWindows checks that an unpaginated window too large for L1 is
// streamed: serving it allocates a small fraction of its size, independent of the
// number of plans (no copy of the body, no list of its documents).
func TestSearchStreamsLargeWindows(t *testing.T) {
	ix := catalog.NewIndex(1, manyPlans(t, 40_000), EncodeEvent)
	h := New(fixedCatalog{ix: ix}, slog.New(slog.DiscardHandler), Config{L1MaxBytes: 1 << 20})
	serve := func() int {
		w := &discardWriter{header: http.Header{}}
		h.ServeHTTP(w, httptestRequest("/search"))
		if w.status != http.StatusOK {
			t.Fatalf("GET /search = %d", w.status)
		}
		return w.n
	}
	size := serve() // warm the pools
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 3 {
		serve()
	}
	runtime.ReadMemStats(&after)
	perRequest := (after.TotalAlloc - before.TotalAlloc) / 3
	const bound = 128 << 10 // far less than 40k documents' pointers (960 KiB)
	if perRequest > bound {
		t.Errorf("a %d-byte unpaginated response allocated %d bytes per request, want at most %d: it is not streamed", size, perRequest, bound)
	}
	if size < 4<<20 {
		t.Errorf("response of %d bytes, want one of several MiB for the test to mean something", size)
	}
}

func httptestRequest(target string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, target, nil)
	r.RemoteAddr = "192.0.2.1:1234"
	return r
}

// decodePage decodes a page, stopping the test unless rec is a 200.
func decodePage(t *testing.T, rec interface {
	Result() *http.Response
}) pageResponse {
	t.Helper()
	res := rec.Result()
	var p pageResponse
	if res.StatusCode != http.StatusOK {
		t.Fatalf("page status = %d", res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatalf("page body: %v", err)
	}
	return p
}

// checkError fails t unless rec is an error response of status and code.
func checkError(t *testing.T, rec interface {
	Result() *http.Response
}, status int, code string) {
	t.Helper()
	res := rec.Result()
	var e errorResponse
	if err := json.NewDecoder(res.Body).Decode(&e); err != nil || res.StatusCode != status || e.Error.Code != code || e.Data != nil {
		t.Errorf("status %d, error %+v (%v); want %d %s", res.StatusCode, e, err, status, code)
	}
}
