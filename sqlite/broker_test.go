package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"boxoffice/clock/clocktest"
	"boxoffice/sqlite"
	"boxoffice/task"
	"boxoffice/task/tasktest"
	"boxoffice/testenv"
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

// TestQueueSurvivesReopen checks what the queue keeps on disk: a message waiting out an
// hour's countdown after a failed attempt is still there after the broker is closed and
// opened again, with its attempt, and is delivered once its time (here, a clock an hour
// and a half ahead) has come.
func TestQueueSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	hour := task.RetryPolicy{MaxAttempts: 3, Countdown: time.Hour, MaxDelay: time.Hour, DeliveryLimit: 2}
	first, err := sqlite.OpenBroker(ctx, dir, sqlite.BrokerConfig{Retry: hour, Poll: 10 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Publish(ctx, "plans", task.Message{ID: "m1", Body: []byte("x"), Headers: map[string]string{"trace": "t1"}}); err != nil {
		t.Fatal(err)
	}
	failed := make(chan struct{})
	sub, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- first.Subscribe(sub, "plans", func(context.Context, task.Message) error {
			close(failed)
			return errors.New("connection refused")
		})
	}()
	<-failed
	queue, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.QueueFileName)+"?_query_only=1")
	if err != nil {
		t.Fatal(err)
	}
	defer queue.Close()
	testenv.Poll(t, "the retry's countdown recorded", func() bool {
		var attempt int
		err := queue.QueryRowContext(ctx, `SELECT attempt FROM messages WHERE id = 'm1' AND lease IS NULL`).Scan(&attempt)
		return err == nil && attempt == 2
	})
	if n, err := first.QueueDepth(ctx, "plans"); err != nil || n != 0 {
		t.Fatalf("QueueDepth() = %d, %v during the countdown, want 0", n, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	later := clocktest.NewManual(time.Now().Add(90 * time.Minute)) // past the countdown, without waiting it out
	second, err := sqlite.OpenBroker(ctx, dir, sqlite.BrokerConfig{Retry: hour, Poll: 10 * time.Millisecond, Clock: later}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	got := make(chan task.Message, 1)
	go second.Subscribe(ctx, "plans", func(_ context.Context, m task.Message) error {
		select {
		case got <- m:
		default:
		}
		return nil
	})
	select {
	case m := <-got:
		if m.ID != "m1" || m.Attempt != 2 || string(m.Body) != "x" || m.Headers["trace"] != "t1" {
			t.Errorf("delivered %+v after the reopen, want m1 at attempt 2 with its body and headers", m)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the retried message was not delivered after the reopen")
	}
}

// TestRecoverClaimsTheQueue: the queue has one consumer. A second broker on the same data
// directory (a second `boxoffice run`) is refused by Recover, so it cannot hand out the
// first one's live deliveries again; once the first closes, the second may claim it.
func TestRecoverClaimsTheQueue(t *testing.T) {
	dir := t.TempDir()
	first, err := sqlite.OpenBroker(t.Context(), dir, sqlite.BrokerConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Recover(t.Context()); err != nil {
		t.Fatalf("first Recover() = %v", err)
	}
	if _, err := first.Recover(t.Context()); err != nil {
		t.Fatalf("Recover() again by the same consumer = %v, want nil", err)
	}
	second := openBroker(t, dir, task.RetryPolicy{})
	_, err = second.Recover(t.Context())
	if !errors.Is(err, sqlite.ErrInUse) || !strings.Contains(err.Error(), sqlite.ConsumerLockFileName) {
		t.Fatalf("second Recover() = %v, want ErrInUse naming %s", err, sqlite.ConsumerLockFileName)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Recover(t.Context()); err != nil {
		t.Fatalf("Recover() once the first consumer closed = %v, want nil", err)
	}
}

// BenchmarkBrokerBatches publishes b.N messages of a 20 000-plan batch's size (10 MB)
// and consumes them with a handler that does nothing: the broker's own cost of a batch,
// its publication, claim and acknowledgement, each a durable commit.
func BenchmarkBrokerBatches(b *testing.B) {
	broker, err := sqlite.OpenBroker(b.Context(), b.TempDir(), sqlite.BrokerConfig{}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { broker.Close() })
	body := []byte(strings.Repeat(`{"id":"plan","zones":[1,2]},`, 10<<20/28))
	ctx, stop := context.WithCancel(b.Context())
	defer stop()
	n := 0
	for b.Loop() {
		if err := broker.Publish(ctx, "plans", task.Message{Body: body}); err != nil {
			b.Fatal(err)
		}
		n++
	}
	published := b.Elapsed()
	left := n
	start := time.Now()
	if err := broker.Subscribe(ctx, "plans", func(context.Context, task.Message) error {
		if left--; left == 0 {
			stop()
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	consumed := time.Since(start)
	b.ReportMetric(float64(published.Milliseconds())/float64(n), "ms-publish/msg")
	b.ReportMetric(float64(consumed.Milliseconds())/float64(n), "ms-consume/msg")
}
