package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/postgres"
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
	store, err := postgres.Open(ctx, primary, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
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

	pause := func(sql string) {
		c, err := pgx.Connect(context.Background(), testenv.ReplicaURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	pause("SELECT pg_wal_replay_pause()")
	resumed := false
	resume := func() {
		if !resumed {
			pause("SELECT pg_wal_replay_resume()")
			resumed = true
		}
	}
	t.Cleanup(resume)

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
