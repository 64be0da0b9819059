package main

import (
	"cmp"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"boxoffice/httpapi"
	"boxoffice/providersim"
	"boxoffice/sqlite"
	"boxoffice/testenv"
)

// syntheticProvider serves the simulator configured by cfg (synthetic mode) on loopback
// until the test ends, and returns it and its URL with the events that /search must
// show after its first response: every plan it serves, each once, in search order.
func syntheticProvider(t *testing.T, cfg providersim.Config) (*providersim.Server, string, []event) {
	t.Helper()
	sim, url := startSim(t, cfg)
	want := searchable(t, sim, []int{1})
	return sim, url, want
}

// searchable returns the events that /search must show once the responses calls of sim
// were applied: every searchable plan, each once, in search order.
func searchable(t *testing.T, sim *providersim.Server, calls []int) []event {
	t.Helper()
	var want []event
	for p := range sim.Catalog().Searchable(calls, "fever") {
		var e event
		if err := json.Unmarshal(httpapi.EncodeEvent(p), &e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
	}
	slices.SortFunc(want, func(a, b event) int {
		return cmp.Or(strings.Compare(a.StartDate+a.StartTime, b.StartDate+b.StartTime), strings.Compare(a.ID, b.ID))
	})
	return want
}

// TestRunSurvivesKill is the embedded mode's kill -9 drill. boxoffice run (the built
// binary) syncs a 20k-plan synthetic catalog and is killed with SIGKILL as soon as the
// sync has published every batch (the broker acknowledged them all) while the worker is
// still applying them. Restarted on the same DATA_DIR with the provider gone, so that
// only what the queue kept can complete the catalog, it serves every plan exactly once,
// its queue ends empty with no dead letter, and both databases pass PRAGMA
// integrity_check.
func TestRunSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	_, providerURL, want := syntheticProvider(t, providersim.Config{Mode: providersim.Synthetic, Seed: 5, BasePlans: 5000, Plans: 4, Zones: 3})
	if len(want) != 20000 {
		t.Fatalf("the simulator serves %d searchable plans, want 20000", len(want))
	}
	bin := buildBinary(t)
	dataDir := t.TempDir()
	env := append(os.Environ(), "DATA_DIR="+dataDir, "SYNC_INTERVAL_SECONDS=3600", "LOG_LEVEL=info")

	first := startProc(t, bin, "run1", append(env, "HTTP_ADDR="+freeAddr(t), "EXTERNAL_API_URL="+providerURL), "run")
	testenv.Poll(t, "the sync to publish its batches", func() bool { return strings.Contains(first.logs.String(), `"msg":"sync"`) })
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	plans, queued := count(t, dataDir, sqlite.FileName, "plans"), count(t, dataDir, sqlite.QueueFileName, "messages")
	t.Logf("killed with %d of %d plans stored and %d batches queued", plans, len(want), queued)
	if queued == 0 || plans == len(want) {
		t.Fatalf("killed with %d plans stored and %d batches queued: the worker had finished, the drill did not exercise the queue", plans, queued)
	}

	// From now on the provider is gone: only the queue can complete the catalog.
	addr := freeAddr(t)
	second := startProc(t, bin, "run2", append(env, "HTTP_ADDR="+addr, "EXTERNAL_API_URL=http://"+freeAddr(t)+"/api/events"), "run")
	waitEvents(t, "http://"+addr+"/search", want)
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-second.done
	if second.err != nil {
		t.Errorf("run after SIGTERM: %v, want exit 0", second.err)
	}
	if n := count(t, dataDir, sqlite.FileName, "plans"); n != len(want) {
		t.Errorf("%d plans stored, want %d", n, len(want))
	}
	if n, dead := count(t, dataDir, sqlite.QueueFileName, "messages"), count(t, dataDir, sqlite.QueueFileName, "dead_letters"); n != 0 || dead != 0 {
		t.Errorf("%d messages queued and %d dead letters after the catalog was served, want none", n, dead)
	}
	for _, file := range []string{sqlite.FileName, sqlite.QueueFileName} {
		if got := integrity(t, dataDir, file); got != "ok" {
			t.Errorf("PRAGMA integrity_check of %s = %q, want ok", file, got)
		}
	}
}

// openFile opens the SQLite database file in dataDir for a test's own queries.
func openFile(t *testing.T, dataDir, file string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, file))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// count returns the rows of table in the database file in dataDir.
func count(t *testing.T, dataDir, file, table string) int {
	t.Helper()
	var n int
	if err := openFile(t, dataDir, file).QueryRowContext(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s in %s: %v", table, file, err)
	}
	return n
}

// integrity returns the answer of PRAGMA integrity_check on the database file in
// dataDir: "ok" when it is sound.
func integrity(t *testing.T, dataDir, file string) string {
	t.Helper()
	var got string
	if err := openFile(t, dataDir, file).QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&got); err != nil {
		t.Fatalf("integrity_check of %s: %v", file, err)
	}
	return got
}
