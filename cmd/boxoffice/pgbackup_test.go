package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"boxoffice/providersim"
	"boxoffice/testenv"
)

// TestPostgresBackupCheck is the distributed mode's backup round trip:
// scripts/pg-backup-check.sh dumps a database that run filled from a synthetic catalog,
// restores it into a fresh database, and finds that /search answers the same bytes from
// both. Given a dump older than a change to the source that leaves its catalog version
// alone, the same script must say that the responses differ: the check can fail.
func TestPostgresBackupCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and restores a database")
	}
	for _, tool := range []string{"psql", "pg_dump", "pg_restore", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testenv.CI() {
				t.Fatalf("%s is required when CI=true: %v", tool, err)
			}
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	db := testenv.PostgresDatabase(t)
	_, providerURL, want := syntheticProvider(t, providersim.Config{Mode: providersim.Synthetic, Seed: 3, BasePlans: 300, Plans: 3, Zones: 2})
	env := map[string]string{"HTTP_ADDR": freeAddr(t), "DATA_DIR": t.TempDir(), "DATABASE_WRITE_URL": db,
		"EXTERNAL_API_URL": providerURL, "SYNC_INTERVAL_SECONDS": "3600"}
	base, stop := startRun(t, env)
	waitEvents(t, base+"/search", want)
	stop()

	bin := buildBinary(t)
	check := func(args ...string) (int, string) {
		cmd := exec.Command("../../scripts/pg-backup-check.sh", args...)
		cmd.Env = append(os.Environ(), "DATABASE_WRITE_URL="+db, "BOXOFFICE="+bin)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("pg-backup-check.sh: %v\n%s", err, out)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	code, out := check()
	if code != 0 || strings.Count(out, "same bytes: /search") != 2 || !strings.Contains(out, "pg-backup-check: ok") {
		t.Fatalf("pg-backup-check.sh: exit %d, want 0 and both searches the same:\n%s", code, out)
	}

	dump := filepath.Join(t.TempDir(), "before.dump")
	if out, err := exec.Command("pg_dump", "--format=custom", "--file="+dump, db).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	c, err := pgx.Connect(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(t.Context(), `UPDATE plans SET title = 'changed after the dump'
		WHERE id = (SELECT id FROM plans WHERE ever_online ORDER BY starts_at, id LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	code, out = check(dump)
	if code != 1 || !strings.Contains(out, "the responses differ: /search") {
		t.Errorf("pg-backup-check.sh with a dump the source no longer matches: exit %d, want 1 saying the responses differ:\n%s", code, out)
	}
}
