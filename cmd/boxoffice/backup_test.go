package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"boxoffice/providersim"
	"boxoffice/sqlite"
	"boxoffice/testenv"
)

// runOnce runs a one-shot command (backup, restore) in-process with env, as main
// would, and returns its error and its log.
func runOnce(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	logs := &testenv.Logs{}
	args = append([]string{args[0], "--env-file", filepath.Join(t.TempDir(), "absent.env")}, args[1:]...)
	err := run(t.Context(), args, func(k string) string { return env[k] }, io.Discard, logs)
	return logs.String(), err
}

// TestBackupRestoreEmbedded is the embedded mode's round trip: a backup taken while run
// serves, refused as a restore while run holds the data directory, restored once run
// stopped, then served by a new run (without a provider) with the same bytes, and the
// recalculation that the backup held unfinished runs after the restore.
func TestBackupRestoreEmbedded(t *testing.T) {
	dataDir := t.TempDir()
	env := map[string]string{"HTTP_ADDR": freeAddr(t), "DATA_DIR": dataDir, "SYNC_INTERVAL_SECONDS": "3600"}
	base, stop := startRun(t, env)
	want := waitEvents(t, base+year2021, afterResponse1)

	// A recalculation recorded but not yet handled when the backup is taken: its
	// message stays in the queue the restore replaces.
	s, err := sqlite.Open(t.Context(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := s.CreateTask(t.Context(), "recalculate", "api", time.Now())
	if err := errors.Join(err, s.Close()); err != nil {
		t.Fatal(err)
	}

	file := filepath.Join(t.TempDir(), "boxoffice.backup")
	if logs, err := runOnce(t, env, "backup", file); err != nil {
		t.Fatalf("backup while run serves: %v\n%s", err, logs)
	} else if !strings.Contains(logs, `"msg":"backup written"`) || strings.Contains(logs, "\r") {
		t.Errorf("backup logged %q, want its log line and no progress (stderr is not a terminal)", logs)
	}
	if _, err := runOnce(t, env, "restore", file); !errors.Is(err, sqlite.ErrInUse) {
		t.Errorf("restore while run holds DATA_DIR = %v, want ErrInUse", err)
	}
	stop()

	if logs, err := runOnce(t, env, "restore", file); err != nil {
		t.Fatalf("restore: %v\n%s", err, logs)
	} else if !strings.Contains(logs, `"recalculations_requeued":1`) {
		t.Errorf("restore logged %q, want the pending recalculation requeued", logs)
	}
	if previous, _ := filepath.Glob(filepath.Join(dataDir, "pre-restore-*", sqlite.FileName)); len(previous) != 1 {
		t.Errorf("previous stores kept: %q, want one", previous)
	}

	env["HTTP_ADDR"] = freeAddr(t)
	env["EXTERNAL_API_URL"] = "http://" + freeAddr(t) + "/api/events" // no provider: only the backup serves
	base, _ = startRun(t, env)
	testenv.Poll(t, "the restored store to serve the same bytes", func() bool {
		status, got := searchBody(t, base+year2021)
		return status == http.StatusOK && bytes.Equal(got, want)
	})
	testenv.Poll(t, "the requeued recalculation to end", func() bool {
		var tk struct {
			State string `json:"state"`
		}
		getJSON(t, base+"/api/v1/tasks/"+pending.ID, http.StatusOK, &tk)
		return tk.State == "succeeded" || tk.State == "skipped"
	})
}

// TestBackupDuringIngest backs the store up while run applies the batches of its first
// sync of a 6000-plan catalog. One backup is taken while the test holds the store's write
// lock in the middle of the sync, so that its contents are known exactly; more are taken
// while the batches land freely, and one once the sync is confirmed. Each must hold whole batches only: the plans of the
// sync's revision are exactly those of the batches it records as applied, its catalog
// version is that of its newest plan, and it passes PRAGMA integrity_check. The frozen
// one, restored into a new data directory, is served by run as it was: every searchable
// plan it holds, and an empty queue.
func TestBackupDuringIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("ingests a 6000-plan catalog")
	}
	_, providerURL, _ := syntheticProvider(t, providersim.Config{Mode: providersim.Synthetic, Seed: 17, BasePlans: 1500, Plans: 4, Zones: 2})
	dataDir := t.TempDir()
	env := map[string]string{"HTTP_ADDR": freeAddr(t), "DATA_DIR": dataDir, "EXTERNAL_API_URL": providerURL, "SYNC_INTERVAL_SECONDS": "3600",
		"SYNC_BATCH_PLANS": strconv.Itoa(batchSize)}
	startRun(t, env)
	// The test's own connection to the live store; it waits for the worker's transactions.
	live, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, sqlite.FileName)+"?_pragma=busy_timeout(30000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	applied := func(db *sql.DB) (batches int, confirmed bool) {
		t.Helper()
		if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM sync_batches`).Scan(&batches); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM provider_syncs`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return batches, n > 0
	}

	// Frozen: hold the write lock once some batches are in, and back up.
	testenv.Poll(t, "the first batches to be applied", func() bool { n, done := applied(live); return n > 0 || done })
	frozen := filepath.Join(t.TempDir(), "frozen.backup")
	var held storeState
	func() {
		conn, err := live.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		defer conn.ExecContext(context.WithoutCancel(t.Context()), "ROLLBACK")
		held = readState(t, conn)
		if held.confirmed {
			t.Fatalf("the sync was confirmed before the test could freeze it (%d plans): the drill did not back up a sync in progress", held.plans)
		}
		if logs, err := runOnce(t, env, "backup", frozen); err != nil {
			t.Fatalf("backup: %v\n%s", err, logs)
		}
	}()

	// Free: a few backups while the batches land, and one once the sync is confirmed.
	var files []string
	backup := func() {
		file := filepath.Join(t.TempDir(), fmt.Sprintf("free-%d.backup", len(files)))
		if logs, err := runOnce(t, env, "backup", file); err != nil {
			t.Fatalf("backup %d: %v\n%s", len(files), err, logs)
		}
		files = append(files, file)
	}
	for range 3 {
		if _, done := applied(live); done {
			break
		}
		backup()
	}
	testenv.Poll(t, "the sync to be confirmed", func() bool { _, done := applied(live); return done })
	backup()

	final := readState(t, live)
	if !final.confirmed || final.batches < 4 {
		t.Fatalf("final state %+v: want a confirmed sync of several batches", final)
	}
	sizes := func(seqs []int) (n int) {
		for _, seq := range seqs {
			if seq == final.batches-1 {
				n += final.plans - batchSize*(final.batches-1)
			} else {
				n += batchSize
			}
		}
		return n
	}
	mid := 0
	for _, file := range append([]string{frozen}, files...) {
		db := openFile(t, filepath.Dir(file), filepath.Base(file))
		got := readState(t, db)
		if s := integrity(t, filepath.Dir(file), filepath.Base(file)); s != "ok" {
			t.Errorf("%s: integrity_check %q", filepath.Base(file), s)
		}
		want := final.plans
		if !got.confirmed {
			want = sizes(got.seqs)
			mid++
		}
		if got.plans != want || got.revised != want {
			t.Errorf("%s: %d plans (%d of the sync's revision) with batches %v applied (confirmed %v), want %d: a batch applied in part",
				filepath.Base(file), got.plans, got.revised, got.seqs, got.confirmed, want)
		}
		if got.version != got.newest {
			t.Errorf("%s: catalog version %d, but its newest searchable plan has version %d", filepath.Base(file), got.version, got.newest)
		}
	}
	frozenState := readState(t, openFile(t, filepath.Dir(frozen), filepath.Base(frozen)))
	if frozenState.version != held.version || frozenState.plans != held.plans || fmt.Sprint(frozenState.seqs) != fmt.Sprint(held.seqs) {
		t.Errorf("frozen backup %+v, want the state the test held %+v", frozenState, held)
	}
	t.Logf("%d backups, %d of them in the middle of the sync; frozen at %d of %d batches", len(files)+1, mid, len(held.seqs), final.batches)

	// The frozen backup, restored, is served as it was.
	restored := t.TempDir()
	renv := map[string]string{"HTTP_ADDR": freeAddr(t), "DATA_DIR": restored, "SYNC_INTERVAL_SECONDS": "3600",
		"EXTERNAL_API_URL": "http://" + freeAddr(t) + "/api/events"}
	if logs, err := runOnce(t, renv, "restore", frozen); err != nil {
		t.Fatalf("restore: %v\n%s", err, logs)
	}
	if n := count(t, restored, sqlite.QueueFileName, "messages"); n != 0 {
		t.Errorf("restored queue holds %d messages, want none", n)
	}
	base, _ := startRun(t, renv)
	testenv.Poll(t, "the restored catalog to be served", func() bool {
		status, body := searchBody(t, base+"/search")
		return status == http.StatusOK && len(decodeEvents(t, body)) == held.searchable
	})
}

// batchSize is the plans of each batch but the last of a sync whose plans are small
// (SYNC_BATCH_PLANS of the test).
const batchSize = 1000

// storeState is what TestBackupDuringIngest reads of a store: its first sync, its
// catalog and its catalog version.
type storeState struct {
	confirmed  bool
	batches    int   // of the confirmed sync
	seqs       []int // batches of the sync in progress applied
	plans      int
	revised    int // plans of the revision of the sync
	searchable int
	version    int64
	newest     int64 // version of the newest searchable plan
}

// queryer is a *sql.DB or a *sql.Conn.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func readState(t *testing.T, db queryer) storeState {
	t.Helper()
	ctx := t.Context()
	var s storeState
	var revision sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT batches, revision FROM provider_syncs`).Scan(&s.batches, &revision)
	switch {
	case err == nil:
		s.confirmed = true
	case !errors.Is(err, sql.ErrNoRows):
		t.Fatal(err)
	default:
		if err := db.QueryRowContext(ctx, `SELECT max(revision) FROM sync_batches`).Scan(&revision); err != nil {
			t.Fatal(err)
		}
		rows, err := db.QueryContext(ctx, `SELECT seq FROM sync_batches ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var seq int
			if err := rows.Scan(&seq); err != nil {
				t.Fatal(err)
			}
			s.seqs = append(s.seqs, seq)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE revision = ?), coalesce(sum(ever_online), 0),
		coalesce(max(version) FILTER (WHERE ever_online = 1), 0) FROM plans`, revision.Int64).
		Scan(&s.plans, &s.revised, &s.searchable, &s.newest); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT version FROM catalog_version`).Scan(&s.version); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRestoreBinary drives the built binary: restore refuses while a run process holds
// the data directory, and once that process is killed with SIGKILL (the kernel drops its
// lock: nothing stale is left) it restores the backup taken while it ran.
func TestRestoreBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dataDir := t.TempDir()
	addr := freeAddr(t)
	env := append(os.Environ(), "DATA_DIR="+dataDir, "SYNC_INTERVAL_SECONDS=3600")
	p := startProc(t, bin, "run", append(env, "HTTP_ADDR="+addr), "run")
	testenv.Poll(t, "the binary's /search to show the simulator's plans", func() bool {
		resp, err := http.Get("http://" + addr + year2021)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(b), "Camela en concierto")
	})

	oneShot := func(args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("%s: %v", args, err)
		}
		return cmd.ProcessState.ExitCode(), stderr.String()
	}
	file := filepath.Join(t.TempDir(), "b.db")
	if code, stderr := oneShot("backup", file); code != 0 {
		t.Fatalf("backup beside run: exit %d\n%s", code, stderr)
	}
	if code, stderr := oneShot("restore", file); code != 1 || !strings.Contains(stderr, "has "+dataDir+" open") {
		t.Errorf("restore beside run: exit %d, stderr %q; want exit 1 saying run has DATA_DIR open", code, stderr)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if code, stderr := oneShot("restore", file); code != 0 || !strings.Contains(stderr, `"msg":"store restored"`) {
		t.Fatalf("restore after run was killed: exit %d\n%s", code, stderr)
	}
	if n := count(t, dataDir, sqlite.FileName, "plans"); n == 0 {
		t.Errorf("restored store holds no plans")
	}
}
