package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"boxoffice/catalog"
	"boxoffice/pricing"
	"boxoffice/providersim"
	"boxoffice/testenv"
)

// proc is a boxoffice process started by a test.
type proc struct {
	name string
	cmd  *exec.Cmd
	logs *testenv.Logs
	done chan struct{} // closed when the process has exited; err is set by then
	err  error
}

// startProc starts bin with args and env; t.Cleanup stops it with SIGTERM and, if the
// test failed, prints the tail of its logs.
func startProc(t *testing.T, bin, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), logs: &testenv.Logs{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Dir = t.TempDir()
	p.cmd.Stderr = p.logs
	dieWithTest(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			logs := p.logs.String()
			t.Logf("%s logs (last 3000 bytes):\n%s", name, logs[max(0, len(logs)-3000):])
		}
	})
	return p
}

// TestDistributed runs each role as its own process on PostgreSQL (primary and replica),
// Redis and RabbitMQ: two APIs, two workers, two ingest processes and a listener against
// a 20k-plan catalog. A worker is killed with SIGKILL in the middle of the sync; every
// plan must still be found exactly once through both APIs. Then the pricing flow runs
// across the processes: see checkDistributedPricing.
func TestDistributed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six processes")
	}
	primary, replica := testenv.PostgresURL(t), testenv.ReplicaURL(t)
	svc := isolatedServices(t, "e2e")
	redisURL, brokerURL, namespace := svc.redisURL, svc.brokerURL, svc.namespace
	ctx := t.Context()
	schema := strings.ReplaceAll(namespace, "-", "_")

	conn, err := pgx.Connect(ctx, primary)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), primary)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})

	sim, providerURL, want := syntheticProvider(t, providersim.Config{Mode: providersim.Synthetic, Seed: 3, BasePlans: 5000, Plans: 4, Zones: 3})
	if len(want) != 20000 {
		t.Fatalf("the simulator serves %d searchable plans, want 20000", len(want))
	}

	bin := buildBinary(t)
	env := append(os.Environ(),
		"DATABASE_WRITE_URL="+testenv.WithSearchPath(t, primary, schema),
		"DATABASE_READ_URL="+testenv.WithSearchPath(t, replica, schema),
		"REDIS_URL="+redisURL,
		"BROKER_URL="+brokerURL,
		"NAMESPACE="+namespace,
		"EXTERNAL_API_URL="+providerURL,
		"SYNC_INTERVAL_SECONDS=300",
		"LOG_LEVEL=info",
		"API_KEYS="+testAPIKey,
		"MARKET_EVENTS_CHANNEL="+namespace+":market_events",
	)
	var apis []string
	for i := range 2 {
		addr := freeAddr(t)
		startProc(t, bin, fmt.Sprintf("api%d", i+1), append(env, "HTTP_ADDR="+addr), "api")
		apis = append(apis, "http://"+addr)
	}
	// Every role listens on HTTP_ADDR for /health and /ready.
	role := func(name, cmd string) *proc {
		return startProc(t, bin, name, append(env, "HTTP_ADDR="+freeAddr(t)), cmd)
	}
	victim := role("worker1", "worker")
	role("worker2", "worker")
	role("ingest1", "ingest")
	role("ingest2", "ingest")
	role("listener", "listener")

	// Kill worker1 as soon as the first batches are in, while the sync is under way.
	count := func() int {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+schema+".plans").Scan(&n); err != nil {
			return 0 // the workers have not migrated the schema yet
		}
		return n
	}
	testenv.Poll(t, "the first plans in the store", func() bool { return count() > 0 })
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	t.Logf("killed worker1 with %d of 20000 plans stored", count())

	for _, api := range apis {
		got := waitEvents(t, api+"/search", want)
		t.Logf("%s serves all %d plans (%d bytes)", api, len(want), len(got))
	}
	if n := count(); n != 20000 {
		t.Errorf("store has %d plans, want 20000", n)
	}
	// Pages asked of both apis in turn: each accepts the other's cursors (the key both
	// derive from API_KEYS), and they concatenate to the whole catalog.
	if diff := gocmp.Diff(want, walkAcross(t, apis, 1000, "")); diff != "" {
		t.Errorf("pages of 1000 across both apis (-want +got):\n%s", diff)
	}
	// Two ingest processes, one leader: the provider was asked once in the interval.
	if n := sim.Requests(); n != 1 {
		t.Errorf("provider called %d times by two ingest processes in one interval, want 1 (one leader)", n)
	}

	worker3 := freeAddr(t) // two workers again
	startProc(t, bin, "worker3", append(env, "HTTP_ADDR="+worker3), "worker")
	checkDistributedPricing(t, apis, want[0].ID)

	// Every role serves /metrics on its own port, with its pools and queues.
	for _, c := range []struct {
		url, series string
		min         float64
	}{
		{apis[0], `boxoffice_db_pool_connections{pool="primary",state="total"}`, 1},
		{apis[0], `boxoffice_db_pool_connections{pool="replica",state="total"}`, 1},
		{apis[0], `boxoffice_replica_fallback`, 0},
		{apis[0], `boxoffice_pubsub_subscriptions{channel="` + namespace + `:catalog:version"}`, 1},
		{apis[0], `boxoffice_price_cache_requests_total{result="miss"}`, 1},
		{apis[1], `boxoffice_price_cache_requests_total{result="hit"}`, 1},
		{"http://" + worker3, `boxoffice_broker_consumers{queue="catalog.plans"}`, 2},
		{"http://" + worker3, `boxoffice_broker_consumers{queue="pricing.recalculate"}`, 2},
	} {
		_, body := searchBody(t, c.url+"/metrics")
		if v, ok := metricValue(string(body), c.series); !ok || v < c.min {
			t.Errorf("%s/metrics: %s = %v (present %v), want at least %v", c.url, c.series, v, ok, c.min)
		}
	}

	// The console's status, on an API, reads the replica and RabbitMQ: the prices
	// published by the recalculations above, and no dead letters.
	testenv.Poll(t, "the status to show the published prices", func() bool {
		st, _ := getStatus(t, apis[1])
		return st.Pricing != nil && st.Pricing.Version >= 1
	})
	if st, body := getStatus(t, apis[1]); st.Catalog == nil || st.Catalog.Plans == nil || *st.Catalog.Plans != len(want) ||
		st.DeadLetters == nil || st.DeadLetters.Total != 0 || len(st.Unavailable) != 0 {
		t.Errorf("GET %s/api/v1/status = %s, want %d plans, no dead letters, every part read", apis[1], body, len(want))
	}
	// The console is the API role's; a worker serves no page.
	if status, _ := searchBody(t, apis[0]+"/"); status != http.StatusOK {
		t.Errorf("GET %s/ = %d, want the console", apis[0], status)
	}
	if status, _ := searchBody(t, "http://"+worker3+"/"); status != http.StatusNotFound {
		t.Errorf("GET / on a worker = %d, want 404", status)
	}
}

// priceCacheMisses returns the price cache lookups that api has counted as misses.
func priceCacheMisses(t *testing.T, api string) float64 {
	t.Helper()
	_, body := searchBody(t, api+"/metrics")
	n, _ := metricValue(string(body), `boxoffice_price_cache_requests_total{result="miss"}`) // absent before the first
	return n
}

// testAPIKey is the bearer key of the write endpoints in tests that start processes.
const testAPIKey = "test-key-0123456789abcdef"

// checkDistributedPricing runs the pricing flow across processes: quotes cached in
// Redis are shared by both APIs; a market event published on one API reaches the
// listener through Redis, becomes a task on RabbitMQ, runs on a worker, and the next
// quote on the other API has the new price; and 20 concurrent triggers spread over both
// APIs run on two workers without ever overlapping, each accounted for.
func checkDistributedPricing(t *testing.T, apis []string, eventID string) {
	var listing struct {
		Products []struct {
			ProductID string      `json:"product_id"`
			BasePrice json.Number `json:"base_price"`
		} `json:"products"`
	}
	getJSON(t, apis[0]+"/api/v1/events/"+eventID+"/products", http.StatusOK, &listing)
	if len(listing.Products) == 0 {
		t.Fatalf("event %s lists no products", eventID)
	}
	product := listing.Products[0]
	quoteAt := func(api string) (final, source string) {
		var q struct {
			Final  json.Number `json:"final_price"`
			Source string      `json:"source"`
		}
		postJSON(t, api+"/api/v1/price", "", `{"product_id":"`+product.ProductID+`","user_location":"Sevilla"}`, http.StatusOK, &q)
		return q.Final.String(), q.Source
	}
	first, source := quoteAt(apis[0])
	if source != pricing.SourceDatabase {
		t.Errorf("the first quote came from %s on api1, want %s", source, pricing.SourceDatabase)
	}
	// A cache lookup slower than its 50 ms bound is answered from the store and caches
	// nothing (pricing.QuoterConfig.CacheTimeout): on a loaded machine any one lookup
	// can be. So ask api1 until it reads its quote back from Redis, then api2 until it
	// serves that quote from the cache without ever having missed it, which would have
	// cached one of its own.
	testenv.Poll(t, "api1's quote in the shared cache", func() bool {
		_, source := quoteAt(apis[0])
		return source == pricing.SourceCache
	})
	misses := priceCacheMisses(t, apis[1])
	var again string
	testenv.Poll(t, "api2 to quote from the shared cache", func() bool {
		again, source = quoteAt(apis[1])
		return source == pricing.SourceCache
	})
	if n := priceCacheMisses(t, apis[1]); n != misses || again != first {
		t.Errorf("api2 quotes %s from the cache after %v misses, want %s from api1's entry, no miss", again, n-misses, first)
	}

	// api1 → Redis market_events → listener → RabbitMQ → worker; the price changes for
	// api2's clients once the run completes, with no stale cache entry in the way.
	postJSON(t, apis[0]+"/api/v1/publish-market-event", testAPIKey, `{"location":"sevilla","multiplier":2}`, http.StatusAccepted, nil)
	before, err := catalog.ParseMoney(first)
	if err != nil {
		t.Fatal(err)
	}
	// Twice the price before, but for the one rounding: round(2bd) is 2·round(bd) ± 1.
	testenv.Poll(t, "the market event's price on api2", func() bool {
		f, _ := quoteAt(apis[1])
		after, err := catalog.ParseMoney(f)
		return err == nil && after >= 2*before-1 && after <= 2*before+1
	})

	// 20 concurrent triggers across both APIs, run by two workers.
	ids := make([]string, 20)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var accepted struct {
				TaskID string `json:"task_id"`
			}
			postJSON(t, apis[i%2]+"/api/v1/recalculate", testAPIKey, "", http.StatusAccepted, &accepted)
			ids[i] = accepted.TaskID
		}()
	}
	wg.Wait()
	type taskJSON struct {
		TaskID     string    `json:"task_id"`
		State      string    `json:"state"`
		StartedAt  time.Time `json:"started_at"`
		FinishedAt time.Time `json:"finished_at"`
		Error      string    `json:"error"`
	}
	var runs []taskJSON
	for _, id := range ids {
		var tk taskJSON
		testenv.Poll(t, "task "+id+" to end", func() bool {
			getJSON(t, apis[1]+"/api/v1/tasks/"+id, http.StatusOK, &tk)
			return tk.State == "succeeded" || tk.State == "skipped" || tk.State == "failed"
		})
		switch tk.State {
		case "succeeded":
			runs = append(runs, tk)
		case "failed":
			t.Errorf("task %s failed: %s", id, tk.Error)
		}
	}
	slices.SortFunc(runs, func(a, b taskJSON) int { return a.StartedAt.Compare(b.StartedAt) })
	for i := 1; i < len(runs); i++ {
		if runs[i].StartedAt.Before(runs[i-1].FinishedAt) {
			t.Errorf("runs overlap: %+v and %+v", runs[i-1], runs[i])
		}
	}
	if len(runs) == 0 {
		t.Error("none of 20 triggers ran")
	}
	t.Logf("20 triggers on two APIs: %d runs on two workers, the rest covered by them", len(runs))
}

// getJSON GETs url, checks the status and decodes the body into v.
func getJSON(t *testing.T, url string, status int, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	decodeResponse(t, "GET "+url, resp, status, v)
}

// postJSON POSTs body to url with a bearer key (unless empty), checks the status and
// decodes the answer into v (unless nil).
func postJSON(t *testing.T, url, key, body string, status int, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	decodeResponse(t, "POST "+url, resp, status, v)
}

func decodeResponse(t *testing.T, what string, resp *http.Response, status int, v any) {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if resp.StatusCode != status {
		t.Fatalf("%s = %d %s, want %d", what, resp.StatusCode, body, status)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %s: %v", what, body, err)
		}
	}
}
