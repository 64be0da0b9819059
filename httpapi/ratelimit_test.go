package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"boxoffice/catalog"
	"boxoffice/testenv"
)

// fakeClock is the limiter's clock in tests: it moves only when told.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// limitedAPI returns an API over an empty catalog with cfg's limits, on a fake clock.
func limitedAPI(t testing.TB, cfg Config) (*Handler, *fakeClock) {
	t.Helper()
	h := New(fixedCatalog{ix: catalog.NewIndex(1, nil, EncodeEvent)}, slog.New(slog.DiscardHandler), cfg)
	clock := &fakeClock{}
	clock.ns.Store(int64(time.Hour))
	h.limiter.now = clock.now
	return h, clock
}

// getFrom serves GET target from remoteAddr with the headers given as name, value pairs.
func getFrom(h http.Handler, target, remoteAddr string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.RemoteAddr = remoteAddr
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRateLimit(t *testing.T) {
	h, clock := limitedAPI(t, Config{RateLimits: RateLimits{Search: Rate{PerSecond: 1, Burst: 3}}})
	const client = "192.0.2.1:1234"
	for i := range 3 {
		if rec := getFrom(h, "/search", client); rec.Code != http.StatusOK {
			t.Fatalf("request %d within the burst = %d, want 200", i+1, rec.Code)
		}
	}
	rec := getFrom(h, "/search", client)
	checkJSON(t, rec, http.StatusTooManyRequests)
	if got := decodeError(t, rec); got.Error.Code != "rate_limited" {
		t.Errorf("error = %+v, want rate_limited", got.Error)
	}
	want := map[string]string{"Retry-After": "1", "Ratelimit-Limit": "3", "Ratelimit-Remaining": "0", "Ratelimit-Reset": "3", "Cache-Control": "no-store"}
	for name, v := range want {
		if got := rec.Header().Get(name); got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
	// Another client has its own budget; other classes are not limited.
	if rec := getFrom(h, "/search", "192.0.2.2:1234"); rec.Code != http.StatusOK {
		t.Errorf("another client = %d, want 200", rec.Code)
	}
	if rec := getFrom(h, "/openapi.json", client); rec.Code != http.StatusOK {
		t.Errorf("another class = %d, want 200", rec.Code)
	}
	// A second later one more request is admitted; after the reset, a whole burst.
	clock.advance(time.Second)
	if rec := getFrom(h, "/search", client); rec.Code != http.StatusOK {
		t.Errorf("after Retry-After = %d, want 200", rec.Code)
	}
	if rec := getFrom(h, "/search", client); rec.Code != http.StatusTooManyRequests {
		t.Errorf("right after = %d, want 429", rec.Code)
	}
	clock.advance(3 * time.Second)
	for i := range 3 {
		if rec := getFrom(h, "/search", client); rec.Code != http.StatusOK {
			t.Errorf("request %d after the reset = %d, want 200", i+1, rec.Code)
		}
	}
	// The operations routes are never limited.
	for range 10 {
		if rec := getFrom(h, "/health", client); rec.Code != http.StatusOK {
			t.Fatalf("GET /health = %d, want 200", rec.Code)
		}
	}
}

// TestRateLimitRereadsAStaleClock: a request whose clock reading is older than the
// bucket's time (its goroutine was descheduled after reading it while others were
// admitted) is refused only if a fresh reading refuses it too.
func TestRateLimitRereadsAStaleClock(t *testing.T) {
	h, clock := limitedAPI(t, Config{RateLimits: RateLimits{Search: Rate{PerSecond: 1, Burst: 1}}})
	var stale atomic.Bool
	h.limiter.now = func() int64 {
		if stale.CompareAndSwap(true, false) {
			return clock.now() - int64(2*time.Second)
		}
		return clock.now()
	}
	const client = "192.0.2.1:1234"
	if rec := getFrom(h, "/search", client); rec.Code != http.StatusOK {
		t.Fatalf("first request = %d, want 200", rec.Code)
	}
	clock.advance(time.Second)
	stale.Store(true)
	if rec := getFrom(h, "/search", client); rec.Code != http.StatusOK {
		t.Errorf("a request a second later, read on a stale clock = %d, want 200", rec.Code)
	}
	stale.Store(true)
	if rec := getFrom(h, "/search", client); rec.Code != http.StatusTooManyRequests {
		t.Errorf("a request over the limit, read on a stale clock = %d, want 429", rec.Code)
	}
}

func TestRateLimitByAPIKey(t *testing.T) {
	h, _ := limitedAPI(t, Config{APIKeys: []string{"key-number-one-0001", "key-number-two-0002"},
		RateLimits: RateLimits{Search: Rate{PerSecond: 1, Burst: 2}}})
	// A valid key is one client wherever it connects from.
	for i, addr := range []string{"192.0.2.1:1", "198.51.100.1:1"} {
		if rec := getFrom(h, "/search", addr, "Authorization", "Bearer key-number-one-0001"); rec.Code != http.StatusOK {
			t.Errorf("keyed request %d = %d, want 200", i+1, rec.Code)
		}
	}
	if rec := getFrom(h, "/search", "203.0.113.1:1", "Authorization", "Bearer key-number-one-0001"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("keyed request over the burst from a third address = %d, want 429", rec.Code)
	}
	if rec := getFrom(h, "/search", "192.0.2.1:1", "Authorization", "Bearer key-number-two-0002"); rec.Code != http.StatusOK {
		t.Errorf("the other key = %d, want 200", rec.Code)
	}
	// A made-up key is no new client: the address counts.
	for i, key := range []string{"made-up-1", "made-up-2"} {
		if rec := getFrom(h, "/search", "192.0.2.9:1", "Authorization", "Bearer "+key); rec.Code != http.StatusOK {
			t.Errorf("invalid key request %d = %d, want 200", i+1, rec.Code)
		}
	}
	if rec := getFrom(h, "/search", "192.0.2.9:1", "Authorization", "Bearer made-up-3"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("a third made-up key from one address = %d, want 429", rec.Code)
	}
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		trusted bool
		peer    string
		xff     []string
		want    string
	}{
		{"no proxies configured", false, "10.0.0.1:1", []string{"203.0.113.9"}, "10.0.0.1"},
		{"untrusted peer", true, "192.0.2.1:1", []string{"203.0.113.9"}, "192.0.2.1"},
		{"trusted peer, no header", true, "10.0.0.1:1", nil, "10.0.0.1"},
		{"trusted peer", true, "10.0.0.1:1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"spoofed left part ignored", true, "10.0.0.1:1", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"chain of proxies", true, "10.0.0.1:1", []string{"203.0.113.9, 10.0.0.2,10.0.0.3"}, "203.0.113.9"},
		{"all trusted", true, "10.0.0.1:1", []string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3"},
		{"header lines", true, "10.0.0.1:1", []string{"198.51.100.1", "203.0.113.9, 10.0.0.2"}, "203.0.113.9"},
		{"header lines, last trusted", true, "10.0.0.1:1", []string{"198.51.100.1", "10.0.0.2"}, "198.51.100.1"},
		{"garbage left of the client", true, "10.0.0.1:1", []string{"junk, 203.0.113.9"}, "203.0.113.9"},
		{"garbage from a proxy", true, "10.0.0.1:1", []string{"203.0.113.9, junk, 10.0.0.2"}, "10.0.0.2"},
		{"with a port", true, "10.0.0.1:1", []string{"203.0.113.9:4711"}, "203.0.113.9"},
		{"IPv6 by /64", true, "10.0.0.1:1", []string{"2001:db8:1:2:3:4:5:6"}, "2001:db8:1:2::"},
		{"IPv6 with a port", true, "10.0.0.1:1", []string{"[2001:db8::7]:80"}, "2001:db8::"},
		{"IPv6 peer", true, "[fd00::1]:1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"IPv4-mapped peer", true, "[::ffff:10.0.0.1]:1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"IPv4-mapped hop", true, "10.0.0.1:1", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{"empty entries", true, "10.0.0.1:1", []string{" , 203.0.113.9 ,, "}, "203.0.113.9"},
		{"not a TCP peer", true, "pipe", []string{"203.0.113.9"}, "invalid IP"},
	}
	for _, tt := range tests {
		l := &limiter{}
		if tt.trusted {
			l.trusted = trusted
		}
		req := httptest.NewRequest(http.MethodGet, "/search", nil)
		req.RemoteAddr = tt.peer
		req.Header["X-Forwarded-For"] = tt.xff
		if got := l.clientAddr(req).String(); got != tt.want {
			t.Errorf("%s: clientAddr(%s, %q) = %s, want %s", tt.name, tt.peer, tt.xff, got, tt.want)
		}
	}
}

// TestRateLimitTrustedProxies checks the header handling end to end: behind a trusted
// proxy each forwarded client has its own budget, while an untrusted peer's
// X-Forwarded-For changes nothing.
func TestRateLimitTrustedProxies(t *testing.T) {
	h, _ := limitedAPI(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		RateLimits: RateLimits{Search: Rate{PerSecond: 1, Burst: 1}}})
	for _, client := range []string{"203.0.113.1", "203.0.113.2"} {
		if rec := getFrom(h, "/search", "10.0.0.1:1", "X-Forwarded-For", client); rec.Code != http.StatusOK {
			t.Errorf("forwarded client %s = %d, want 200", client, rec.Code)
		}
	}
	if rec := getFrom(h, "/search", "10.0.0.1:1", "X-Forwarded-For", "203.0.113.1"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("forwarded client again = %d, want 429", rec.Code)
	}
	if rec := getFrom(h, "/search", "192.0.2.1:1", "X-Forwarded-For", "203.0.113.3"); rec.Code != http.StatusOK {
		t.Errorf("untrusted peer = %d, want 200", rec.Code)
	}
	if rec := getFrom(h, "/search", "192.0.2.1:1", "X-Forwarded-For", "203.0.113.4"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("untrusted peer with another X-Forwarded-For = %d, want 429: its header is ignored", rec.Code)
	}
}

// TestRateLimitForgetsIdleClients checks that the limiter's memory follows the clients
// active within a bucket's refill time, not every client ever seen.
func TestRateLimitForgetsIdleClients(t *testing.T) {
	h, clock := limitedAPI(t, Config{RateLimits: RateLimits{Search: Rate{PerSecond: 10, Burst: 10}}})
	l := h.limiter
	for i := range 200_000 {
		k := clientKey{addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), class: classSearch}
		if ok, _, _ := l.bucket(k, l.now()).take(l.now(), &l.classes[classSearch]); !ok {
			t.Fatalf("client %s refused", k.addr)
		}
		clock.advance(time.Millisecond) // a bucket is full again 100ms after its one request
	}
	total := 0
	for i := range h.limiter.shards {
		total += len(h.limiter.shards[i].buckets)
	}
	if total > limiterShards*2*minSweep {
		t.Errorf("%d buckets kept for 200000 one-off clients, want at most %d", total, limiterShards*2*minSweep)
	}
}

// memoryRates is a SharedRates in memory, shared by the Handlers of a test, with GCRA
// as Redis runs it; fail makes it fail.
type memoryRates struct {
	mu    sync.Mutex
	clock *fakeClock
	tats  map[string]int64
	fail  atomic.Bool
	takes atomic.Int64
}

func (m *memoryRates) Take(_ context.Context, key string, perSecond float64, burst, n int) (time.Duration, error) {
	if m.fail.Load() {
		return 0, errors.New("connection refused")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.takes.Add(1)
	now := m.clock.now()
	interval := int64(float64(time.Second) / perSecond)
	tat := max(m.tats[key], now)
	for range n {
		if tat+interval-interval*int64(burst) > now {
			break // beyond the budget: not recorded
		}
		tat += interval
	}
	m.tats[key] = tat
	return time.Duration(tat - now), nil
}

// syncOnce waits for one report of h's limiter to SharedRates to complete.
func syncOnce(t *testing.T, h *Handler) {
	t.Helper()
	n := h.limiter.syncs.Load()
	testenv.Poll(t, "a report to the shared rate limits", func() bool { return h.limiter.syncs.Load() >= n+2 })
}

// TestSharedRateLimits checks that two instances with one SharedRates share each
// client's budget: what one admitted, the other refuses once it has reported.
func TestSharedRateLimits(t *testing.T) {
	clock := &fakeClock{}
	clock.ns.Store(int64(time.Hour))
	shared := &memoryRates{clock: clock, tats: map[string]int64{}}
	cfg := Config{SharedRates: shared, RateLimits: RateLimits{Search: Rate{PerSecond: 0.1, Burst: 5}}}
	a, _ := limitedAPI(t, cfg)
	b, _ := limitedAPI(t, cfg)
	a.limiter.now, b.limiter.now = clock.now, clock.now
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, h := range []*Handler{a, b} {
		wg.Go(func() { h.Run(ctx) })
	}
	defer func() { cancel(); wg.Wait() }()

	checkSharedBudget(t, a, b, "192.0.2.1:1", 5)
	// Another client is unaffected.
	if rec := getFrom(b, "/search", "192.0.2.2:1"); rec.Code != http.StatusOK {
		t.Errorf("another client = %d, want 200", rec.Code)
	}
}

// checkSharedBudget spends client's budget of burst searches on a, then checks that b
// refuses the client once it has reported its own first request: b admits that one on
// its own, learns at its report that the budget is spent, and refuses the next, where
// an instance limiting on its own would admit burst of them.
func checkSharedBudget(t *testing.T, a, b *Handler, client string, burst int) {
	t.Helper()
	for i := range burst {
		if rec := getFrom(a, "/search", client); rec.Code != http.StatusOK {
			t.Fatalf("request %d to a = %d, want 200", i+1, rec.Code)
		}
	}
	syncOnce(t, a)
	if rec := getFrom(b, "/search", client); rec.Code != http.StatusOK {
		t.Fatalf("first request to b = %d, want 200 (b has not reported yet)", rec.Code)
	}
	syncOnce(t, b)
	rec := getFrom(b, "/search", client)
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("request to b after its report = %d, want 429: the budget is shared", rec.Code)
	}
	if got := rec.Header().Get("Retry-After"); got == "" {
		t.Error("no Retry-After")
	}
}

// TestSharedRateLimitsDown checks that a failing SharedRates leaves each instance
// limiting on its own: requests are served within the local budget, never failed.
func TestSharedRateLimitsDown(t *testing.T) {
	clock := &fakeClock{}
	shared := &memoryRates{clock: clock, tats: map[string]int64{}}
	shared.fail.Store(true)
	h, local := limitedAPI(t, Config{SharedRates: shared, RateLimits: RateLimits{Search: Rate{PerSecond: 1, Burst: 3}}})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { h.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	for i := range 3 {
		if rec := getFrom(h, "/search", "192.0.2.1:1"); rec.Code != http.StatusOK {
			t.Fatalf("request %d = %d, want 200", i+1, rec.Code)
		}
		syncOnce(t, h)
	}
	if rec := getFrom(h, "/search", "192.0.2.1:1"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("over the local budget = %d, want 429", rec.Code)
	}
	local.advance(time.Second)
	if rec := getFrom(h, "/search", "192.0.2.1:1"); rec.Code != http.StatusOK {
		t.Errorf("after a second = %d, want 200", rec.Code)
	}
	// Back up, the shared state applies again.
	shared.fail.Store(false)
	getFrom(h, "/search", "192.0.2.5:1")
	testenv.Poll(t, "a report after recovery", func() bool { return shared.takes.Load() > 0 })
}
