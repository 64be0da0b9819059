// Package tasktest holds the contract suites of the task ports: every broker and locker
// adapter (sqlite, rabbitmq, memory, redis) runs them.
package tasktest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"boxoffice/task"
	"boxoffice/testenv"
)

// Broker is what a broker adapter under test provides: the suites poll its dead
// letters.
type Broker interface {
	task.Publisher
	task.Subscriber
	task.DeadLetters
}

// OpenBroker returns a broker with the given retry policy whose topics no other test
// uses (for example under a unique prefix), cleaned up by t.Cleanup.
type OpenBroker func(t *testing.T, retry task.RetryPolicy) Broker

// fastRetry keeps countdowns short so that retries show quickly.
var fastRetry = task.RetryPolicy{MaxAttempts: 3, Countdown: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, DeliveryLimit: 3}

// deadLetters returns topic's dead letters (up to 1000), failing t on error.
func deadLetters(t *testing.T, b Broker, topic string) []task.DeadLetter {
	t.Helper()
	dead, err := b.ListDeadLetters(t.Context(), topic, 1000)
	if err != nil {
		t.Fatalf("ListDeadLetters(%s) = %v", topic, err)
	}
	return dead
}

// TestBroker runs the broker contract.
func TestBroker(t *testing.T, open OpenBroker) {
	t.Run("delivers every message once in a single consumer", func(t *testing.T) {
		b := open(t, fastRetry)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var (
			mu  sync.Mutex
			got = map[string]int{}
		)
		go b.Subscribe(ctx, "plans", func(ctx context.Context, m task.Message) error {
			mu.Lock()
			defer mu.Unlock()
			got[string(m.Body)]++
			if m.Topic != "plans" || m.Attempt != 1 || m.Headers["trace"] != "t1" {
				return task.Permanent(fmt.Errorf("delivered topic %q attempt %d headers %v", m.Topic, m.Attempt, m.Headers))
			}
			return nil
		})
		var msgs []task.Message
		for i := range 50 {
			msgs = append(msgs, task.Message{Body: []byte(strconv.Itoa(i)), Headers: map[string]string{"trace": "t1"}})
		}
		if err := b.Publish(ctx, "plans", msgs...); err != nil {
			t.Fatal(err)
		}
		testenv.Poll(t, "50 deliveries", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 50 })
		mu.Lock()
		defer mu.Unlock()
		for body, n := range got {
			if n != 1 {
				t.Errorf("message %s delivered %d times, want 1", body, n)
			}
		}
		if dead := deadLetters(t, b, "plans"); len(dead) != 0 {
			t.Errorf("ListDeadLetters() = %d, want none", len(dead))
		}
	})

	t.Run("retries a failing message then acks it", func(t *testing.T) {
		b := open(t, fastRetry)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var (
			mu       sync.Mutex
			attempts []int
		)
		go b.Subscribe(ctx, "recalc", func(ctx context.Context, m task.Message) error {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, m.Attempt)
			if m.Attempt < 3 {
				return errors.New("connection refused")
			}
			return nil
		})
		if err := b.Publish(ctx, "recalc", task.Message{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		testenv.Poll(t, "3 attempts", func() bool { mu.Lock(); defer mu.Unlock(); return len(attempts) >= 3 })
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(attempts) != "[1 2 3]" {
			t.Errorf("attempts = %v, want [1 2 3]", attempts)
		}
		if dead := deadLetters(t, b, "recalc"); len(dead) != 0 {
			t.Errorf("ListDeadLetters() = %d, want none after a success", len(dead))
		}
	})

	t.Run("dead-letters after the last attempt", func(t *testing.T) {
		b := open(t, fastRetry)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go b.Subscribe(ctx, "recalc", func(ctx context.Context, m task.Message) error {
			return errors.New("timeout")
		})
		if err := b.Publish(ctx, "recalc", task.Message{Body: []byte("doomed")}); err != nil {
			t.Fatal(err)
		}
		var dead []task.DeadLetter
		testenv.Poll(t, "a dead letter", func() bool { dead = deadLetters(t, b, "recalc"); return len(dead) == 1 })
		if string(dead[0].Body) != "doomed" || dead[0].Attempt != fastRetry.MaxAttempts {
			t.Errorf("dead letter %q at attempt %d, want %q at %d", dead[0].Body, dead[0].Attempt, "doomed", fastRetry.MaxAttempts)
		}
		if dead[0].Error != "timeout" || dead[0].Headers[task.ErrorHeader] != "timeout" {
			t.Errorf("dead letter error %q, header %q, want the handler's last error %q", dead[0].Error, dead[0].Headers[task.ErrorHeader], "timeout")
		}
	})

	t.Run("dead-letters a permanent error at once", func(t *testing.T) {
		b := open(t, fastRetry)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var (
			mu    sync.Mutex
			calls int
		)
		go b.Subscribe(ctx, "plans", func(ctx context.Context, m task.Message) error {
			mu.Lock()
			calls++
			mu.Unlock()
			return task.Permanent(errors.New("undecodable"))
		})
		if err := b.Publish(ctx, "plans", task.Message{Body: []byte("bad")}); err != nil {
			t.Fatal(err)
		}
		var dead []task.DeadLetter
		testenv.Poll(t, "a dead letter", func() bool { dead = deadLetters(t, b, "plans"); return len(dead) == 1 })
		mu.Lock()
		defer mu.Unlock()
		if calls != 1 || dead[0].Attempt != 1 {
			t.Errorf("handler called %d times, dead at attempt %d, want 1 and 1", calls, dead[0].Attempt)
		}
	})

	t.Run("a worker dead-letters a message whose handler panics and goes on", func(t *testing.T) {
		b := open(t, fastRetry)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var (
			mu       sync.Mutex
			calls    = map[string]int{}
			panicked int
		)
		w := task.NewWorker(b, map[string]task.Handler{"plans": func(ctx context.Context, m task.Message) error {
			mu.Lock()
			calls[m.ID]++
			mu.Unlock()
			if m.ID == "poison" {
				panic("poison message: the handler's bug")
			}
			return nil
		}}, task.WorkerConfig{Panicked: func(topic string) { mu.Lock(); panicked++; mu.Unlock() }}, slog.New(slog.DiscardHandler))
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		msgs := []task.Message{{ID: "before", Body: []byte("1")}, {ID: "poison", Body: []byte("2")}}
		for i := range 5 {
			msgs = append(msgs, task.Message{ID: "after-" + strconv.Itoa(i), Body: []byte("3")})
		}
		if err := b.Publish(ctx, "plans", msgs...); err != nil {
			t.Fatal(err)
		}
		var dead []task.DeadLetter
		testenv.Poll(t, "the poison message dead-lettered", func() bool { dead = deadLetters(t, b, "plans"); return len(dead) == 1 })
		testenv.Poll(t, "the other 6 messages handled", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(calls) == 7
		})
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Worker.Run() = %v, want nil after its context ended", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for id, n := range calls {
			if n != 1 {
				t.Errorf("message %s handled %d times, want 1", id, n)
			}
		}
		d := dead[0]
		if d.ID != "poison" || d.Attempt != 1 || panicked != 1 {
			t.Errorf("dead letter %q at attempt %d after %d panics, want %q at attempt 1 after 1", d.ID, d.Attempt, panicked, "poison")
		}
		if got := d.Headers[task.ErrorHeader]; got != "panic: poison message: the handler's bug" {
			t.Errorf("dead letter's %s = %q, want the panic", task.ErrorHeader, got)
		}
		if got := d.Headers[task.StackHeader]; !strings.Contains(got, "tasktest.TestBroker") {
			t.Errorf("dead letter's %s = %q, want the handler's stack", task.StackHeader, got)
		}
	})

	t.Run("redelivers a message whose consumer stopped before acking", func(t *testing.T) {
		b := open(t, fastRetry)
		ctx := t.Context()
		first, stopFirst := context.WithCancel(ctx)
		started := make(chan struct{})
		var calls atomic.Int32 // of the first consumer's handler
		done := make(chan error, 1)
		go func() {
			done <- b.Subscribe(first, "plans", func(ctx context.Context, m task.Message) error {
				if calls.Add(1) == 1 {
					close(started)
				}
				<-ctx.Done() // the consumer dies mid-task
				return ctx.Err()
			})
		}()
		if err := b.Publish(ctx, "plans", task.Message{Body: []byte("survivor")}); err != nil {
			t.Fatal(err)
		}
		<-started
		stopFirst()
		if err := <-done; err != nil {
			t.Fatalf("Subscribe() = %v after its context ended, want nil", err)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("the stopped consumer's handler ran %d times, want 1: a consumer whose context is done handles nothing more", n)
		}
		second, stopSecond := context.WithCancel(ctx)
		defer stopSecond()
		got := make(chan string, 1)
		go b.Subscribe(second, "plans", func(ctx context.Context, m task.Message) error {
			select {
			case got <- string(m.Body):
			default:
			}
			return nil
		})
		select {
		case body := <-got:
			if body != "survivor" {
				t.Errorf("redelivered %q, want %q", body, "survivor")
			}
		case <-time.After(20 * time.Second):
			t.Fatal("message not redelivered to the second consumer")
		}
	})

	t.Run("competing consumers share the work", func(t *testing.T) {
		b := open(t, fastRetry)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var (
			mu    sync.Mutex
			total int
			by    = map[int]int{}
		)
		for c := range 2 {
			go b.Subscribe(ctx, "plans", func(ctx context.Context, m task.Message) error {
				mu.Lock()
				total++
				by[c]++
				mu.Unlock()
				return nil
			})
		}
		var msgs []task.Message
		for i := range 200 {
			msgs = append(msgs, task.Message{Body: []byte(strconv.Itoa(i))})
		}
		if err := b.Publish(ctx, "plans", msgs...); err != nil {
			t.Fatal(err)
		}
		testenv.Poll(t, "200 deliveries", func() bool { mu.Lock(); defer mu.Unlock(); return total >= 200 })
		mu.Lock()
		defer mu.Unlock()
		if total != 200 {
			t.Errorf("%d deliveries, want 200", total)
		}
	})
}

// TestLocker runs the locker contract. open returns a locker whose keys no other test
// uses. elapse makes time pass for the lockers open returns: the Advance of the manual
// clock an in-process locker expires on; nil for a service on real time, whose expiry
// the suite polls for.
func TestLocker(t *testing.T, open func(t *testing.T) task.Locker, elapse func(time.Duration)) {
	ctx := context.Background()
	t.Run("one owner at a time", func(t *testing.T) {
		l := open(t)
		a, err := l.Lock(ctx, "k", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Lock(ctx, "k", time.Minute); !errors.Is(err, task.ErrLocked) {
			t.Fatalf("second Lock() = %v, want ErrLocked", err)
		}
		if _, err := l.Lock(ctx, "other", time.Minute); err != nil {
			t.Fatalf("Lock(other) = %v, want a lock on an independent key", err)
		}
		if err := a.Refresh(ctx, time.Minute); err != nil {
			t.Errorf("Refresh() by the owner = %v", err)
		}
		if err := a.Unlock(ctx); err != nil {
			t.Fatalf("Unlock() = %v", err)
		}
		if err := a.Unlock(ctx); !errors.Is(err, task.ErrLockLost) {
			t.Errorf("second Unlock() = %v, want ErrLockLost", err)
		}
		if _, err := l.Lock(ctx, "k", time.Minute); err != nil {
			t.Errorf("Lock() after Unlock() = %v", err)
		}
	})
	t.Run("expires and passes to the next owner", func(t *testing.T) {
		l := open(t)
		a, err := l.Lock(ctx, "k", 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		var b task.Lock
		if elapse != nil {
			if _, err := l.Lock(ctx, "k", time.Minute); !errors.Is(err, task.ErrLocked) {
				t.Fatalf("Lock() before the expiry = %v, want ErrLocked", err)
			}
			elapse(50 * time.Millisecond)
			if b, err = l.Lock(ctx, "k", time.Minute); err != nil {
				t.Fatalf("Lock() at the expiry = %v", err)
			}
		} else {
			testenv.Poll(t, "the lock to expire", func() bool {
				b, err = l.Lock(ctx, "k", time.Minute)
				return err == nil
			})
		}
		if err := a.Refresh(ctx, time.Minute); !errors.Is(err, task.ErrLockLost) {
			t.Errorf("Refresh() by the expired owner = %v, want ErrLockLost", err)
		}
		if err := a.Unlock(ctx); !errors.Is(err, task.ErrLockLost) {
			t.Errorf("Unlock() by the expired owner = %v, want ErrLockLost", err)
		}
		if err := b.Refresh(ctx, time.Minute); err != nil {
			t.Errorf("Refresh() by the new owner = %v; the old owner must not have released it", err)
		}
	})
	t.Run("concurrent contenders get it once", func(t *testing.T) {
		l := open(t)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
		)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := l.Lock(ctx, "k", time.Minute); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d contenders got the lock, want 1", wins)
		}
	})
}

// TestDeadLetters runs the contract of task.DeadLetters, the operator's port: list,
// count, replay and purge, on dead letters made by a real consumer.
func TestDeadLetters(t *testing.T, open OpenBroker) {
	b := open(t, fastRetry)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var (
		mu      sync.Mutex
		healthy bool           // once set, the handler succeeds
		handled []task.Message // the successful deliveries
	)
	go b.Subscribe(ctx, "plans", func(ctx context.Context, m task.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if !healthy {
			return task.Permanent(errors.New("store unavailable"))
		}
		handled = append(handled, m)
		return nil
	})
	published := time.Now()
	var msgs []task.Message
	for i := range 3 {
		msgs = append(msgs, task.Message{ID: "d" + strconv.Itoa(i), Body: []byte("batch " + strconv.Itoa(i)),
			Headers: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
	}
	if err := b.Publish(ctx, "plans", msgs...); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, "3 dead letters", func() bool {
		n, err := b.CountDeadLetters(ctx, "plans")
		return err == nil && n == 3
	})

	t.Run("list shows the oldest first and leaves them", func(t *testing.T) {
		dead, err := b.ListDeadLetters(ctx, "plans", 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) != 2 {
			t.Fatalf("ListDeadLetters(limit 2) = %d dead letters, want 2", len(dead))
		}
		for i, d := range dead {
			want := msgs[i]
			if d.ID != want.ID || string(d.Body) != string(want.Body) || d.Topic != "plans" || d.Attempt != 1 {
				t.Errorf("dead letter %d = %s %q on %q at attempt %d, want %s %q on plans at attempt 1",
					i, d.ID, d.Body, d.Topic, d.Attempt, want.ID, want.Body)
			}
			if d.Error != "store unavailable" || d.Headers[task.ErrorHeader] != "store unavailable" ||
				d.Headers["traceparent"] != want.Headers["traceparent"] {
				t.Errorf("dead letter %d: error %q, headers %v; want the error and the publisher's headers", i, d.Error, d.Headers)
			}
			if d.DiedAt.Before(published.Add(-time.Minute)) || d.DiedAt.After(time.Now().Add(time.Minute)) {
				t.Errorf("dead letter %d died at %v, want about now (%v)", i, d.DiedAt, published)
			}
		}
		if n, err := b.CountDeadLetters(ctx, "plans"); err != nil || n != 3 {
			t.Errorf("CountDeadLetters() = %d, %v after a listing, want 3", n, err)
		}
		if n, err := b.CountDeadLetters(ctx, "recalc"); err != nil || n != 0 {
			t.Errorf("CountDeadLetters(another topic) = %d, %v, want 0", n, err)
		}
	})

	t.Run("replay delivers them again as published", func(t *testing.T) {
		mu.Lock()
		healthy = true
		mu.Unlock()
		rr, ok := b.(task.ReplayReporter)
		if !ok {
			t.Fatalf("%T is no task.ReplayReporter: its replay cannot show progress", b)
		}
		var reports [][2]int
		n, err := rr.ReplayDeadLettersReporting(ctx, "plans", func(moved, total int) { reports = append(reports, [2]int{moved, total}) })
		if err != nil || n != 3 {
			t.Fatalf("ReplayDeadLetters() = %d, %v, want 3", n, err)
		}
		if want := [][2]int{{1, 3}, {2, 3}, {3, 3}}; !slices.Equal(reports, want) {
			t.Errorf("the replay reported %v, want %v", reports, want)
		}
		testenv.Poll(t, "3 replayed deliveries", func() bool { mu.Lock(); defer mu.Unlock(); return len(handled) == 3 })
		mu.Lock()
		defer mu.Unlock()
		byID := map[string]task.Message{}
		for _, m := range handled {
			byID[m.ID] = m
		}
		for _, want := range msgs {
			got, ok := byID[want.ID]
			if !ok || string(got.Body) != string(want.Body) || got.Attempt != 1 || len(got.Headers) != 1 ||
				got.Headers["traceparent"] != want.Headers["traceparent"] {
				t.Errorf("replayed %s = %+v, want its body and the publisher's headers only, at attempt 1", want.ID, got)
			}
		}
		if n, err := b.CountDeadLetters(ctx, "plans"); err != nil || n != 0 {
			t.Errorf("CountDeadLetters() = %d, %v after the replay, want 0", n, err)
		}
	})

	t.Run("purge deletes them", func(t *testing.T) {
		mu.Lock()
		healthy = false
		mu.Unlock()
		if err := b.Publish(ctx, "plans", task.Message{ID: "p1", Body: []byte("x")}, task.Message{ID: "p2", Body: []byte("y")}); err != nil {
			t.Fatal(err)
		}
		testenv.Poll(t, "2 dead letters", func() bool { n, _ := b.CountDeadLetters(ctx, "plans"); return n == 2 })
		n, err := b.PurgeDeadLetters(ctx, "plans")
		if err != nil || n != 2 {
			t.Fatalf("PurgeDeadLetters() = %d, %v, want 2", n, err)
		}
		if dead := deadLetters(t, b, "plans"); len(dead) != 0 {
			t.Errorf("%d dead letters after the purge, want none", len(dead))
		}
		if n, err := b.PurgeDeadLetters(ctx, "plans"); err != nil || n != 0 {
			t.Errorf("second PurgeDeadLetters() = %d, %v, want 0", n, err)
		}
	})
}
