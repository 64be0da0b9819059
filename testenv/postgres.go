package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
)

// PostgresSchema creates a schema of the test's own on the primary, dropped with
// everything in it when the test ends, and returns the primary's and the replica's
// URLs with it as search_path. It skips (or fails, under CI) like PostgresURL.
func PostgresSchema(t testing.TB) (primary, replica string) {
	t.Helper()
	admin, rep := PostgresURL(t), ReplicaURL(t)
	schema := fmt.Sprintf("t_%016x", rand.Uint64())
	exec := func(sql string) error {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(t, admin, schema), WithSearchPath(t, rep, schema)
}

// WithSearchPath returns the PostgreSQL URL raw with search_path set to schema.
func WithSearchPath(t testing.TB, raw, schema string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
