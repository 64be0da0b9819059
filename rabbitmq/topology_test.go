package rabbitmq

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	amqp "github.com/rabbitmq/amqp091-go"

	"boxoffice/task"
	"boxoffice/testenv"
)

func TestRetryDelays(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name string
		give task.RetryPolicy
		want []time.Duration
	}{
		{"default", task.DefaultRetry, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}},
		{"capped", task.RetryPolicy{MaxAttempts: 8, Countdown: 3 * time.Second, MaxDelay: 10 * time.Second}, []time.Duration{3 * time.Second, 6 * time.Second, 10 * time.Second}},
		{"constant", task.RetryPolicy{MaxAttempts: 5, Countdown: 20 * ms, MaxDelay: 20 * ms}, []time.Duration{20 * ms}},
		{"no retries", task.RetryPolicy{MaxAttempts: 1, Countdown: time.Second, MaxDelay: time.Second}, nil},
		{"no countdown", task.RetryPolicy{MaxAttempts: 3}, nil},
		{"under a millisecond", task.RetryPolicy{MaxAttempts: 3, Countdown: 100 * time.Microsecond, MaxDelay: 1500 * time.Microsecond}, []time.Duration{ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := retryDelays(tt.give)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("retryDelays(%+v) (-want +got):\n%s", tt.give, diff)
			}
		})
	}
}

func TestQueueNames(t *testing.T) {
	b := &Broker{cfg: Config{Prefix: "boxoffice"}, delays: []time.Duration{time.Second, 30 * time.Second}}
	got, err := b.queues("plans")
	if err != nil {
		t.Fatal(err)
	}
	want := queues{
		work:  "boxoffice.plans.v2",
		dead:  "boxoffice.plans.v2.dead",
		retry: map[time.Duration]string{time.Second: "boxoffice.plans.v2.retry.1000ms", 30 * time.Second: "boxoffice.plans.v2.retry.30000ms"},
		v1: queues1{work: "boxoffice.plans", dead: "boxoffice.plans.dead",
			retry: []string{"boxoffice.plans.retry.1000ms", "boxoffice.plans.retry.30000ms"}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(queues{}, queues1{})); diff != "" {
		t.Errorf("queues(plans) (-want +got):\n%s", diff)
	}
	if _, err := b.queues(strings.Repeat("x", 250)); err == nil {
		t.Errorf("queues(250 bytes) = nil error, want one: queue names are at most 255 bytes")
	}
	if _, err := b.queues(""); err == nil {
		t.Errorf("queues(\"\") = nil error, want one")
	}
}

// TestRetryQueuesExpireIntoTheWorkQueue checks the countdown topology without a
// consumer: a message put in a retry queue comes back to the work queue when its TTL
// is up, and a short countdown does not wait behind a long one.
func TestRetryQueuesExpireIntoTheWorkQueue(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	retry := task.RetryPolicy{MaxAttempts: 20, Countdown: 10 * time.Millisecond, MaxDelay: time.Hour}
	b, err := Open(ctx, testenv.BrokerURL(t), Config{Prefix: "test-" + newID()[:8], Retry: retry}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.DeleteTopic(context.Background(), "ttl"); err != nil {
			t.Errorf("DeleteTopic() = %v", err)
		}
		b.Close()
	})
	q, err := b.queues("ttl")
	if err != nil {
		t.Fatal(err)
	}
	short, long := q.retry[b.delays[0]], q.retry[b.delays[len(b.delays)-1]]
	if short != b.cfg.Prefix+".ttl.v2.retry.10ms" || long != b.cfg.Prefix+".ttl.v2.retry.2621440ms" {
		t.Fatalf("retry queues %q and %q, want .ttl.v2.retry.10ms and .ttl.v2.retry.2621440ms", short, long)
	}

	// Park one message for 43 minutes, then one for 10ms, as a consumer would after
	// failed attempts.
	err = b.do(ctx, func(s *session) error {
		if err := b.declare(s, q); err != nil {
			return err
		}
		for _, m := range []struct{ key, id string }{{long, "slow"}, {short, "fast"}} {
			p := amqp.Publishing{MessageId: m.id, DeliveryMode: amqp.Persistent, Headers: amqp.Table{AttemptHeader: int64(2)}}
			if _, err := s.publish(ctx, m.key, []amqp.Publishing{p}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, _, err := b.QueueDepth(ctx, "ttl")
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("work queue holds %d messages, want the expired one", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n, _, err := b.depth(ctx, long); err != nil || n != 1 {
		t.Errorf("long retry queue holds %d messages (%v), want the slow one still waiting", n, err)
	}

	got := make(chan task.Message, 1)
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	go b.Subscribe(subCtx, "ttl", func(ctx context.Context, m task.Message) error {
		got <- m
		<-ctx.Done()
		return ctx.Err()
	})
	select {
	case m := <-got:
		want := task.Message{ID: "fast", Topic: "ttl", Body: []byte{}, Attempt: 2}
		if diff := cmp.Diff(want, m, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("delivery after the countdown (-want +got):\n%s", diff)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery after the countdown")
	}
}

// TestConflictingQueueFailsSetup checks that a work queue declared elsewhere with other
// arguments makes Subscribe and Publish fail rather than retry for ever.
func TestConflictingQueueFailsSetup(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b, err := Open(ctx, testenv.BrokerURL(t), Config{Prefix: "test-" + newID()[:8]}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.DeleteTopic(context.Background(), "conflict"); err != nil {
			t.Errorf("DeleteTopic() = %v", err)
		}
		b.Close()
	})
	err = b.do(ctx, func(s *session) error {
		ch, err := s.conn.Channel()
		if err != nil {
			return err
		}
		defer ch.Close()
		q, err := b.queues("conflict")
		if err != nil {
			return err
		}
		_, err = ch.QueueDeclare(q.work, true, false, false, false, amqp.Table{"x-max-length": int64(10)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx, "conflict", func(context.Context, task.Message) error { return nil }); err == nil || !strings.Contains(err.Error(), "PRECONDITION_FAILED") {
		t.Errorf("Subscribe() = %v, want PRECONDITION_FAILED", err)
	}
	if err := b.Publish(ctx, "conflict", task.Message{Body: []byte("x")}); err == nil || !strings.Contains(err.Error(), "PRECONDITION_FAILED") {
		t.Errorf("Publish() = %v, want PRECONDITION_FAILED", err)
	}
}

// TestRetryToADeletedQueueIsNotLost deletes a retry queue behind the consumer's back:
// the retry copy comes back unroutable, so the consumer must not ack the original but
// declare its topology again and retry.
func TestRetryToADeletedQueueIsNotLost(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	retry := task.RetryPolicy{MaxAttempts: 3, Countdown: 10 * time.Millisecond, MaxDelay: 10 * time.Millisecond}
	b, err := Open(ctx, testenv.BrokerURL(t), Config{Prefix: "test-" + newID()[:8], Retry: retry}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.DeleteTopic(context.Background(), "gone"); err != nil {
			t.Errorf("DeleteTopic() = %v", err)
		}
		b.Close()
	})
	var (
		mu       sync.Mutex
		attempts []int
		holding  = make(chan struct{})
		release  = make(chan struct{})
		once     sync.Once
	)
	go b.Subscribe(ctx, "gone", func(ctx context.Context, m task.Message) error {
		once.Do(func() { close(holding); <-release })
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, m.Attempt)
		if m.Attempt < 2 {
			return errors.New("connection refused")
		}
		return nil
	})
	if err := b.Publish(ctx, "gone", task.Message{ID: "m"}); err != nil {
		t.Fatal(err)
	}
	<-holding
	q, _ := b.queues("gone")
	err = b.do(ctx, func(s *session) error {
		ch, err := s.conn.Channel()
		if err != nil {
			return err
		}
		defer ch.Close()
		_, err = ch.QueueDelete(q.retry[10*time.Millisecond], false, false, false)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(attempts)
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("attempts = %v, want the message retried after the retry queue came back", attempts)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]int{1, 1, 2}, attempts); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
}
