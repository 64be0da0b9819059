package postgres

import (
	"context"
	"testing"
	"time"

	"boxoffice/testenv"
)

// TestStatementTimeoutFollowsTheDeadline checks that a connection taken for a context
// with a deadline runs with a statement_timeout of the time left (whole seconds,
// rounded up), and one taken without a deadline with the server's default again.
func TestStatementTimeoutFollowsTheDeadline(t *testing.T) {
	s, err := Open(t.Context(), testenv.PostgresURL(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	show := func(ctx context.Context) string {
		t.Helper()
		c, err := s.primary.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		var v string
		if err := c.QueryRow(ctx, "SHOW statement_timeout").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name    string
		timeout time.Duration // 0: no deadline
		want    string
	}{
		{"no deadline", 0, "0"},
		{"2.5 seconds", 2500 * time.Millisecond, "3s"},
		{"same again", 2400 * time.Millisecond, "3s"},
		{"a minute", time.Minute, "1min"},
		{"no deadline again", 0, "0"},
		{"under a second", 100 * time.Millisecond, "1s"},
	}
	for _, tt := range tests {
		ctx, cancel := t.Context(), context.CancelFunc(func() {})
		if tt.timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, tt.timeout)
		}
		if got := show(ctx); got != tt.want {
			t.Errorf("%s: statement_timeout = %q, want %q", tt.name, got, tt.want)
		}
		cancel()
	}
}
