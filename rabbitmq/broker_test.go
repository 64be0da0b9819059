package rabbitmq_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"boxoffice/rabbitmq"
	"boxoffice/task"
	"boxoffice/task/tasktest"
	"boxoffice/testenv"
)

// testBroker is a Broker on a prefix of its own that remembers the topics it used, so
// that t.Cleanup can delete their queues.
type testBroker struct {
	*rabbitmq.Broker
	prefix string
	retry  task.RetryPolicy

	mu     sync.Mutex // guards topics
	topics map[string]bool
}

// openBroker opens a Broker on url under a fresh prefix (unless cfg has one) with a
// silent logger; see openBrokerLog.
func openBroker(t testing.TB, url string, cfg rabbitmq.Config) *testBroker {
	t.Helper()
	return openBrokerLog(t, url, cfg, slog.New(slog.DiscardHandler))
}

// openBrokerLog opens a Broker on url (maybe a proxy) under a fresh prefix (unless cfg
// has one). t.Cleanup closes it and then deletes, through a direct connection, the
// queues of every topic it used.
func openBrokerLog(t testing.TB, url string, cfg rabbitmq.Config, log *slog.Logger) *testBroker {
	t.Helper()
	direct := testenv.BrokerURL(t)
	if cfg.Prefix == "" {
		cfg.Prefix = "test-" + randomHex(4)
	}
	if cfg.Retry.MaxAttempts == 0 {
		cfg.Retry = task.DefaultRetry
	}
	b, err := rabbitmq.Open(t.Context(), url, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	tb := &testBroker{Broker: b, prefix: cfg.Prefix, retry: cfg.Retry, topics: map[string]bool{}}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cleaner, err := rabbitmq.Open(ctx, direct, rabbitmq.Config{Prefix: cfg.Prefix, Retry: cfg.Retry}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Errorf("open a broker to delete the test queues: %v", err)
			return
		}
		defer cleaner.Close()
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for topic := range tb.topics {
			if err := cleaner.DeleteTopic(ctx, topic); err != nil {
				t.Errorf("DeleteTopic(%q) = %v", topic, err)
			}
		}
	})
	return tb
}

func (b *testBroker) use(topic string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.topics[topic] = true
}

func (b *testBroker) Publish(ctx context.Context, topic string, msgs ...task.Message) error {
	b.use(topic)
	return b.Broker.Publish(ctx, topic, msgs...)
}

func (b *testBroker) Subscribe(ctx context.Context, topic string, h task.Handler) error {
	b.use(topic)
	return b.Broker.Subscribe(ctx, topic, h)
}

func (b *testBroker) ListDeadLetters(ctx context.Context, topic string, limit int) ([]task.DeadLetter, error) {
	b.use(topic)
	return b.Broker.ListDeadLetters(ctx, topic, limit)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// depth returns QueueDepth's counts, failing the test on error.
func depth(t testing.TB, b *testBroker, topic string) (messages, consumers int) {
	t.Helper()
	messages, consumers, err := b.QueueDepth(t.Context(), topic)
	if err != nil {
		t.Fatalf("QueueDepth(%q) = %v", topic, err)
	}
	return messages, consumers
}

func TestBroker(t *testing.T) {
	url := testenv.BrokerURL(t)
	tasktest.TestBroker(t, func(t *testing.T, retry task.RetryPolicy) tasktest.Broker {
		return openBroker(t, url, rabbitmq.Config{Retry: retry})
	})
}

func TestDeadLetters(t *testing.T) {
	url := testenv.BrokerURL(t)
	tasktest.TestDeadLetters(t, func(t *testing.T, retry task.RetryPolicy) tasktest.Broker {
		return openBroker(t, url, rabbitmq.Config{Retry: retry})
	})
}

func TestPublishReturnsOnceQueued(t *testing.T) {
	t.Parallel()
	b := openBroker(t, testenv.BrokerURL(t), rabbitmq.Config{})
	ctx := t.Context()
	var msgs []task.Message
	for i := range 1000 {
		msgs = append(msgs, task.Message{Body: []byte(strconv.Itoa(i))})
	}
	if err := b.Publish(ctx, "confirms", msgs...); err != nil {
		t.Fatal(err)
	}
	// No polling: a confirmed message is in the queue.
	if n, _ := depth(t, b, "confirms"); n != 1000 {
		t.Fatalf("QueueDepth() = %d after Publish of 1000, want 1000", n)
	}

	var (
		wg   sync.WaitGroup
		errs = make(chan error, 8)
	)
	for range 8 {
		wg.Go(func() {
			for range 10 {
				errs <- b.Publish(ctx, "confirms", msgs[:25]...)
			}
		})
	}
	go func() { wg.Wait(); close(errs) }()
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Publish() = %v", err)
		}
	}
	if n, _ := depth(t, b, "confirms"); n != 3000 {
		t.Errorf("QueueDepth() = %d after 80 concurrent Publish of 25 more, want 3000", n)
	}
}

func TestRetriesThroughOneCountdownQueue(t *testing.T) {
	t.Parallel()
	// A constant countdown sends every retry through the same TTL queue; each time the
	// message comes back with its own headers, not RabbitMQ's dead-lettering ones.
	retry := task.RetryPolicy{MaxAttempts: 5, Countdown: 20 * time.Millisecond, MaxDelay: 20 * time.Millisecond}
	b := openBroker(t, testenv.BrokerURL(t), rabbitmq.Config{Retry: retry})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var (
		mu   sync.Mutex
		seen []task.Message
	)
	go b.Subscribe(ctx, "flaky", func(ctx context.Context, m task.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, m)
		if m.Attempt < 4 {
			return errors.New("connection refused")
		}
		return nil
	})
	headers := map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	if err := b.Publish(ctx, "flaky", task.Message{ID: "m1", Body: []byte("x"), Headers: headers}); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, "4 attempts", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) >= 4 })
	mu.Lock()
	defer mu.Unlock()
	var want []task.Message
	for attempt := 1; attempt <= 4; attempt++ {
		want = append(want, task.Message{ID: "m1", Topic: "flaky", Body: []byte("x"), Headers: headers, Attempt: attempt})
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if dead, err := b.ListDeadLetters(ctx, "flaky", 10); err != nil || len(dead) != 0 {
		t.Errorf("ListDeadLetters() = %d, %v, want none after a success", len(dead), err)
	}
}

func TestDeadLetterRecordsTheError(t *testing.T) {
	t.Parallel()
	retry := task.RetryPolicy{MaxAttempts: 2, Countdown: 10 * time.Millisecond, MaxDelay: 10 * time.Millisecond}
	b := openBroker(t, testenv.BrokerURL(t), rabbitmq.Config{Retry: retry})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go b.Subscribe(ctx, "prices", func(ctx context.Context, m task.Message) error {
		if string(m.Body) == "bad" {
			return task.Permanent(errors.New("undecodable"))
		}
		return fmt.Errorf("price feed: %w", context.DeadlineExceeded)
	})
	trace := map[string]string{"trace": "t1"}
	msgs := []task.Message{{ID: "slow", Body: []byte("slow"), Headers: trace}, {ID: "bad", Body: []byte("bad"), Headers: trace}}
	if err := b.Publish(ctx, "prices", msgs...); err != nil {
		t.Fatal(err)
	}
	var dead []task.DeadLetter
	testenv.Poll(t, "2 dead letters", func() bool {
		var err error
		dead, err = b.ListDeadLetters(ctx, "prices", 10)
		return err == nil && len(dead) == 2
	})
	byID := map[string]task.Message{}
	for _, m := range dead {
		byID[m.ID] = m.Message
	}
	want := map[string]task.Message{
		"slow": {ID: "slow", Topic: "prices", Body: []byte("slow"), Attempt: 2,
			Headers: map[string]string{"trace": "t1", rabbitmq.ErrorHeader: "price feed: context deadline exceeded"}},
		"bad": {ID: "bad", Topic: "prices", Body: []byte("bad"), Attempt: 1,
			Headers: map[string]string{"trace": "t1", rabbitmq.ErrorHeader: "undecodable"}},
	}
	if diff := cmp.Diff(want, byID); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}

	// ListDeadLetters leaves them in the queue.
	again, err := b.ListDeadLetters(ctx, "prices", 10)
	if err != nil || len(again) != 2 {
		t.Errorf("second ListDeadLetters() = %d, %v, want the same 2", len(again), err)
	}
	if n, err := b.CountDeadLetters(ctx, "prices"); err != nil || n != 2 {
		t.Errorf("CountDeadLetters() = %d, %v, want 2", n, err)
	}
}

func TestCloseStopsSubscribers(t *testing.T) {
	t.Parallel()
	b := openBroker(t, testenv.BrokerURL(t), rabbitmq.Config{})
	ctx := t.Context()
	done := make(chan error, 1)
	go func() {
		done <- b.Subscribe(ctx, "closing", func(context.Context, task.Message) error { return nil })
	}()
	testenv.Poll(t, "the consumer", func() bool { _, c := depth(t, b, "closing"); return c == 1 })
	if err := b.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, rabbitmq.ErrClosed) {
			t.Errorf("Subscribe() = %v after Close, want ErrClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Subscribe() still running after Close")
	}
	if err := b.Publish(ctx, "closing", task.Message{Body: []byte("late")}); !errors.Is(err, rabbitmq.ErrClosed) {
		t.Errorf("Publish() = %v after Close, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
}

func TestOpenErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(testenv.BrokerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-pw"
	tests := []struct {
		name string
		give string
	}{
		{"wrong credentials", "amqp://boxoffice-nobody:" + secret + "@" + u.Host + "/"},
		{"nothing listening", "amqp://guest:" + secret + "@127.0.0.1:1/"},
		{"not a URL", "amqp://guest:" + secret + "%zz@" + u.Host + "/"},
		{"wrong scheme", "http://guest:" + secret + "@" + u.Host + "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			b, err := rabbitmq.Open(ctx, tt.give, rabbitmq.Config{}, slog.New(slog.DiscardHandler))
			if err == nil {
				b.Close()
				t.Fatalf("Open(%s) = nil error, want one", tt.name)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Open() error %q shows the password", err)
			}
		})
	}
}

func BenchmarkPublishConsume(b *testing.B) {
	const n = 10000
	br := openBroker(b, testenv.BrokerURL(b), rabbitmq.Config{Prefetch: 256})
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	var handled atomic.Int64
	for range 2 {
		go br.Subscribe(ctx, "bench", func(context.Context, task.Message) error {
			handled.Add(1)
			return nil
		})
	}
	msgs := make([]task.Message, n)
	for i := range msgs {
		msgs[i] = task.Message{Body: []byte(fmt.Sprintf(`{"plan_id":%d,"zones":[1,2,3]}`, i))}
	}
	for b.Loop() {
		target := handled.Load() + n
		if err := br.Publish(ctx, "bench", msgs...); err != nil {
			b.Fatal(err)
		}
		for handled.Load() < target {
			time.Sleep(time.Millisecond)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkPublish(b *testing.B) {
	const n = 10000
	br := openBroker(b, testenv.BrokerURL(b), rabbitmq.Config{})
	ctx := b.Context()
	msgs := make([]task.Message, n)
	for i := range msgs {
		msgs[i] = task.Message{Body: []byte(fmt.Sprintf(`{"plan_id":%d,"zones":[1,2,3]}`, i))}
	}
	for b.Loop() {
		if err := br.Publish(ctx, "bench-publish", msgs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func TestPublishRedeclaresADeletedQueue(t *testing.T) {
	t.Parallel()
	url := testenv.BrokerURL(t)
	b := openBroker(t, url, rabbitmq.Config{})
	ctx := t.Context()
	if err := b.Publish(ctx, "deleted", task.Message{ID: "1"}); err != nil {
		t.Fatal(err)
	}
	// Another broker deletes the queues that b declared on its connection.
	other, err := rabbitmq.Open(ctx, url, rabbitmq.Config{Prefix: b.prefix, Retry: b.retry}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.DeleteTopic(ctx, "deleted"); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "deleted", task.Message{ID: "2"}); err != nil {
		t.Fatalf("Publish() = %v after the queue was deleted, want it declared again", err)
	}
	if n, _ := depth(t, b, "deleted"); n != 1 {
		t.Errorf("QueueDepth() = %d, want the message published after the deletion", n)
	}
}
