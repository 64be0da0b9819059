package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"boxoffice/catalog"
	"boxoffice/providersim"
	"boxoffice/sqlite"
	"boxoffice/testenv"
)

// event is the spec's EventSummary.
type event struct {
	ID        string   `json:"id"`
	Title     string   `json:"title"`
	StartDate string   `json:"start_date"`
	StartTime string   `json:"start_time"`
	EndDate   string   `json:"end_date"`
	EndTime   string   `json:"end_time"`
	MinPrice  *float64 `json:"min_price"`
	MaxPrice  *float64 `json:"max_price"`
}

func price(f float64) *float64 { return &f }

// sample builds the event that the provider's samples give for base/plan.
func sample(base, plan, title, date, start, end string, lo, hi float64) event {
	return event{ID: catalog.NewID("fever", base, plan).String(), Title: title, StartDate: date, StartTime: start,
		EndDate: date, EndTime: end, MinPrice: price(lo), MaxPrice: price(hi)}
}

// The search results expected after each sample response, for the whole of 2021:
// response 2 drops 322 (it must stay, with its values) and moves 1591's end to 21:20;
// response 3 moves 291's end to 21:30 and 1591's back to 21:00. 444 is offline with
// impossible dates throughout and never appears.
var (
	pantomima1642 = sample("322", "1642", "Pantomima Full", "2021-02-10", "20:00:00", "21:30:00", 55, 55)
	pantomima1643 = sample("322", "1643", "Pantomima Full", "2021-02-11", "20:00:00", "21:30:00", 55, 55)
	camela        = sample("291", "291", "Camela en concierto", "2021-06-30", "21:00:00", "22:00:00", 15, 30)
	morancos      = sample("1591", "1642", "Los Morancos", "2021-07-31", "20:00:00", "21:00:00", 65, 75)

	afterResponse1 = []event{pantomima1642, pantomima1643, camela, morancos}
	afterResponse2 = []event{pantomima1642, pantomima1643, camela, with(morancos, "21:20:00")}
	afterResponse3 = []event{pantomima1642, pantomima1643, with(camela, "21:30:00"), morancos}
)

func with(e event, endTime string) event {
	e.EndTime = endTime
	return e
}

const year2021 = "/search?starts_at=2021-01-01&ends_at=2021-12-31"

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startRun runs `boxoffice run` in-process with env and waits for /health. It returns
// the base URL and a function that stops the server and checks it stopped cleanly.
func startRun(t *testing.T, env map[string]string) (string, func()) {
	t.Helper()
	return startCmd(t, "run", env)
}

// startCmd runs the service command cmd in-process like startRun, with flags after
// the command's name.
func startCmd(t *testing.T, cmd string, env map[string]string, flags ...string) (string, func()) {
	t.Helper()
	base, stop, _ := startCmdLogs(t, cmd, env, flags...)
	return base, stop
}

// startCmdLogs is startCmd that also returns what the command logs.
func startCmdLogs(t *testing.T, cmd string, env map[string]string, flags ...string) (string, func(), *testenv.Logs) {
	t.Helper()
	logs := &testenv.Logs{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	args := append([]string{cmd, "--env-file", filepath.Join(t.TempDir(), "absent.env")}, flags...)
	go func() { done <- run(ctx, args, func(k string) string { return env[k] }, io.Discard, logs) }()
	base := "http://" + env["HTTP_ADDR"]
	testenv.Poll(t, "/health", func() bool {
		select {
		case err := <-done:
			t.Fatalf("run() = %v before serving; logs:\n%s", err, logs)
		default:
		}
		resp, err := http.Get(base + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run() = %v on a clean stop, want nil; logs:\n%s", err, logs)
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("server logs:\n%s", logs)
		}
	})
	return base, stop, logs
}

// searchBody returns the status and body of a GET.
func searchBody(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, body
}

func decodeEvents(t *testing.T, body []byte) []event {
	t.Helper()
	var doc struct {
		Data struct {
			Events []event `json:"events"`
		} `json:"data"`
		Error any `json:"error"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Error != nil {
		t.Fatalf("search body %s: %v", body, err)
	}
	return doc.Data.Events
}

// waitEvents polls a search until it returns want.
func waitEvents(t *testing.T, url string, want []event) []byte {
	t.Helper()
	var body []byte
	var got []event
	deadline := time.Now().Add(testenv.PollTimeout) // a large catalog under -race on a loaded machine took 30 s
	for {
		status := 0
		if resp, err := http.Get(url); err == nil { // not listening yet: poll again
			status = resp.StatusCode
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				status = 0
			}
		}
		if status == http.StatusOK {
			got = decodeEvents(t, body)
			if gocmp.Equal(want, got) {
				return body
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: status %d (-want +got):\n%s", url, status, gocmp.Diff(want, got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunSyncSequence drives the provider through response 1, 2, a malformed document,
// an HTTP 500, a response slower than the timeout, and response 3, checking the
// searches after each; then restarts with the provider down.
func TestRunSyncSequence(t *testing.T) {
	sim := providersim.New(providersim.Config{Mode: providersim.Sequence, Sequence: "1,2,malformed,500,slow,3", SlowDelay: time.Minute})
	// The 4th call (the 500) waits at a gate, so the test can look at the catalog after
	// the malformed document and before anything else happens.
	var calls atomic.Int32
	gate, atGate := make(chan struct{}), make(chan struct{})
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 4 {
			close(atGate)
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(provider.Close)
	t.Cleanup(func() { sim.Close() })

	dataDir := t.TempDir()
	env := map[string]string{
		"HTTP_ADDR":             freeAddr(t),
		"DATA_DIR":              dataDir,
		"EXTERNAL_API_URL":      provider.URL + "/api/events",
		"SYNC_INTERVAL_SECONDS": "0.2",
		"API_TIMEOUT_SECONDS":   "0.5",
	}
	base, stop := startRun(t, env)

	waitEvents(t, base+year2021, afterResponse1)
	waitEvents(t, base+year2021, afterResponse2)
	<-atGate // the malformed document's sync is over
	if _, body := searchBody(t, base+year2021); !gocmp.Equal(afterResponse2, decodeEvents(t, body)) {
		t.Errorf("after the malformed document (-want +got):\n%s", gocmp.Diff(afterResponse2, decodeEvents(t, body)))
	}
	close(gate)
	// The 500 and the slow response are retried within their sync; response 3 lands.
	final := waitEvents(t, base+year2021, afterResponse3)
	if n := calls.Load(); n < 6 {
		t.Errorf("provider called %d times, want at least 6", n)
	}

	// The challenge's own example window holds the same plans.
	waitEvents(t, base+"/search?starts_at=2021-02-01T00:00:00Z&ends_at=2022-07-03T00:00:00Z", afterResponse3)
	// Containment: a window that cuts Camela's end leaves it out.
	waitEvents(t, base+"/search?starts_at=2021-06-30T21:00:00&ends_at=2021-06-30T21:29:59", []event{})
	waitEvents(t, base+"/search?starts_at=2021-06-30T21:00:00&ends_at=2021-06-30T21:30:00", []event{with(camela, "21:30:00")})
	stop()

	// Restart on the same data with the provider gone: the same plans, byte for byte.
	provider.Close()
	env["HTTP_ADDR"] = freeAddr(t)
	env["EXTERNAL_API_URL"] = "http://" + freeAddr(t) + "/api/events"
	base, _ = startRun(t, env)
	if status, body := searchBody(t, base+year2021); status != http.StatusOK || !bytes.Equal(body, final) {
		t.Errorf("after a restart with the provider down: status %d, body\n%s\nwant\n%s", status, body, final)
	}
}

// startSampleRun runs `boxoffice run` on the simulator's first sample response, waits
// for its plans to be served, and returns the base URL.
func startSampleRun(t *testing.T) string {
	t.Helper()
	sim := providersim.New(providersim.DefaultConfig())
	provider := httptest.NewServer(sim)
	t.Cleanup(provider.Close)
	base, _ := startRun(t, map[string]string{
		"HTTP_ADDR":        freeAddr(t),
		"DATA_DIR":         t.TempDir(),
		"EXTERNAL_API_URL": provider.URL + "/api/events",
	})
	waitEvents(t, base+year2021, afterResponse1)
	return base
}

// TestRunRejectsBadSearches checks the error contract through the whole server.
func TestRunRejectsBadSearches(t *testing.T) {
	base := startSampleRun(t)
	tests := []struct {
		query string
		want  int
	}{
		{"?starts_at=2021-13-01", http.StatusBadRequest},
		{"?starts_at=2021-09-31", http.StatusBadRequest},
		{"?starts_at=2022-01-01&ends_at=2021-01-01", http.StatusBadRequest},
		{"?starts_at=yesterday", http.StatusBadRequest},
		{"?starts_at=2021-01-01&starts_at=2021-02-01", http.StatusBadRequest},
		{"?ends_at=2021-07-31", http.StatusOK},
	}
	for _, tt := range tests {
		status, body := searchBody(t, base+"/search"+tt.query)
		var doc struct {
			Data  any `json:"data"`
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Errorf("GET /search%s: body %s is not JSON: %v", tt.query, body, err)
			continue
		}
		if status != tt.want {
			t.Errorf("GET /search%s = %d, want %d", tt.query, status, tt.want)
		}
		if tt.want == http.StatusBadRequest && (doc.Data != nil || doc.Error == nil || doc.Error.Code == "" || doc.Error.Message == "") {
			t.Errorf("GET /search%s: body %s, want {\"data\":null,\"error\":{code,message}}", tt.query, body)
		}
	}
}

// apiStatus is the data of GET /api/v1/status.
type apiStatus struct {
	Catalog *struct {
		Version int64 `json:"version"`
		Plans   *int  `json:"plans"`
	} `json:"catalog"`
	Pricing *struct {
		Version int64 `json:"version"`
	} `json:"pricing"`
	DeadLetters *struct {
		Total  int            `json:"total"`
		Topics map[string]int `json:"topics"`
	} `json:"dead_letters"`
	Unavailable []string `json:"unavailable"`
}

// getStatus returns the status of the API at base, decoded, and its body.
func getStatus(t *testing.T, base string) (apiStatus, []byte) {
	t.Helper()
	status, body := searchBody(t, base+"/api/v1/status")
	var doc struct {
		Data apiStatus `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || status != http.StatusOK {
		t.Fatalf("GET %s/api/v1/status = %d %s (%v)", base, status, body, err)
	}
	return doc.Data, body
}

// TestRunServesConsole checks that boxoffice run serves the console at / and, for it,
// a status read from every part of the embedded mode: the index, the store's pricing
// and the broker's dead letters.
func TestRunServesConsole(t *testing.T) {
	base := startSampleRun(t)
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!bytes.Contains(page, []byte(`<script src="/console/console.js"`)) {
		t.Errorf("GET / = %d %s (%v), want the console page:\n%.300s", resp.StatusCode, resp.Header.Get("Content-Type"), err, page)
	}
	d, body := getStatus(t, base)
	if d.Catalog == nil || d.Catalog.Version < 1 || d.Catalog.Plans == nil || *d.Catalog.Plans < len(afterResponse1) ||
		d.Pricing == nil || d.DeadLetters == nil || d.DeadLetters.Total != 0 || len(d.DeadLetters.Topics) != len(topics) ||
		len(d.Unavailable) != 0 {
		t.Errorf("GET /api/v1/status = %s, want every part read: the catalog loaded, no dead letters on each topic", body)
	}
}

func TestRunStopsOnBadEnv(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SYNC_INTERVAL_SECONDS": "5m"}, `SYNC_INTERVAL_SECONDS: not a number: "5m"`},
		{map[string]string{"EXTERNAL_API_URL": "not a url"}, "EXTERNAL_API_URL"},
		{map[string]string{"HTTP_ADDR": "127.0.0.1:http-ish"}, "HTTP_ADDR"},
	}
	for _, tt := range tests {
		tt.env["DATA_DIR"] = t.TempDir()
		err := run(t.Context(), []string{"run", "--env-file", filepath.Join(t.TempDir(), "none")},
			func(k string) string { return tt.env[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run() with %v = %v, want an error containing %q", tt.env, err, tt.want)
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"version"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out.Bytes(), []byte("boxoffice ")) {
		t.Errorf("version printed %q", out.String())
	}
}

// gatedProvider serves sim, holding call n of gates at a gate until release(n) is called,
// and reporting through arrived(n) when that call came: by then every earlier call's
// sync is over, since a syncer makes one call at a time.
type gatedProvider struct {
	sim   *providersim.Server
	calls atomic.Int32
	gates map[int]chan struct{} // closed to let call n through
	came  map[int]chan struct{} // closed when call n arrives
}

func newGatedProvider(sim *providersim.Server, gates ...int) *gatedProvider {
	g := &gatedProvider{sim: sim, gates: map[int]chan struct{}{}, came: map[int]chan struct{}{}}
	for _, n := range gates {
		g.gates[n], g.came[n] = make(chan struct{}), make(chan struct{})
	}
	return g
}

func (g *gatedProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(g.calls.Add(1))
	if gate, ok := g.gates[n]; ok {
		close(g.came[n])
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	g.sim.ServeHTTP(w, r)
}

func (g *gatedProvider) arrived(n int) <-chan struct{} { return g.came[n] }
func (g *gatedProvider) release(n int)                 { close(g.gates[n]) }

// TestRunSyntheticChurn syncs a churning synthetic catalog through faults (errors,
// malformed and truncated documents, hangs) and checks that the searches equal the
// simulator's own account of what a correct ingest makes searchable.
func TestRunSyntheticChurn(t *testing.T) {
	cfg := providersim.Config{
		Mode: providersim.Synthetic, Seed: 7, BasePlans: 150, Plans: 4, Zones: 3,
		VanishRate: 0.2, PriceChangeRate: 0.3, TimeChangeRate: 0.3, SellModeFlipRate: 0.2,
		InvalidDateRate: 0.05, OfflineRate: 0.3,
		ErrorRate: 0.15, MalformedRate: 0.1, TruncateRate: 0.1, HangRate: 0.05,
	}
	sim := providersim.New(cfg)
	t.Cleanup(func() { sim.Close() })
	// Checkpoints after the 3rd and the 7th document served whole.
	var whole, checkpoints []int
	for call := 1; len(checkpoints) < 2; call++ {
		if sim.Step(call).Kind == providersim.StepServe {
			whole = append(whole, call)
			if len(whole) == 3 || len(whole) == 7 {
				checkpoints = append(checkpoints, call+1)
			}
		}
	}
	gp := newGatedProvider(sim, checkpoints...)
	provider := httptest.NewServer(gp)
	t.Cleanup(provider.Close)
	// The timeout cuts the hangs, and must never cut a document served whole, which the
	// checks count as applied: on a loaded machine a healthy answer once took more
	// than 0.5 s to send its headers, and the test failed.
	base, _ := startRun(t, map[string]string{
		"HTTP_ADDR":             freeAddr(t),
		"DATA_DIR":              t.TempDir(),
		"EXTERNAL_API_URL":      provider.URL + "/api/events",
		"SYNC_INTERVAL_SECONDS": "0.05",
		"API_TIMEOUT_SECONDS":   "3",
	})
	for _, gate := range checkpoints {
		<-gp.arrived(gate)
		var served []int
		for _, call := range whole {
			if call < gate {
				served = append(served, call)
			}
		}
		want := searchable(t, sim, served)
		if len(want) < 100 {
			t.Fatalf("only %d searchable plans after calls %v: the test would prove little", len(want), served)
		}
		waitEvents(t, base+"/search", want)
		gp.release(gate)
	}
}

// TestRunBeyondIndexBudget runs a catalog larger than INDEX_MAX_BYTES: it is never
// indexed, and searches read the store, with the same answers, while /ready says ready.
// The whole catalog's window is larger than an L1 entry (L1_CACHE_MAX_BYTES / 16): it
// is streamed from the store, plain and gzipped, with the same bytes; a one-day window
// is read whole and cached. SEARCH_TIMEOUT_SECONDS is raised from its 2 s so that a
// loaded machine does not turn the store's reads into 504s (this test is not about
// deadlines).
func TestRunBeyondIndexBudget(t *testing.T) {
	_, providerURL, want := syntheticProvider(t, providersim.Config{Mode: providersim.Synthetic, Seed: 11, BasePlans: 1500, Plans: 4, Zones: 2})
	if len(want)*200 < 1<<20 {
		t.Fatalf("%d plans would fit a 1 MiB index: the test would prove nothing", len(want))
	}
	base, _ := startRun(t, map[string]string{
		"HTTP_ADDR":              freeAddr(t),
		"DATA_DIR":               t.TempDir(),
		"EXTERNAL_API_URL":       providerURL,
		"INDEX_MAX_BYTES":        "1048576",
		"L1_CACHE_MAX_BYTES":     "1048576",
		"SEARCH_TIMEOUT_SECONDS": "20",
	})
	// Each poll of the whole window reads it from the store; polling it while the sync
	// runs takes CPU the sync needs (seconds a poll under -race): wait for the sync first.
	testenv.Poll(t, "the sync", func() bool { return providerStatuses(t, base)["fever"].Outcome == "ok" })
	plain := waitEvents(t, base+"/search", want)
	if len(plain) < 4*(1<<20)/16 {
		t.Fatalf("the whole window is %d bytes: not larger than an L1 entry, so not streamed", len(plain))
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/search", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatalf("gzipped whole window: %v", err)
	}
	if zipped, err := io.ReadAll(zr); err != nil || resp.ContentLength != -1 || !bytes.Equal(zipped, plain) {
		t.Errorf("gzipped whole window: %d bytes (%v), Content-Length %d; want the plain response's %d bytes, streamed",
			len(zipped), err, resp.ContentLength, len(plain))
	}
	if status, body := searchBody(t, base+"/ready"); status != http.StatusOK {
		t.Errorf("/ready = %d %s beyond the budget, want 200: searches are served", status, body)
	}
	_, metrics := searchBody(t, base+"/metrics")
	for _, line := range []string{"boxoffice_search_index_over_budget 1", "boxoffice_search_index_plans 0"} {
		if !strings.Contains(string(metrics), "\n"+line+"\n") {
			t.Errorf("/metrics lacks %q: the catalog was indexed after all", line)
		}
	}
	var m map[string]any
	status, body := searchBody(t, base+"/search?starts_at="+want[10].StartDate+"&ends_at="+want[10].StartDate)
	if err := json.Unmarshal(body, &m); status != http.StatusOK || err != nil {
		t.Errorf("a one-day window = %d %s", status, body)
	}
}

// TestAPIRefusesToStartWithoutKeys checks that a distributed api cannot be started with
// its write endpoints open by omission: without API_KEYS it stops before opening
// anything, naming the variable, unless ALLOW_UNAUTHENTICATED_WRITES=true says so.
func TestAPIRefusesToStartWithoutKeys(t *testing.T) {
	env := map[string]string{"HTTP_ADDR": "127.0.0.1:0", "DATABASE_WRITE_URL": "postgres://127.0.0.1:1/none",
		"BROKER_URL": "amqp://127.0.0.1:1/", "REDIS_URL": "redis://127.0.0.1:1/0"}
	err := run(t.Context(), []string{"api", "--env-file", filepath.Join(t.TempDir(), "none")},
		func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "API_KEYS is required") || !strings.Contains(err.Error(), "ALLOW_UNAUTHENTICATED_WRITES") {
		t.Errorf("api without API_KEYS: run() = %v, want an error naming API_KEYS and ALLOW_UNAUTHENTICATED_WRITES", err)
	}
	// Allowed, it needs a cursor key its instances share, which API_KEYS would give.
	env["ALLOW_UNAUTHENTICATED_WRITES"] = "true"
	err = run(t.Context(), []string{"api", "--env-file", filepath.Join(t.TempDir(), "none")},
		func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "CURSOR_SECRET is required") {
		t.Errorf("api with ALLOW_UNAUTHENTICATED_WRITES=true and neither API_KEYS nor CURSOR_SECRET: run() = %v, want an error naming CURSOR_SECRET", err)
	}
	// With it, it goes on to open the store, which is absent here: a different error.
	env["CURSOR_SECRET"] = strings.Repeat("k", 32)
	err = run(t.Context(), []string{"api", "--env-file", filepath.Join(t.TempDir(), "none")},
		func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || strings.Contains(err.Error(), "API_KEYS") || strings.Contains(err.Error(), "CURSOR_SECRET") {
		t.Errorf("api with ALLOW_UNAUTHENTICATED_WRITES=true and CURSOR_SECRET: run() = %v, want an error about the store only", err)
	}
	env["ALLOW_UNAUTHENTICATED_WRITES"] = "yes please"
	err = run(t.Context(), []string{"api", "--env-file", filepath.Join(t.TempDir(), "none")},
		func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `ALLOW_UNAUTHENTICATED_WRITES: not true or false: "yes please"`) {
		t.Errorf("run() = %v, want the bad value named", err)
	}
}

// TestRunProviderOverLimit serves response 1, then a document over PROVIDER_MAX_BYTES:
// that sync fails, publishes nothing, and response 1 stays what is served.
func TestRunProviderOverLimit(t *testing.T) {
	_, providerURL := startSim(t, providersim.Config{Mode: providersim.Sequence, Sequence: "1,synthetic",
		Seed: 5, BasePlans: 40, Plans: 100, Zones: 2})
	base, _ := startRun(t, map[string]string{
		"HTTP_ADDR":             freeAddr(t),
		"DATA_DIR":              t.TempDir(),
		"EXTERNAL_API_URL":      providerURL,
		"SYNC_INTERVAL_SECONDS": "0.05",
		"PROVIDER_MAX_BYTES":    "1048576",
	})
	waitEvents(t, base+year2021, afterResponse1)
	testenv.Poll(t, "a sync failed on the large document", func() bool {
		_, body := searchBody(t, base+"/metrics")
		v, ok := metricValue(string(body), `boxoffice_sync_total{outcome="failed",provider="fever"}`)
		return ok && v >= 2
	})
	if _, body := searchBody(t, base+"/search"); len(decodeEvents(t, body)) != len(afterResponse1) {
		t.Errorf("search after documents over the limit: %s, want response 1's %d plans only", body, len(afterResponse1))
	}
}

// startSim serves a simulator of cfg until the test ends, and returns it with the URL of
// its catalog.
func startSim(t *testing.T, cfg providersim.Config) (*providersim.Server, string) {
	t.Helper()
	sim := providersim.New(cfg)
	t.Cleanup(func() { sim.Close() })
	provider := httptest.NewServer(sim)
	t.Cleanup(provider.Close)
	return sim, provider.URL + "/api/events"
}

// TestRunRefusesASecondOnOneDataDir: a second `boxoffice run` on a data directory that a
// running one uses exits with an error naming the lock, rather than running a second
// consumer of the embedded queue (it would take the first one's deliveries again) and a
// second ingest leader; the first keeps serving.
func TestRunRefusesASecondOnOneDataDir(t *testing.T) {
	dataDir := t.TempDir()
	env := map[string]string{"HTTP_ADDR": freeAddr(t), "DATA_DIR": dataDir, "SYNC_INTERVAL_SECONDS": "3600"}
	base, stop := startRun(t, env)
	defer stop()

	second := map[string]string{"HTTP_ADDR": freeAddr(t), "DATA_DIR": dataDir, "SYNC_INTERVAL_SECONDS": "3600"}
	_, err := runOnce(t, second, "run")
	if !errors.Is(err, sqlite.ErrInUse) || !strings.Contains(err.Error(), sqlite.ConsumerLockFileName) {
		t.Fatalf("second run on one DATA_DIR = %v, want ErrInUse naming %s", err, sqlite.ConsumerLockFileName)
	}
	resp, err := http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the first run's /health = %d after the second was refused, want 200", resp.StatusCode)
	}
}
