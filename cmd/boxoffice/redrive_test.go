package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"boxoffice/postgres"
	"boxoffice/pricing"
	"boxoffice/sqlite"
	"boxoffice/task"
	"boxoffice/testenv"
)

// taskJSON is what GET /api/v1/tasks/{id} answers, as far as these drills read it.
type taskJSON struct {
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
}

// awaitTaskEnded polls GET /api/v1/tasks/{id} on api until the task has ended, and
// returns it.
func awaitTaskEnded(t *testing.T, api, id string) taskJSON {
	t.Helper()
	var tk taskJSON
	testenv.Poll(t, "task "+id+" to end", func() bool {
		getJSON(t, api+"/api/v1/tasks/"+id, http.StatusOK, &tk)
		return task.State(tk.State).Terminal()
	})
	return tk
}

// metricSum is the sum of series over the /metrics of each base URL (absent counts 0).
func metricSum(t *testing.T, series string, bases ...string) float64 {
	t.Helper()
	var sum float64
	for _, b := range bases {
		_, body := searchBody(t, b+"/metrics")
		v, _ := metricValue(string(body), series)
		sum += v
	}
	return sum
}

// wantRanOnce checks that the task id ended succeeded after one attempt, re-driven once
// and run once across the processes at bases. The counters are read once both have
// counted the task (a process counts a run just after recording it), so a second
// re-drive or run would show.
func wantRanOnce(t *testing.T, api, id string, bases ...string) {
	t.Helper()
	if tk := awaitTaskEnded(t, api, id); tk.State != string(task.Succeeded) || tk.Attempts != 1 {
		t.Errorf("task %s ended %s after %d attempts, want succeeded after 1", id, tk.State, tk.Attempts)
	}
	const (
		redriven  = `boxoffice_task_redriven_total{kind="recalculate"}`
		succeeded = `boxoffice_task_runs_total{kind="recalculate",outcome="succeeded"}`
	)
	testenv.Poll(t, "the re-drive and the run to be counted", func() bool {
		return metricSum(t, redriven, bases...) >= 1 && metricSum(t, succeeded, bases...) >= 1
	})
	for _, series := range []string{redriven, succeeded} {
		if got := metricSum(t, series, bases...); got != 1 {
			t.Errorf("%s = %v across the processes, want 1", series, got)
		}
	}
	for _, outcome := range []string{"skipped", "retried", "failed"} {
		series := `boxoffice_task_runs_total{kind="recalculate",outcome="` + outcome + `"}`
		if got := metricSum(t, series, bases...); got != 0 {
			t.Errorf("%s = %v across the processes, want 0", series, got)
		}
	}
}

// recordNeverPublished migrates s and records a recalculation in it, publishing nothing.
func recordNeverPublished(t *testing.T, s interface {
	Migrate(context.Context) error
	task.Records
}) task.Record {
	t.Helper()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec, err := s.CreateTask(t.Context(), pricing.Kind, "api", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestRunRedrivesATaskNeverPublished records a recalculation in the data directory's
// store and publishes nothing, as a `run` killed between the two would leave it; the
// next `boxoffice run` on that directory publishes it again within
// TASK_REDRIVE_SECONDS, and it runs exactly once.
func TestRunRedrivesATaskNeverPublished(t *testing.T) {
	dataDir := t.TempDir()
	s, err := sqlite.Open(t.Context(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	rec := recordNeverPublished(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	base, _ := startRun(t, map[string]string{
		"HTTP_ADDR": freeAddr(t), "DATA_DIR": dataDir, "SYNC_INTERVAL_SECONDS": "3600",
		"EXTERNAL_API_URL":     "http://" + freeAddr(t) + "/api/events", // no provider: only the task matters
		"TASK_REDRIVE_SECONDS": "0.2",
	})
	wantRanOnce(t, base, rec.ID, base)
}

// TestDistributedRedrivesATaskNeverPublished does the same on PostgreSQL and RabbitMQ:
// a recalculation recorded and never published before any worker started; two
// `boxoffice worker` processes re-drive at once, and it runs exactly once, as GET
// /api/v1/tasks/{id} on a `boxoffice api` process shows.
func TestDistributedRedrivesATaskNeverPublished(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	primary, replica := testenv.PostgresSchema(t)
	svc := isolatedServices(t, "redrive")
	s, err := postgres.Open(t.Context(), primary, replica, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rec := recordNeverPublished(t, s)
	s.Close()

	bin := buildBinary(t)
	env := append(os.Environ(),
		"DATABASE_WRITE_URL="+primary, "DATABASE_READ_URL="+replica,
		"REDIS_URL="+svc.redisURL, "BROKER_URL="+svc.brokerURL, "NAMESPACE="+svc.namespace,
		"MARKET_EVENTS_CHANNEL="+svc.namespace+":market_events", "API_KEYS="+testAPIKey,
		"TASK_REDRIVE_SECONDS=0.2",
	)
	var bases []string
	for i := range 2 {
		addr := freeAddr(t)
		startProc(t, bin, fmt.Sprintf("worker%d", i+1), append(env, "HTTP_ADDR="+addr), "worker")
		bases = append(bases, "http://"+addr)
	}
	api := freeAddr(t)
	startProc(t, bin, "api", append(env, "HTTP_ADDR="+api), "api")
	testenv.Poll(t, "the api to serve", func() bool {
		resp, err := http.Get("http://" + api + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	wantRanOnce(t, "http://"+api, rec.ID, bases...)
}
