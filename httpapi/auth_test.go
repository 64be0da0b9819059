package httpapi

import (
	"net/http"
	"strings"
	"testing"

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
