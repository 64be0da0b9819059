package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
)

// writeEndpoints are the routes behind requireKey, with a body each accepts.
var writeEndpoints = []struct{ target, body string }{
	{"/api/v1/recalculate", ""},
	{"/api/v1/publish-market-event", `{"location":"madrid","demand":0.1}`},
}

func TestWriteEndpointsWithKeys(t *testing.T) {
	e := newPricingEnv(t, "first-key", "second key, longer")
	tests := []struct {
		name          string
		remoteAddr    string
		authorization string
		wantStatus    int
	}{
		{"no key", "192.0.2.1:1234", "", http.StatusUnauthorized},
		{"no key from loopback", "127.0.0.1:1234", "", http.StatusUnauthorized},
		{"wrong key", "192.0.2.1:1234", "Bearer second-key", http.StatusUnauthorized},
		{"prefix of a key", "192.0.2.1:1234", "Bearer first", http.StatusUnauthorized},
		{"key with a suffix", "192.0.2.1:1234", "Bearer first-key2", http.StatusUnauthorized},
		{"empty token", "192.0.2.1:1234", "Bearer ", http.StatusUnauthorized},
		{"basic scheme", "192.0.2.1:1234", "Basic first-key", http.StatusUnauthorized},
		{"key without scheme", "192.0.2.1:1234", "first-key", http.StatusUnauthorized},
		{"first key", "192.0.2.1:1234", "Bearer first-key", http.StatusAccepted},
		{"second key", "[2001:db8::1]:443", "Bearer second key, longer", http.StatusAccepted},
		{"scheme in lower case", "192.0.2.1:1234", "bearer first-key", http.StatusAccepted},
		{"key from loopback", "127.0.0.1:1234", "Bearer first-key", http.StatusAccepted},
	}
	for _, tt := range tests {
		for _, ep := range writeEndpoints {
			t.Run(tt.name+" "+ep.target, func(t *testing.T) {
				rec := e.serve(http.MethodPost, ep.target, ep.body, tt.remoteAddr, tt.authorization)
				checkJSON(t, rec, tt.wantStatus)
				if tt.wantStatus != http.StatusUnauthorized {
					return
				}
				if got := rec.Header().Get("WWW-Authenticate"); got != "Bearer" {
					t.Errorf("WWW-Authenticate = %q, want Bearer", got)
				}
				if got := decodeError(t, rec); got.Error.Code != "unauthorized" || !strings.Contains(got.Error.Message, "API key") {
					t.Errorf("error = %+v, want unauthorized naming the API key", got.Error)
				}
			})
		}
	}
	// Only the accepted requests did anything: one task and one event per accepted row.
	st, err := e.store.PricingState(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Requested != 4 || st.Events != 4 {
		t.Errorf("%d tasks requested and %d events recorded, want 4 and 4", st.Requested, st.Events)
	}
}

func TestWriteEndpointsWithoutKeys(t *testing.T) {
	e := newPricingEnv(t, "", "") // empty keys are no keys
	tests := []struct {
		remoteAddr string
		wantStatus int
	}{
		{"127.0.0.1:40000", http.StatusAccepted},
		{"127.8.9.10:1", http.StatusAccepted},
		{"[::1]:40000", http.StatusAccepted},
		{"[::ffff:127.0.0.1]:40000", http.StatusAccepted},
		{"192.0.2.1:1234", http.StatusForbidden},
		{"10.0.0.1:80", http.StatusForbidden},
		{"[2001:db8::1]:443", http.StatusForbidden},
		{"[::]:1", http.StatusForbidden},
		{"0.0.0.0:1", http.StatusForbidden},
		{"localhost:1", http.StatusForbidden}, // a name, not an address: never a connection's
		{"pipe", http.StatusForbidden},
	}
	for _, tt := range tests {
		for _, ep := range writeEndpoints {
			t.Run(tt.remoteAddr+" "+ep.target, func(t *testing.T) {
				rec := e.serve(http.MethodPost, ep.target, ep.body, tt.remoteAddr, "Bearer anything")
				checkJSON(t, rec, tt.wantStatus)
				if tt.wantStatus != http.StatusForbidden {
					return
				}
				if got := decodeError(t, rec); got.Error.Code != "forbidden" || !strings.Contains(got.Error.Message, "API_KEYS") {
					t.Errorf("error = %+v, want forbidden explaining API_KEYS", got.Error)
				}
			})
		}
	}
}

// TestReadEndpointsArePublic checks that the read endpoints need no key, from anywhere.
func TestReadEndpointsArePublic(t *testing.T) {
	e := newPricingEnv(t, "secret")
	plan := catalogtest.NewPlan("public", "1")
	e.upsert(t, plan)
	tests := []struct {
		method, target, body string
		wantStatus           int
	}{
		{http.MethodPost, "/api/v1/price", priceBody(onlyProduct(t, plan), "madrid", false), http.StatusOK},
		{http.MethodGet, "/api/v1/events/" + plan.ID.String() + "/products", "", http.StatusOK},
		{http.MethodGet, "/api/v1/tasks/" + plan.ID.String(), "", http.StatusNotFound},
	}
	for _, tt := range tests {
		rec := e.serve(tt.method, tt.target, tt.body, "198.51.100.7:5555", "")
		if rec.Code != tt.wantStatus {
			t.Errorf("%s %s = %d, want %d; body %s", tt.method, tt.target, rec.Code, tt.wantStatus, rec.Body)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"127.0.0.1:8000", true},
		{"127.255.255.254:1", true},
		{"[::1]:8000", true},
		{"[::ffff:127.0.0.1]:8000", true},
		{"127.0.0.1", true},
		{"::1", true},
		{"128.0.0.1:8000", false},
		{"192.168.1.10:8000", false},
		{"[::2]:8000", false},
		{"[fe80::1%lo]:8000", false},
		{"localhost:8000", false},
		{"", false},
		{"garbage", false},
	}
	for _, tt := range tests {
		if got := isLoopback(tt.give); got != tt.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		give   string
		want   string
		wantOK bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER  abc ", "abc", true},
		{"Bearer a b", "a b", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"Bearerabc", "", false},
		{"abc", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := bearerToken(tt.give)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", tt.give, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestWriteEndpointsOpenToAll(t *testing.T) {
	e := newPricingEnv(t)
	e.h = New(nil, e.log, Config{Pricing: e.h.pricing, AllowUnauthenticatedWrites: true})
	for _, ep := range writeEndpoints {
		rec := e.serve(http.MethodPost, ep.target, ep.body, "192.0.2.1:1234", "")
		checkJSON(t, rec, http.StatusAccepted)
	}
	// With keys, the setting changes nothing: a key is still needed.
	e.h = New(nil, e.log, Config{Pricing: e.h.pricing, APIKeys: []string{"a-key-of-16-chars"}, AllowUnauthenticatedWrites: true})
	for _, ep := range writeEndpoints {
		checkJSON(t, e.serve(http.MethodPost, ep.target, ep.body, "127.0.0.1:1234", ""), http.StatusUnauthorized)
	}
}

func TestJSONEndpointsNeedJSON(t *testing.T) {
	e := newPricingEnv(t)
	plan := catalogtest.NewPlan("json", "1")
	e.upsert(t, plan)
	bodies := map[string]string{
		"/api/v1/price":                priceBody(onlyProduct(t, plan), "madrid", false),
		"/api/v1/publish-market-event": `{"location":"madrid"}`,
		"/api/v1/recalculate":          `{}`,
	}
	tests := []struct {
		name        string
		contentType string
		wantStatus  int // 0: the endpoint's success
	}{
		{"json", "application/json", 0},
		{"json with utf-8", "application/json; charset=UTF-8", 0},
		{"json in upper case", "Application/JSON", 0},
		{"form", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"multipart", "multipart/form-data; boundary=x", http.StatusUnsupportedMediaType},
		{"text", "text/plain", http.StatusUnsupportedMediaType},
		{"json in latin-1", "application/json; charset=iso-8859-1", http.StatusUnsupportedMediaType},
		{"json suffix", "application/problem+json", http.StatusUnsupportedMediaType},
		{"malformed", "application/json; charset", http.StatusUnsupportedMediaType},
		{"none", "", http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		for target, body := range bodies {
			t.Run(tt.name+" "+target, func(t *testing.T) {
				req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
				req.RemoteAddr = "127.0.0.1:1"
				if tt.contentType != "" {
					req.Header.Set("Content-Type", tt.contentType)
				}
				rec := httptest.NewRecorder()
				e.h.ServeHTTP(rec, req)
				if tt.wantStatus == 0 {
					if rec.Code != http.StatusOK && rec.Code != http.StatusAccepted {
						t.Errorf("status = %d, want success; body %s", rec.Code, rec.Body)
					}
					return
				}
				checkJSON(t, rec, tt.wantStatus)
				if got := decodeError(t, rec); got.Error.Code != "unsupported_media_type" || !strings.Contains(got.Error.Message, "application/json") {
					t.Errorf("error = %+v, want unsupported_media_type naming application/json", got.Error)
				}
				if got := rec.Header().Get("Accept-Post"); got != "application/json" {
					t.Errorf("Accept-Post = %q, want application/json", got)
				}
			})
		}
	}
	// No body and no Content-Type: a recalculation needs nothing more.
	req := httptest.NewRequest(http.MethodPost, "/api/v1/recalculate", nil)
	req.RemoteAddr = "127.0.0.1:1"
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	checkJSON(t, rec, http.StatusAccepted)
}

func TestSecurityHeaders(t *testing.T) {
	e := newPricingEnv(t)
	ix := catalog.NewIndex(1, nil, EncodeEvent)
	h := New(fixedCatalog{ix: ix}, e.log, Config{Pricing: e.h.pricing})
	tests := []struct {
		method, target string
		wantStatus     int
		wantNoStore    bool
	}{
		{http.MethodGet, "/search", http.StatusOK, false},
		{http.MethodGet, "/search?starts_at=nope", http.StatusBadRequest, true},
		{http.MethodGet, "/nowhere", http.StatusNotFound, true},
		{http.MethodDelete, "/search", http.StatusMethodNotAllowed, true},
		{http.MethodGet, "/health", http.StatusOK, true},
		{http.MethodGet, "/ready", http.StatusOK, true},
		{http.MethodGet, "/metrics", http.StatusOK, false},
		{http.MethodGet, "/openapi.json", http.StatusOK, false},
		{http.MethodGet, "/docs", http.StatusOK, false},
		{http.MethodPost, "/api/v1/price", http.StatusBadRequest, true},
		{http.MethodGet, "/api/v1/tasks/" + catalogtest.NewPlan("h", "1").ID.String(), http.StatusNotFound, true},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.target, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.wantStatus {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.target, rec.Code, tt.wantStatus)
		}
		hd := rec.Header()
		if got := hd.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s: X-Content-Type-Options = %q, want nosniff", tt.method, tt.target, got)
		}
		if got := hd.Get("Referrer-Policy"); got != "no-referrer" {
			t.Errorf("%s %s: Referrer-Policy = %q, want no-referrer", tt.method, tt.target, got)
		}
		if got := hd.Get("Cache-Control"); tt.wantNoStore && got != "no-store" {
			t.Errorf("%s %s: Cache-Control = %q, want no-store", tt.method, tt.target, got)
		}
		if tt.wantStatus >= 400 && hd.Get("ETag") != "" {
			t.Errorf("%s %s: an error carries ETag %q", tt.method, tt.target, hd.Get("ETag"))
		}
	}
}
