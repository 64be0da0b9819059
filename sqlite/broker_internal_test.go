package sqlite

import (
	"context"
	"log/slog"
	"testing"
	"time"

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
