package rabbitmq_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"boxoffice/rabbitmq"
	"boxoffice/task"
	"boxoffice/testenv"
)

// proxy forwards loopback TCP connections to upstream until cut, which drops them all
// and turns new ones away until resume: a network failure between a Broker and
// RabbitMQ that leaves the shared server alone.
type proxy struct {
	ln       net.Listener
	upstream string
	refused  atomic.Int64 // connections turned away while down
	wg       sync.WaitGroup

	mu    sync.Mutex // guards down and conns
	down  bool
	conns map[net.Conn]bool // both ends of every forwarded connection
}

// startProxy listens on a loopback port; t.Cleanup stops it.
func startProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream, conns: map[net.Conn]bool{}}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

// serve accepts until the listener closes.
func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.isDown() {
			c.Close()
			p.refused.Add(1)
			continue
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			u.Close()
			p.refused.Add(1)
			continue
		}
		p.conns[c], p.conns[u] = true, true
		p.mu.Unlock()
		p.wg.Go(func() { io.Copy(u, c); u.Close(); c.Close() })
		p.wg.Go(func() { io.Copy(c, u); c.Close(); u.Close() })
	}
}

func (p *proxy) isDown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down
}

// cut drops every forwarded connection and turns new ones away.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// resume forwards new connections again.
func (p *proxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// via returns brokerURL with its host replaced by the proxy's.
func (p *proxy) via(t *testing.T, brokerURL string) string {
	t.Helper()
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

func TestReconnectsAfterTheNetworkFails(t *testing.T) {
	t.Parallel()
	direct := testenv.BrokerURL(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, u.Host)
	var logs testenv.Logs
	retry := task.RetryPolicy{MaxAttempts: 3, Countdown: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond}
	b := openBrokerLog(t, p.via(t, direct), rabbitmq.Config{Retry: retry, Prefetch: 4}, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	var (
		mu       sync.Mutex
		handled  = map[string]int{} // deliveries by message ID
		holding  = make(chan struct{})
		release  = make(chan struct{})
		holdOnce sync.Once
	)
	count := func(id string) int { mu.Lock(); defer mu.Unlock(); return handled[id] }
	subscribed := make(chan error, 1)
	go func() {
		subscribed <- b.Subscribe(ctx, "reconnect", func(ctx context.Context, m task.Message) error {
			mu.Lock()
			handled[m.ID]++
			mu.Unlock()
			if m.ID == "held" {
				// The first delivery of "held" is in the handler when the network fails;
				// its ack cannot reach the broker, which must redeliver it.
				holdOnce.Do(func() { close(holding); <-release })
			}
			return nil
		})
	}()

	batch := func(name string, n int) []task.Message {
		var msgs []task.Message
		for i := range n {
			msgs = append(msgs, task.Message{ID: name + "-" + strconv.Itoa(i), Body: []byte(name)})
		}
		return msgs
	}
	before := append(batch("before", 50), task.Message{ID: "held", Body: []byte("held")})
	if err := b.Publish(ctx, "reconnect", before...); err != nil {
		t.Fatal(err)
	}
	select {
	case <-holding:
	case <-time.After(30 * time.Second):
		t.Fatal("handler never got the held message")
	}
	for _, m := range before[:50] {
		testenv.Poll(t, "delivery of "+m.ID, func() bool { return count(m.ID) >= 1 })
	}

	p.cut()
	after := batch("after", 50)
	published := make(chan error, 1)
	go func() { published <- b.Publish(ctx, "reconnect", after...) }()
	testenv.Poll(t, "a reconnection attempt to be turned away", func() bool { return p.refused.Load() >= 1 })
	close(release) // the held message's ack goes nowhere
	select {
	case err := <-published:
		t.Fatalf("Publish() = %v while the broker was unreachable, want it to wait", err)
	case err := <-subscribed:
		t.Fatalf("Subscribe() = %v while the broker was unreachable, want it to wait", err)
	default:
	}

	p.resume()
	select {
	case err := <-published:
		if err != nil {
			t.Fatalf("Publish() = %v across the outage, want nil", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Publish() still blocked after the network came back")
	}
	for _, m := range after {
		testenv.Poll(t, "delivery of "+m.ID, func() bool { return count(m.ID) >= 1 })
	}
	testenv.Poll(t, "redelivery of the held message", func() bool { return count("held") >= 2 })
	select {
	case err := <-subscribed:
		t.Fatalf("Subscribe() = %v, want it to resume by itself", err)
	default:
	}

	// Stop the consumer: anything it had not acked would go back to the queue.
	cancel()
	if err := <-subscribed; err != nil {
		t.Fatalf("Subscribe() = %v after its context ended, want nil", err)
	}
	testenv.Poll(t, "the consumer to go", func() bool { _, c := depth(t, b, "reconnect"); return c == 0 })
	if n, _ := depth(t, b, "reconnect"); n != 0 {
		t.Errorf("QueueDepth() = %d after every message was handled, want 0 (all acked)", n)
	}
	if dead, err := b.ListDeadLetters(t.Context(), "reconnect", 10); err != nil || len(dead) != 0 {
		t.Errorf("ListDeadLetters() = %d, %v, want none", len(dead), err)
	}
	for _, msg := range []string{`msg="rabbitmq connection lost"`, `msg="rabbitmq connection restored"`} {
		if n := strings.Count(logs.String(), msg); n != 1 {
			t.Errorf("logged %s %d times, want once:\n%s", msg, n, logs.String())
		}
	}
}

func TestPublishWaitsOnlyAsLongAsItsContext(t *testing.T) {
	t.Parallel()
	direct := testenv.BrokerURL(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, u.Host)
	b := openBroker(t, p.via(t, direct), rabbitmq.Config{})
	if err := b.Publish(t.Context(), "outage", task.Message{ID: "1"}); err != nil {
		t.Fatal(err)
	}

	p.cut()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := b.Publish(ctx, "outage", task.Message{ID: "2"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish() = %v while the broker was unreachable, want DeadlineExceeded", err)
	}

	p.resume()
	if err := b.Publish(t.Context(), "outage", task.Message{ID: "3"}); err != nil {
		t.Fatalf("Publish() = %v after the network came back, want nil", err)
	}
	if n, _ := depth(t, b, "outage"); n != 2 {
		t.Errorf("QueueDepth() = %d, want 2 (the message published during the outage gave up)", n)
	}
}
