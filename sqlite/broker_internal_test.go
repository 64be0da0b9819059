package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"boxoffice/task"
	"boxoffice/testenv"
)

// TestExpiredLeaseIsDeliveredAgain takes a message the way a consumer process does and
// then behaves as one that died without a trace: it never renews nor settles, and no
// Recover runs. Once the lease expires, another consumer gets the message, as a second
// delivery of the same attempt, and acknowledges it.
func TestExpiredLeaseIsDeliveredAgain(t *testing.T) {
	ctx := t.Context()
	b, err := OpenBroker(ctx, t.TempDir(), BrokerConfig{Lease: 100 * time.Millisecond, Poll: 10 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Publish(ctx, "plans", task.Message{ID: "m1", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	d, _, err := b.claim(ctx, "plans")
	if err != nil || d == nil || d.msg.ID != "m1" {
		t.Fatalf("claim() = %+v, %v, want m1", d, err)
	}
	if n, err := b.QueueDepth(ctx, "plans"); err != nil || n != 0 {
		t.Fatalf("QueueDepth() = %d, %v while leased, want 0", n, err)
	}

	got := make(chan task.Message, 1)
	sub, stop := context.WithCancel(ctx)
	defer stop()
	go b.Subscribe(sub, "plans", func(_ context.Context, m task.Message) error { got <- m; return nil })
	select {
	case m := <-got:
		if m.ID != "m1" || m.Attempt != 1 {
			t.Errorf("delivered %s at attempt %d, want m1 at attempt 1", m.ID, m.Attempt)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the message was not delivered again after its lease expired")
	}
	testenv.Poll(t, "the second delivery's ack", func() bool {
		var left int
		if err := b.read.QueryRowContext(ctx, `SELECT count(*) FROM messages`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		return left == 0
	})
	stop()
	// The dead consumer's late settlement finds nothing to settle: its lease is gone.
	b.release(ctx, d)
	if n, err := b.QueueDepth(ctx, "plans"); err != nil || n != 0 {
		t.Errorf("QueueDepth() = %d, %v after a stale release, want 0", n, err)
	}
}

// TestQueueMigrationKeepsMessages takes a queue down to its first schema (bodies in the
// messages' rows) and up again: the messages keep their seqs, bodies and leases, and a
// seq deleted is never given out again.
func TestQueueMigrationKeepsMessages(t *testing.T) {
	ctx := t.Context()
	b := openPublished(t, BrokerConfig{}, "1", "2", "3")
	mustClaim(t, b, "1")
	rows := func() []string {
		var out []string
		err := queryRows(ctx, b.read, `SELECT seq, id, lease IS NOT NULL FROM messages ORDER BY seq`, nil, func(r *sql.Rows) error {
			var (
				seq    int64
				id     string
				leased bool
			)
			if err := r.Scan(&seq, &id, &leased); err != nil {
				return err
			}
			out = append(out, fmt.Sprint(seq, id, leased))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := rows()

	fsys, err := fs.Sub(queueMigrations, "queue")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, b.write, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 1); err != nil {
		t.Fatalf("down to 1: %v", err)
	}
	var bodies []string
	if err := queryRows(ctx, b.read, `SELECT body FROM messages ORDER BY seq`, nil, func(r *sql.Rows) error {
		var body string
		err := r.Scan(&body)
		bodies = append(bodies, body)
		return err
	}); err != nil || !slices.Equal(bodies, []string{"body 1", "body 2", "body 3"}) {
		t.Fatalf("bodies at version 1 = %q, %v, want those published", bodies, err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	if got := rows(); !slices.Equal(got, want) {
		t.Errorf("after down and up, messages (seq id leased) = %v, want %v", got, want)
	}
	mustClaim(t, b, "2")
	b.deliver(ctx, mustClaim(t, b, "3"), func(context.Context, task.Message) error { return nil })
	if err := b.Publish(ctx, "plans", task.Message{ID: "4", Body: []byte("body 4")}); err != nil {
		t.Fatal(err)
	}
	if d := mustClaim(t, b, "4"); d.seq <= 3 {
		t.Errorf("message 4 got seq %d, a deleted message's, want a new one", d.seq)
	}
}

// mustClaim claims the next message of "plans" and fails t unless it is the message
// id, with the body "body " + id.
func mustClaim(t *testing.T, b *Broker, id string) *delivery {
	t.Helper()
	d, _, err := b.claim(t.Context(), "plans")
	if err != nil || d == nil || d.msg.ID != id || string(d.msg.Body) != "body "+id {
		t.Fatalf("claim() = %+v, %v, want message %s", d, err, id)
	}
	return d
}

// openPublished opens a broker with cfg on a fresh data directory, closed by t.Cleanup,
// and publishes to "plans" a message of each of ids, in order, with the body "body "
// and its ID.
func openPublished(t *testing.T, cfg BrokerConfig, ids ...string) *Broker {
	t.Helper()
	b, err := OpenBroker(t.Context(), t.TempDir(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for _, id := range ids {
		if err := b.Publish(t.Context(), "plans", task.Message{ID: id, Body: []byte("body " + id)}); err != nil {
			t.Fatal(err)
		}
	}
	return b
}
