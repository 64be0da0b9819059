package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/pricing"
	"boxoffice/testenv"
)

// lagWatch is how long the test watches an API whose replica has stopped replaying: a
// few of its one-second refreshes.
const lagWatch = 3 * time.Second

// TestAPINeverCachesALaggingReplicaAsNew runs the api role on a real streaming replica
// whose WAL replay is paused while the primary commits a change. Every response the API
// gives meanwhile must be the old data under the old version (its ETag), never the old
// data under the new version; once replay resumes, the new data arrives under the new
// version.
func TestAPINeverCachesALaggingReplicaAsNew(t *testing.T) {
	if testing.Short() {
		t.Skip("pauses the shared replica")
	}
	primary, replica := testenv.PostgresSchema(t)
	ctx := t.Context()
	store := openMigrated(t, primary, "")
	plan := catalogtest.NewPlan("lag", "1", func(p *catalog.Plan) { p.Title = "Before"; p.Revision = 1 })
	v1, err := store.UpsertPlans(ctx, []catalog.Plan{plan})
	if err != nil {
		t.Fatal(err)
	}

	svc := isolatedServices(t, "lag")
	base, _ := startCmd(t, "api", map[string]string{
		"HTTP_ADDR":             freeAddr(t),
		"DATABASE_WRITE_URL":    primary,
		"DATABASE_READ_URL":     replica,
		"API_KEYS":              testAPIKey,
		"REDIS_URL":             svc.redisURL,
		"BROKER_URL":            svc.brokerURL,
		"NAMESPACE":             svc.namespace,
		"RATE_LIMIT_PER_SECOND": "0", // the watch below searches in a tight loop
	})
	search := func() (title, etag string) {
		resp, err := http.Get(base + "/search")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body := string(raw)
		switch {
		case strings.Contains(body, `"Before"`):
			title = "Before"
		case strings.Contains(body, `"After"`):
			title = "After"
		}
		return title, resp.Header.Get("ETag")
	}
	version := func(etag string) string { // W/"<version>.<from>.<to>"
		v, _, _ := strings.Cut(strings.TrimPrefix(etag, `W/"`), ".")
		return v
	}
	var oldTag string
	testenv.Poll(t, "the plan through the replica", func() bool {
		title, etag := search()
		oldTag = etag
		return title == "Before"
	})
	if version(oldTag) != itoa(v1) {
		t.Fatalf("ETag %s, want version %d", oldTag, v1)
	}

	resume := testenv.PauseReplay(t)

	plan.Title, plan.Revision = "After", 2
	v2, err := store.UpsertPlans(ctx, []catalog.Plan{plan})
	if err != nil || v2 <= v1 {
		t.Fatalf("UpsertPlans = %d, %v; want a version above %d", v2, err, v1)
	}
	// Watch the invariant across several refreshes: the replica is reachable and
	// answers, only behind.
	for end := time.Now().Add(lagWatch); time.Now().Before(end); {
		title, etag := search()
		if title != "Before" || version(etag) != itoa(v1) {
			t.Fatalf("with replay paused the API served %q under ETag %s; want Before under version %d", title, etag, v1)
		}
	}
	resume()
	testenv.Poll(t, "the change once the replica replays", func() bool {
		title, etag := search()
		if title == "Before" && version(etag) == itoa(v2) {
			t.Fatalf("old data served under the new version %d (ETag %s)", v2, etag)
		}
		return title == "After" && version(etag) == itoa(v2)
	})
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// TestNoStaleQuoteWithoutRedis runs two api processes and a worker on PostgreSQL
// (primary and a real streaming replica), Redis and RabbitMQ, with api2's connection to
// Redis cut through a proxy and the replica's replay paused. A market event is
// recalculated through api1; once the task reports succeeded, both APIs must quote the
// new price: api2 cannot hear of the new version through Redis, and its replica still
// has the old prices and the old version.
func TestNoStaleQuoteWithoutRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("pauses the shared replica")
	}
	primary, replica := testenv.PostgresSchema(t)
	ctx := t.Context()
	store := openMigrated(t, primary, replica)
	plan := catalogtest.NewPlan("stale", "1") // one zone at 20.00
	if _, err := store.UpsertPlans(ctx, []catalog.Plan{plan}); err != nil {
		t.Fatal(err)
	}
	product := pricing.Products(plan)[0].ID
	// Both APIs must find the product on the replica, not on the primary for want of it.
	testenv.Poll(t, "the product on the replica", func() bool {
		_, err := store.Product(ctx, product, false)
		return err == nil
	})

	svc := isolatedServices(t, "stale")
	u, err := url.Parse(svc.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, u.Host)
	u.Host = proxy.Addr()
	role := func(cmd, redisURL string) string {
		base, _ := startCmd(t, cmd, map[string]string{
			"HTTP_ADDR":             freeAddr(t),
			"DATABASE_WRITE_URL":    primary,
			"DATABASE_READ_URL":     replica,
			"API_KEYS":              testAPIKey,
			"REDIS_URL":             redisURL,
			"BROKER_URL":            svc.brokerURL,
			"NAMESPACE":             svc.namespace,
			"MARKET_EVENTS_CHANNEL": svc.namespace + ":market_events",
			"RATE_LIMIT_PER_SECOND": "0",
		})
		return base
	}
	role("worker", svc.redisURL)
	api1, api2 := role("api", svc.redisURL), role("api", u.String())

	quote := func(api string) string {
		t.Helper()
		var q struct {
			Final json.Number `json:"final_price"`
		}
		postJSON(t, api+"/api/v1/price", "", `{"product_id":"`+product.String()+`","user_location":"Sevilla"}`, http.StatusOK, &q)
		return q.Final.String()
	}
	for _, api := range []string{api1, api2} {
		if got := quote(api); got != "20.00" {
			t.Fatalf("%s quotes %s before the event, want 20.00", api, got)
		}
	}
	proxy.Cut()
	if got := quote(api2); got != "20.00" {
		t.Fatalf("api2 without Redis quotes %s, want 20.00", got)
	}

	resume := testenv.PauseReplay(t)
	postJSON(t, api1+"/api/v1/publish-market-event", testAPIKey, `{"location":"sevilla","multiplier":2}`, http.StatusAccepted, nil)
	var accepted struct {
		TaskID string `json:"task_id"`
	}
	postJSON(t, api1+"/api/v1/recalculate", testAPIKey, "", http.StatusAccepted, &accepted)
	var tk struct {
		State string `json:"state"`
		Error string `json:"error"`
	}
	testenv.Poll(t, "the recalculation to end", func() bool {
		getJSON(t, api1+"/api/v1/tasks/"+accepted.TaskID, http.StatusOK, &tk)
		return tk.State == "succeeded" || tk.State == "skipped" || tk.State == "failed"
	})
	if tk.State != "succeeded" {
		t.Fatalf("the recalculation ended %s (%s), want succeeded", tk.State, tk.Error)
	}
	got1, got2 := quote(api1), quote(api2)
	resume()
	if got1 != "40.00" || got2 != "40.00" {
		t.Errorf("after the recalculation succeeded, with the replica behind: api1 quotes %s, api2 (cut off from Redis) %s; want 40.00 from both", got1, got2)
	}
}
