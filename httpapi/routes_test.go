package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"boxoffice/catalog"
)

// fixedCatalog serves one index; a nil one is a catalog not loaded yet.
type fixedCatalog struct{ ix *catalog.Index }

func (c fixedCatalog) Index() *catalog.Index { return c.ix }

// panickyCatalog panics on every search, as a handler bug would.
type panickyCatalog struct{}

func (panickyCatalog) Index() *catalog.Index { panic("index exploded") }

// testPlans are the plans of the handler tests, by plan id. Plans "a" and "b" start
// together; b's ID sorts first.
func testPlans(t testing.TB) map[string]catalog.Plan {
	t.Helper()
	return map[string]catalog.Plan{
		"e":        newPlan(t, "e", "No zones", "2021-02-10 20:00:00", "2021-02-10 21:00:00"),
		"a":        newPlan(t, "a", "Camela", "2021-06-30 21:00:00", "2021-06-30 22:00:00", "15.00", "30.00"),
		"b":        newPlan(t, "b", "Los Morancos", "2021-06-30 21:00:00", "2021-06-30 23:00:00", "20"),
		"c":        newPlan(t, "c", "Tributo a Juanito Valderrama", "2021-07-31 20:00:00", "2021-07-31 23:59:59", "10"),
		"d":        newPlan(t, "d", "Past midnight", "2021-07-31 22:00:00", "2021-08-01 01:00:00", "12.50"),
		"midnight": newPlan(t, "midnight", "At midnight", "2021-08-01 00:00:00", "2021-08-01 00:00:00", "1"),
	}
}

// newTestHandler returns a Handler over an index of plans; no plans means an empty
// catalog, a nil map one not loaded yet.
func newTestHandler(t testing.TB, plans map[string]catalog.Plan) *Handler {
	t.Helper()
	var cat fixedCatalog
	if plans != nil {
		list := make([]catalog.Plan, 0, len(plans))
		for _, p := range plans {
			list = append(list, p)
		}
		cat.ix = catalog.NewIndex(1, list, EncodeEvent)
	}
	return New(cat, slog.New(slog.DiscardHandler), Config{})
}

func serve(h http.Handler, method, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

// searchResponse is the 200 body of /search.
type searchResponse struct {
	Data struct {
		Events []struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		} `json:"events"`
	} `json:"data"`
	Error any `json:"error"`
}

// errorResponse is the error body of every route.
type errorResponse struct {
	Data  any `json:"data"`
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// checkJSON fails t unless rec is a JSON response of status with a correct length.
func checkJSON(t *testing.T, rec *httptest.ResponseRecorder, status int) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if got, want := rec.Header().Get("Content-Type"), "application/json; charset=utf-8"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want {
		t.Errorf("Content-Length = %q, want %q", got, want)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Errorf("body is not JSON: %s", rec.Body)
	}
}

func decodeError(t *testing.T, rec *httptest.ResponseRecorder) errorResponse {
	t.Helper()
	var got errorResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("error body %s: %v", rec.Body, err)
	}
	if got.Data != nil {
		t.Errorf("error body data = %v, want null", got.Data)
	}
	return got
}

func TestSearch(t *testing.T) {
	plans := testPlans(t)
	h := newTestHandler(t, plans)
	tests := []struct {
		name  string
		query string
		want  []string // plan ids, in order
	}{
		{"no bounds", "", []string{"e", "b", "a", "c", "d", "midnight"}},
		{"starts_at inclusive", "starts_at=2021-06-30T21:00:00Z", []string{"b", "a", "c", "d", "midnight"}},
		{"starts_at a nanosecond later", "starts_at=2021-06-30T21:00:00.000000001Z", []string{"c", "d", "midnight"}},
		{"ends_at inclusive", "ends_at=2021-06-30T22:00:00Z", []string{"e", "a"}},
		{"dates cover whole days", "starts_at=2021-06-01&ends_at=2021-06-30", []string{"b", "a"}},
		{"ends_at date includes the last day", "ends_at=2021-07-31", []string{"e", "b", "a", "c", "midnight"}},
		{"one day", "starts_at=2021-07-31&ends_at=2021-07-31", []string{"c", "midnight"}},
		{"overlapping plans excluded", "starts_at=2021-06-30T21:30:00Z&ends_at=2021-07-31T21:00:00", []string{}},
		{"offset", "starts_at=2021-06-30T22:00:00%2B01:00", []string{"b", "a", "c", "d", "midnight"}},
		{"unescaped plus in offset", "starts_at=2021-06-30T22:00:00+01:00", []string{"b", "a", "c", "d", "midnight"}},
		{"nothing in window", "starts_at=2030-01-01", []string{}},
		{"unknown parameters ignored", "page=2&sort=desc&starts_at=2021-07-31", []string{"c", "d", "midnight"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(h, http.MethodGet, "/search?"+tt.query)
			checkJSON(t, rec, http.StatusOK)
			var resp searchResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, e := range resp.Data.Events {
				var name string
				for n, p := range plans {
					if p.ID.String() == e.ID {
						name = n
					}
				}
				got = append(got, name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("GET /search?%s events (-want +got):\n%s", tt.query, diff)
			}
			if resp.Error != nil {
				t.Errorf("GET /search?%s error = %v, want null", tt.query, resp.Error)
			}
		})
	}
}

func TestSearchBody(t *testing.T) {
	plans := testPlans(t)
	h := newTestHandler(t, plans)
	rec := serve(h, http.MethodGet, "/search?ends_at=2021-06-30T22:00:00Z")
	checkJSON(t, rec, http.StatusOK)
	got := rec.Body.String()
	want := `{"data":{"events":[` +
		`{"id":"` + plans["e"].ID.String() + `","title":"No zones","start_date":"2021-02-10","start_time":"20:00:00",` +
		`"end_date":"2021-02-10","end_time":"21:00:00","min_price":null,"max_price":null},` +
		`{"id":"` + plans["a"].ID.String() + `","title":"Camela","start_date":"2021-06-30","start_time":"21:00:00",` +
		`"end_date":"2021-06-30","end_time":"22:00:00","min_price":15.00,"max_price":30.00}` +
		`]},"error":null}`
	if got != want {
		t.Errorf("GET /search body = %s\nwant %s", got, want)
	}
}

func TestSearchEmpty(t *testing.T) {
	tests := []struct {
		name  string
		plans map[string]catalog.Plan
		query string
	}{
		{"empty catalog", map[string]catalog.Plan{}, ""},
		{"no match", testPlans(t), "starts_at=2030-01-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(newTestHandler(t, tt.plans), http.MethodGet, "/search?"+tt.query)
			checkJSON(t, rec, http.StatusOK)
			if got, want := rec.Body.String(), `{"data":{"events":[]},"error":null}`; got != want {
				t.Errorf("GET /search?%s body = %s, want %s", tt.query, got, want)
			}
		})
	}
}

// TestSearchLarge covers responses larger than the pooled buffer, and a document
// larger than the buffer by itself.
func TestSearchLarge(t *testing.T) {
	plans := map[string]catalog.Plan{}
	for i := range 3000 {
		id := strconv.Itoa(i)
		plans[id] = newPlan(t, id, "Concierto número "+id, "2021-06-30 21:00:00", "2021-06-30 22:00:00", "15")
	}
	plans["huge"] = newPlan(t, "huge", strings.Repeat("<big> ", 10000), "2021-06-30 21:00:00", "2021-06-30 22:00:00")
	h := newTestHandler(t, plans)
	for range 2 { // the second time with pooled buffers
		rec := serve(h, http.MethodGet, "/search")
		checkJSON(t, rec, http.StatusOK)
		var resp searchResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		if got, want := len(resp.Data.Events), len(plans); got != want {
			t.Errorf("GET /search events = %d, want %d", got, want)
		}
	}
}

// swappingCatalog serves whatever index was stored last.
type swappingCatalog struct{ ix atomic.Pointer[catalog.Index] }

func (c *swappingCatalog) Index() *catalog.Index { return c.ix.Load() }

// TestSearchConcurrent searches from several goroutines while the index is replaced,
// for the race detector and the pooled buffers: every response must be the whole
// response of one index or the other.
func TestSearchConcurrent(t *testing.T) {
	small := catalog.NewIndex(1, []catalog.Plan{testPlans(t)["a"]}, EncodeEvent)
	list := make([]catalog.Plan, 0, 2000)
	for i := range cap(list) {
		id := strconv.Itoa(i)
		list = append(list, newPlan(t, id, "Plan "+id, "2021-06-30 21:00:00", "2021-06-30 22:00:00", "15"))
	}
	large := catalog.NewIndex(2, list, EncodeEvent) // larger than one pooled buffer
	wantSmall := serve(newTestHandler(t, map[string]catalog.Plan{"a": testPlans(t)["a"]}), http.MethodGet, "/search").Body.String()
	wantLarge := serve(New(fixedCatalog{ix: large}, slog.New(slog.DiscardHandler), Config{}), http.MethodGet, "/search").Body.String()

	var cat swappingCatalog
	cat.ix.Store(small)
	h := New(&cat, slog.New(slog.DiscardHandler), Config{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				rec := serve(h, http.MethodGet, "/search")
				if got := rec.Body.String(); got != wantSmall && got != wantLarge {
					t.Errorf("GET /search body of %d bytes is neither index's (%d or %d bytes)", len(got), len(wantSmall), len(wantLarge))
				}
				if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want {
					t.Errorf("Content-Length = %q, want %q", got, want)
				}
			}
		})
	}
	for i := range 200 {
		cat.ix.Store([]*catalog.Index{small, large}[i%2])
	}
	wg.Wait()
}

func TestSearchHead(t *testing.T) {
	h := newTestHandler(t, testPlans(t))
	get := serve(h, http.MethodGet, "/search")
	head := serve(h, http.MethodHead, "/search")
	if head.Code != http.StatusOK {
		t.Errorf("HEAD /search status = %d, want 200", head.Code)
	}
	if got, want := head.Header().Get("Content-Length"), strconv.Itoa(get.Body.Len()); got != want {
		t.Errorf("HEAD /search Content-Length = %q, want %q", got, want)
	}
	if head.Body.Len() != 0 {
		t.Errorf("HEAD /search body = %q, want none", head.Body)
	}
}

func TestSearchBadRequest(t *testing.T) {
	h := newTestHandler(t, testPlans(t))
	tests := []struct {
		name  string
		query string
		want  string
	}{
		{"malformed", "starts_at=2021-13-01",
			`starts_at: "2021-13-01": month out of range; use RFC 3339 (2021-02-01T00:00:00Z) or a date (2021-02-01)`},
		{"malformed ends_at", "ends_at=tomorrow",
			`ends_at: "tomorrow": not a date or time; use RFC 3339 (2021-02-01T00:00:00Z) or a date (2021-02-01)`},
		{"inverted", "starts_at=2021-08-01&ends_at=2021-07-01",
			"starts_at is after ends_at: 2021-08-01T00:00:00Z is after 2021-07-02T00:00:00Z"},
		{"repeated", "starts_at=2021-07-01&starts_at=2021-08-01", "starts_at: given 2 times; give it once"},
		{"query too long", "starts_at=2021-07-01&x=" + strings.Repeat("y", 5000),
			"query string: 5023 bytes, more than the 4096 accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(h, http.MethodGet, "/search?"+tt.query)
			checkJSON(t, rec, http.StatusBadRequest)
			got := decodeError(t, rec)
			if got.Error.Code != "bad_request" || got.Error.Message != tt.want {
				t.Errorf("GET /search?%.40s error = %q %q, want %q %q", tt.query, got.Error.Code, got.Error.Message, "bad_request", tt.want)
			}
		})
	}
}

func TestSearchNotLoaded(t *testing.T) {
	rec := serve(newTestHandler(t, nil), http.MethodGet, "/search")
	checkJSON(t, rec, http.StatusServiceUnavailable)
	if got := rec.Header().Get("Retry-After"); got == "" {
		t.Error("Retry-After missing")
	}
	got := decodeError(t, rec)
	if got.Error.Code != "unavailable" {
		t.Errorf("error code = %q, want unavailable", got.Error.Code)
	}
}

func TestUnmatchedRoutes(t *testing.T) {
	h := newTestHandler(t, testPlans(t))
	tests := []struct {
		name        string
		method      string
		target      string
		wantStatus  int
		wantCode    string
		wantMessage string
		wantAllow   string
	}{
		{"unknown path", http.MethodGet, "/events", http.StatusNotFound, "not_found", "not found: /events", ""},
		{"no index.html", http.MethodGet, "/index.html", http.StatusNotFound, "not_found", "not found: /index.html", ""},
		{"unknown console file", http.MethodGet, "/console/nope.js", http.StatusNotFound, "not_found", "not found: /console/nope.js", ""},
		{"unknown api path", http.MethodGet, "/api/v1/nope", http.StatusNotFound, "not_found", "not found: /api/v1/nope", ""},
		{"post console", http.MethodPost, "/", http.StatusMethodNotAllowed, "method_not_allowed",
			"method not allowed: POST /; allowed: GET, HEAD", "GET, HEAD"},
		{"trailing slash", http.MethodGet, "/search/", http.StatusNotFound, "not_found", "not found: /search/", ""},
		{"post search", http.MethodPost, "/search", http.StatusMethodNotAllowed, "method_not_allowed",
			"method not allowed: POST /search; allowed: GET, HEAD", "GET, HEAD"},
		{"delete health", http.MethodDelete, "/health", http.StatusMethodNotAllowed, "method_not_allowed",
			"method not allowed: DELETE /health; allowed: GET, HEAD", "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(h, tt.method, tt.target)
			checkJSON(t, rec, tt.wantStatus)
			got := decodeError(t, rec)
			if got.Error.Code != tt.wantCode || got.Error.Message != tt.wantMessage {
				t.Errorf("%s %s error = %q %q, want %q %q", tt.method, tt.target, got.Error.Code, got.Error.Message, tt.wantCode, tt.wantMessage)
			}
			if got := rec.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("%s %s Allow = %q, want %q", tt.method, tt.target, got, tt.wantAllow)
			}
		})
	}
}

func TestPanicIs500(t *testing.T) {
	var logs bytes.Buffer
	h := New(panickyCatalog{}, slog.New(slog.NewJSONHandler(&logs, nil)), Config{})
	rec := serve(h, http.MethodGet, "/search")
	checkJSON(t, rec, http.StatusInternalServerError)
	got := decodeError(t, rec)
	if got.Error.Code != "internal_error" || got.Error.Message != "internal error" {
		t.Errorf("error = %q %q, want internal_error, internal error", got.Error.Code, got.Error.Message)
	}
	if strings.Contains(rec.Body.String(), "exploded") {
		t.Errorf("body %s leaks the panic", rec.Body)
	}
	if !strings.Contains(logs.String(), "index exploded") || !strings.Contains(logs.String(), "panickyCatalog.Index") {
		t.Errorf("log %s lacks the panic and its stack", logs.String())
	}
}

func TestAbortHandlerPanicPropagates(t *testing.T) {
	h := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{})
	h.mux.HandleFunc("GET /abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler", v)
		}
	}()
	serve(h, http.MethodGet, "/abort")
}

func TestHealth(t *testing.T) {
	tests := []struct {
		name  string
		build BuildInfo
		want  string
	}{
		{"no build info", BuildInfo{}, `{"status":"healthy"}`},
		{"build info", BuildInfo{Version: "v1.2.3", Commit: "abc123"}, `{"status":"healthy","version":"v1.2.3","commit":"abc123"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not loaded: liveness does not depend on the catalog.
			h := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Build: tt.build})
			rec := serve(h, http.MethodGet, "/health")
			checkJSON(t, rec, http.StatusOK)
			if got := rec.Body.String(); got != tt.want {
				t.Errorf("GET /health = %s, want %s", got, tt.want)
			}
		})
	}
}

// readyResponse is the /ready body without latencies, which vary.
type readyResponse struct {
	Status string
	Checks map[string]string
}

func getReady(t *testing.T, h http.Handler) (int, readyResponse) {
	t.Helper()
	rec := serve(h, http.MethodGet, "/ready")
	var body struct {
		Status string `json:"status"`
		Checks map[string]struct {
			Status    string   `json:"status"`
			LatencyMS *float64 `json:"latency_ms"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("GET /ready body %s: %v", rec.Body, err)
	}
	got := readyResponse{Status: body.Status, Checks: map[string]string{}}
	for name, c := range body.Checks {
		if c.LatencyMS == nil || *c.LatencyMS < 0 {
			t.Errorf("GET /ready check %s latency_ms = %v, want a duration", name, c.LatencyMS)
		}
		got.Checks[name] = c.Status
	}
	return rec.Code, got
}

func TestReady(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("dial tcp 10.0.0.7:5432: connection refused") }
	loaded := fixedCatalog{ix: catalog.NewIndex(1, nil, EncodeEvent)}
	tests := []struct {
		name       string
		cat        fixedCatalog
		checks     map[string]Check
		wantStatus int
		want       readyResponse
	}{
		{"loaded, no other checks", loaded, nil, http.StatusOK,
			readyResponse{"ready", map[string]string{"catalog": "ok"}}},
		{"all pass", loaded, map[string]Check{"store": ok, "cache": ok}, http.StatusOK,
			readyResponse{"ready", map[string]string{"catalog": "ok", "store": "ok", "cache": "ok"}}},
		{"not loaded", fixedCatalog{}, map[string]Check{"store": ok}, http.StatusServiceUnavailable,
			readyResponse{"not_ready", map[string]string{"catalog": "failing", "store": "ok"}}},
		{"store down", loaded, map[string]Check{"store": down}, http.StatusServiceUnavailable,
			readyResponse{"not_ready", map[string]string{"catalog": "ok", "store": "failing"}}},
		{"catalog check replaced", fixedCatalog{}, map[string]Check{"catalog": ok}, http.StatusOK,
			readyResponse{"ready", map[string]string{"catalog": "ok"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(tt.cat, slog.New(slog.DiscardHandler), Config{Checks: tt.checks})
			status, got := getReady(t, h)
			if status != tt.wantStatus {
				t.Errorf("GET /ready status = %d, want %d", status, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("GET /ready (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadyDoesNotLeakErrors(t *testing.T) {
	down := func(context.Context) error { return errors.New("dial tcp 10.0.0.7:5432: connection refused") }
	h := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Checks: map[string]Check{"store": down}})
	rec := serve(h, http.MethodGet, "/ready")
	if strings.Contains(rec.Body.String(), "10.0.0.7") {
		t.Errorf("GET /ready body %s leaks a check's error", rec.Body)
	}
}

// TestReadyTimeout has a check that honours its context and one that ignores it: both
// are reported as timeouts, and /ready answers without waiting for the second.
func TestReadyTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	checks := map[string]Check{
		"slow":  func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
		"stuck": func(context.Context) error { <-release; return nil },
	}
	h := New(fixedCatalog{ix: catalog.NewIndex(1, nil, EncodeEvent)}, slog.New(slog.DiscardHandler),
		Config{Checks: checks, ReadyTimeout: 1})
	status, got := getReady(t, h)
	if status != http.StatusServiceUnavailable {
		t.Errorf("GET /ready status = %d, want 503", status)
	}
	if got.Checks["slow"] != "timeout" || got.Checks["stuck"] != "timeout" {
		t.Errorf("GET /ready checks = %v, want slow and stuck timed out", got.Checks)
	}
}

func TestOpenAPIJSON(t *testing.T) {
	h := newTestHandler(t, nil)
	rec := serve(h, http.MethodGet, "/openapi.json")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.json status = %d, want 200", rec.Code)
	}
	if got, want := rec.Header().Get("Content-Type"), "application/json; charset=utf-8"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("GET /openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.0.0" || len(doc.Servers) != 1 || doc.Servers[0].URL != "/" {
		t.Errorf("GET /openapi.json openapi %q servers %v, want 3.0.0 and one server /", doc.OpenAPI, doc.Servers)
	}
	for _, p := range []string{"/search", "/health", "/ready", "/openapi.json"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("GET /openapi.json lacks path %s", p)
		}
	}

	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("GET /openapi.json has no ETag")
	}
	req := httptest.NewRequest(http.MethodGet, "/openapi.json", nil)
	req.Header.Set("If-None-Match", etag)
	again := httptest.NewRecorder()
	h.ServeHTTP(again, req)
	if again.Code != http.StatusNotModified {
		t.Errorf("GET /openapi.json If-None-Match: %s status = %d, want 304", etag, again.Code)
	}
}

func TestOperationsOnly(t *testing.T) {
	h := New(nil, slog.New(slog.DiscardHandler), Config{Checks: map[string]Check{"broker": func(context.Context) error { return nil }}})
	for path, want := range map[string]int{"/health": 200, "/ready": 200, "/search": 404} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("GET %s = %d, want %d; body %s", path, rec.Code, want, rec.Body)
		}
	}
}
