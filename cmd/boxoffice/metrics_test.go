package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"boxoffice/testenv"
)

// metricValue returns the value of the sample named series (name and labels exactly as
// exposed) in a Prometheus text exposition, and whether it is there.
func metricValue(exposition, series string) (float64, bool) {
	for line := range strings.Lines(exposition) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// TestRunMetrics checks that one `boxoffice run` process exposes the metrics of every
// role it runs: syncs, the catalog, the index, queues, tasks and versions, price quote
// cache lookups, the SQLite pools, and HTTP by route pattern.
func TestRunMetrics(t *testing.T) {
	base, _ := startRun(t, map[string]string{"HTTP_ADDR": freeAddr(t), "DATA_DIR": t.TempDir()})
	testenv.Poll(t, "plans from the simulator", func() bool {
		_, body := searchBody(t, base+"/search")
		return strings.Contains(string(body), `"id"`)
	})
	var accepted struct {
		TaskID string `json:"task_id"`
	}
	postJSON(t, base+"/api/v1/recalculate", "", "", http.StatusAccepted, &accepted)
	testenv.Poll(t, "the recalculation", func() bool {
		var tk struct {
			State string `json:"state"`
		}
		getJSON(t, base+"/api/v1/tasks/"+accepted.TaskID, http.StatusOK, &tk)
		return tk.State == "succeeded"
	})
	// One quote from the database, then the same from the cache.
	var found struct {
		Data struct {
			Events []struct {
				ID string `json:"id"`
			} `json:"events"`
		} `json:"data"`
	}
	_, body := searchBody(t, base+"/search")
	if err := json.Unmarshal(body, &found); err != nil || len(found.Data.Events) == 0 {
		t.Fatalf("/search = %.200s (%v), want events", body, err)
	}
	var listing struct {
		Products []struct {
			ProductID string `json:"product_id"`
		} `json:"products"`
	}
	getJSON(t, base+"/api/v1/events/"+found.Data.Events[0].ID+"/products", http.StatusOK, &listing)
	if len(listing.Products) == 0 {
		t.Fatalf("event %s lists no products", found.Data.Events[0].ID)
	}
	for range 2 {
		postJSON(t, base+"/api/v1/price", "", `{"product_id":"`+listing.Products[0].ProductID+`","user_location":"madrid"}`, http.StatusOK, nil)
	}

	_, body = searchBody(t, base+"/metrics")
	metrics := string(body)
	for _, c := range []struct {
		series string
		min    float64
	}{
		{`boxoffice_sync_total{outcome="ok",provider="fever"}`, 1},
		{`boxoffice_sync_plans_parsed_total{provider="fever"}`, 1},
		{`boxoffice_catalog_version`, 1},
		{`boxoffice_search_index_plans`, 1},
		{`boxoffice_search_index_bytes`, 1},
		{`boxoffice_task_runs_total{kind="recalculate",outcome="succeeded"}`, 1},
		{`boxoffice_pricing_version`, 1},
		{`boxoffice_broker_queue_depth{queue="catalog.plans"}`, 0},
		{`boxoffice_broker_queue_depth{queue="pricing.recalculate"}`, 0},
		{`boxoffice_http_requests_total{method="POST",route="/api/v1/recalculate",status="202"}`, 1},
		{`boxoffice_http_requests_total{method="GET",route="/api/v1/tasks/{task_id}",status="200"}`, 1},
		{`boxoffice_price_cache_requests_total{result="miss"}`, 1},
		{`boxoffice_price_cache_requests_total{result="hit"}`, 1},
		{`boxoffice_db_pool_connections{pool="sqlite_write",state="max"}`, 1},
		{`boxoffice_db_pool_connections{pool="sqlite_read",state="max"}`, 1},
		{`boxoffice_sqlite_checkpoint_failures_total{db="sqlite_store"}`, 0},
		{`boxoffice_sqlite_checkpoint_failures_total{db="sqlite_queue"}`, 0},
		{`boxoffice_panics_total{component="worker"}`, 0},
		{`boxoffice_broker_dead_letters{topic="catalog.plans"}`, 0},
		{`boxoffice_broker_dead_letters{topic="pricing.recalculate"}`, 0},
		{`boxoffice_http_requests_in_flight`, 1}, // the scrape itself
		{`go_goroutines`, 1},
		{`process_resident_memory_bytes`, 1},
	} {
		v, ok := metricValue(metrics, c.series)
		if !ok || v < c.min {
			t.Errorf("/metrics: %s = %v (present %v), want at least %v", c.series, v, ok, c.min)
		}
	}
	if strings.Contains(metrics, accepted.TaskID) {
		t.Error("/metrics has a raw path as a label: routes must be patterns")
	}
	var ready map[string]any
	getJSON(t, base+"/ready", http.StatusOK, &ready)
	if b, _ := json.Marshal(ready); !strings.Contains(string(b), "sqlite") {
		t.Errorf("/ready = %s, want the sqlite check with its latency", b)
	}
}
