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
	if err := execAdmin(admin, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := execAdmin(admin, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(t, admin, schema), WithSearchPath(t, rep, schema)
}

// PostgresDatabase creates a database of the test's own on the primary, dropped when the
// test ends, and returns its URL: for tests of tools that take a whole database
// (pg_dump, pg_restore), where a schema of their own is not enough. It skips (or fails,
// under CI) like PostgresURL.
func PostgresDatabase(t testing.TB) string {
	t.Helper()
	admin := PostgresURL(t)
	name := fmt.Sprintf("t_%016x", rand.Uint64())
	if err := execAdmin(admin, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if err := execAdmin(admin, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// execAdmin runs one statement on the database at admin.
func execAdmin(admin, sql string) error {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
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
