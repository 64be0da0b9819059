package rabbitmq

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"boxoffice/task"
	"boxoffice/testenv"
)

// TestMigratesClassicQueues starts from the classic queues of the first topology, as a
// deployment upgraded from it has them, holding a message each way (waiting, waiting
// out a countdown, dead): the first use of the topic moves them all into the quorum
// queues, nothing lost, deletes the classic retry and dead-letter queues and leaves the
// classic work queue empty.
func TestMigratesClassicQueues(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	retry := task.RetryPolicy{MaxAttempts: 5, Countdown: time.Hour, MaxDelay: time.Hour, DeliveryLimit: 5}
	b, err := Open(ctx, testenv.BrokerURL(t), Config{Prefix: "test-" + newID()[:8], Retry: retry}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.DeleteTopic(context.Background(), "old"); err != nil {
			t.Errorf("DeleteTopic() = %v", err)
		}
		b.Close()
	})
	q, err := b.queues("old")
	if err != nil {
		t.Fatal(err)
	}
	old := q.v1
	// The first topology, as the previous version declared it, with its messages.
	err = b.do(ctx, func(s *session) error {
		ch, err := s.conn.Channel()
		if err != nil {
			return err
		}
		defer ch.Close()
		if err := ch.Confirm(false); err != nil {
			return err
		}
		if _, err := ch.QueueDeclare(old.work, true, false, false, false, nil); err != nil {
			return err
		}
		if _, err := ch.QueueDeclare(old.dead, true, false, false, false, nil); err != nil {
			return err
		}
		if _, err := ch.QueueDeclare(old.retry[0], true, false, false, false, amqp.Table{
			"x-message-ttl": time.Hour.Milliseconds(), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": old.work,
		}); err != nil {
			return err
		}
		for _, m := range []struct {
			queue, id string
			attempt   int64
			headers   amqp.Table
		}{
			{old.work, "w1", 1, nil},
			{old.work, "w2", 1, nil},
			{old.retry[0], "r1", 3, nil},
			{old.dead, "d1", 5, amqp.Table{ErrorHeader: "store unavailable"}},
		} {
			h := amqp.Table{AttemptHeader: m.attempt, "traceparent": "t-" + m.id}
			for k, v := range m.headers {
				h[k] = v
			}
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", m.queue, true, false,
				amqp.Publishing{MessageId: m.id, DeliveryMode: amqp.Persistent, Headers: h, Body: []byte(m.id)})
			if err != nil {
				return err
			}
			if ok, err := dc.WaitContext(ctx); err != nil || !ok {
				return errors.Join(errors.New("not confirmed"), err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu  sync.Mutex
		got = map[string]task.Message{}
	)
	go b.Subscribe(ctx, "old", func(ctx context.Context, m task.Message) error {
		mu.Lock()
		defer mu.Unlock()
		got[m.ID] = m
		return nil
	})
	testenv.Poll(t, "the 3 waiting messages delivered from the quorum queue", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	})
	mu.Lock()
	for id, attempt := range map[string]int{"w1": 1, "w2": 1, "r1": 3} {
		if m := got[id]; string(m.Body) != id || m.Attempt != attempt || m.Headers["traceparent"] != "t-"+id {
			t.Errorf("migrated %s = %+v, want its body, headers and attempt %d", id, m, attempt)
		}
	}
	mu.Unlock()
	dead, err := b.ListDeadLetters(ctx, "old", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].ID != "d1" || dead[0].Error != "store unavailable" || dead[0].Attempt != 5 {
		t.Errorf("dead letters = %+v, want d1 with its error at attempt 5", dead)
	}
	if n, _, err := b.depth(ctx, old.work); err != nil || n != 0 {
		t.Errorf("classic work queue holds %d messages (%v), want it kept empty", n, err)
	}
	for _, name := range append([]string{old.dead}, old.retry...) {
		err := b.do(ctx, func(s *session) error {
			ch, err := s.conn.Channel()
			if err != nil {
				return err
			}
			defer ch.Close()
			_, err = ch.QueueDeclarePassive(name, true, false, false, false, nil)
			return err
		})
		if ae := (*amqp.Error)(nil); !errors.As(err, &ae) || ae.Code != amqp.NotFound {
			t.Errorf("classic queue %s: passive declare = %v, want it deleted (NOT_FOUND)", name, err)
		}
	}
}
