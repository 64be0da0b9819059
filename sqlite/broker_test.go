package sqlite_test

import (
	"log/slog"
	"testing"
	"time"

	"boxoffice/sqlite"
	"boxoffice/task"
	"boxoffice/task/tasktest"
)

// openBroker opens a broker on a fresh data directory with fast polls, closed by
// t.Cleanup.
func openBroker(t *testing.T, dir string, retry task.RetryPolicy) *sqlite.Broker {
	t.Helper()
	b, err := sqlite.OpenBroker(t.Context(), dir, sqlite.BrokerConfig{Retry: retry, Poll: 20 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return b
}

func TestBroker(t *testing.T) {
	tasktest.TestBroker(t, func(t *testing.T, retry task.RetryPolicy) tasktest.Broker {
		return openBroker(t, t.TempDir(), retry)
	})
}

func TestDeadLetters(t *testing.T) {
	tasktest.TestDeadLetters(t, func(t *testing.T, retry task.RetryPolicy) tasktest.Broker {
		return openBroker(t, t.TempDir(), retry)
	})
}
