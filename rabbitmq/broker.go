package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"boxoffice/redact"
	"boxoffice/task"
)

var (
	_ task.Publisher  = (*Broker)(nil)
	_ task.Subscriber = (*Broker)(nil)
)

// ErrClosed is returned by the methods of a Broker after Close, and by Subscribe calls
// that were running when it closed.
var ErrClosed = errors.New("rabbitmq: broker closed")

const (
	dialTimeout      = 30 * time.Second       // TCP connect plus AMQP handshake
	closeTimeout     = 5 * time.Second        // connection.close handshake in Close
	minBackoff       = 100 * time.Millisecond // first pause between reconnection attempts
	maxBackoff       = 5 * time.Second        // longest pause between reconnection attempts
	maxChannelErrors = 3                      // channel-level failures in a row before giving up
)

// Config configures a Broker. The zero value of each field picks its default.
type Config struct {
	// Prefix starts the name of every queue: "<prefix>.<topic>". Brokers with the same
	// prefix share topics. Default "boxoffice".
	Prefix string
	// Retry says how often and after which countdown a failed message is tried again.
	// Default (MaxAttempts 0) task.DefaultRetry.
	Retry task.RetryPolicy
	// Prefetch is how many unacknowledged deliveries each Subscribe call may hold: one
	// in its handler, the rest waiting in memory. Default 1: when a message kills its
	// consumer, every delivery the consumer held counts towards its delivery limit, so a
	// larger prefetch would have the poison message take innocent ones to the dead
	// letters with it. A handler's work dwarfs the round trip to fetch the next message.
	Prefetch int
	// ConnectionName labels the connection in rabbitmqctl list_connections and the
	// management UI. Default "boxoffice".
	ConnectionName string
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "boxoffice"
	}
	if c.Retry.MaxAttempts <= 0 {
		c.Retry = task.DefaultRetry
	}
	if c.Prefetch <= 0 {
		c.Prefetch = 1
	}
	if c.ConnectionName == "" {
		c.ConnectionName = "boxoffice"
	}
	return c
}

// Broker publishes and consumes tasks on RabbitMQ over one connection, which it keeps up
// by itself: see the package documentation for the topology and the guarantees. It is
// safe for concurrent use; Close it when done.
type Broker struct {
	url      string // with credentials: never in an error or a log
	addr     string // url without the password, for errors and logs
	password string // scrubbed from the errors of the client library
	cfg      Config
	delays   []time.Duration // the retry policy's distinct countdowns, one queue each
	log      *slog.Logger

	ctx     context.Context // done once Close was called
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the supervise goroutine has returned
	once    sync.Once     // runs Close's shutdown once
	err     error         // Close's result

	mu    sync.Mutex    // guards sess and ready
	sess  *session      // the live connection; nil while reconnecting and after Close
	ready chan struct{} // closed when sess is set
}

// session is one AMQP connection and what was set up on it. A Broker replaces it when
// the connection drops.
type session struct {
	conn   *amqp.Connection
	closed chan *amqp.Error // from conn.NotifyClose
	lost   chan struct{}    // closed by supervise once it saw conn close

	pubMu sync.Mutex      // guards idle
	idle  []*publisher    // confirm-mode channels for the next Publish calls
	decMu sync.Mutex      // guards decl and serialises declarations
	decl  map[string]bool // work queues whose topology was declared on conn
}

func newSession(conn *amqp.Connection) *session {
	return &session{
		conn:   conn,
		closed: conn.NotifyClose(make(chan *amqp.Error, 1)),
		lost:   make(chan struct{}),
		decl:   map[string]bool{},
	}
}

// Open connects to the RabbitMQ server at url (amqp:// or amqps://) and returns a Broker
// that stays connected until Close: it reconnects by itself when the connection drops.
// ctx bounds only the first connection, which must succeed. Errors and logs name the
// server without its password. log (nil for none) gets the connection's transitions,
// dead-lettered messages and settlements lost with a connection.
func Open(ctx context.Context, url string, cfg Config, log *slog.Logger) (*Broker, error) {
	addr, password, err := checkURL(url)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Broker{
		url:      url,
		addr:     addr,
		password: password,
		cfg:      cfg,
		delays:   retryDelays(cfg.Retry),
		log:      log,
		stopped:  make(chan struct{}),
		ready:    make(chan struct{}),
	}
	conn, err := b.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: connect to %s: %w", addr, err)
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	s := newSession(conn)
	b.sess = s
	close(b.ready)
	go b.supervise(s)
	return b, nil
}

// Close closes the connection and stops reconnecting. Subscribe calls then return
// ErrClosed (their unacknowledged deliveries go back to their queues), and so do later
// calls. Close is idempotent.
func (b *Broker) Close() error {
	b.once.Do(func() {
		b.cancel()
		<-b.stopped
		b.mu.Lock()
		s := b.sess
		b.sess = nil
		b.mu.Unlock()
		if s == nil {
			return
		}
		if err := s.conn.CloseDeadline(time.Now().Add(closeTimeout)); err != nil && !errors.Is(err, amqp.ErrClosed) {
			b.err = fmt.Errorf("rabbitmq: close: %w", b.scrub(err))
		}
	})
	return b.err
}

// checkURL checks that raw is an AMQP URL and returns it without its password, and the
// password. Its errors never quote raw, which holds the password.
func checkURL(raw string) (addr, password string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", errors.New("rabbitmq: broker URL is not a valid URL")
	}
	if u.Scheme != "amqp" && u.Scheme != "amqps" {
		return "", "", fmt.Errorf("rabbitmq: broker URL scheme %q, want amqp or amqps", u.Scheme)
	}
	if u.Host == "" {
		return "", "", errors.New("rabbitmq: broker URL has no host")
	}
	password, _ = u.User.Password()
	return redact.URL(raw), password, nil
}

// scrub replaces the password in err's text, in case the client library quoted it.
func (b *Broker) scrub(err error) error {
	if err == nil || b.password == "" || !strings.Contains(err.Error(), b.password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), b.password, "xxxxx"))
}

// dial opens a connection; ctx bounds the TCP connect and the AMQP handshake.
func (b *Broker) dial(ctx context.Context) (*amqp.Connection, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(b.cfg.ConnectionName)
	conn, err := amqp.DialConfig(b.url, amqp.Config{
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: dialTimeout}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Heartbeats start after the handshake: until then a deadline guards it.
			// amqp091 clears the deadline once the connection is open.
			deadline := time.Now().Add(dialTimeout)
			if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
				deadline = dl
			}
			if err := c.SetDeadline(deadline); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	})
	if err != nil {
		return nil, b.scrub(err)
	}
	if err := ctx.Err(); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// supervise watches the connection of s and, whenever it drops, redials with backoff
// and installs the new session. It returns when Close cancels b.ctx.
func (b *Broker) supervise(s *session) {
	defer close(b.stopped)
	for {
		var cause *amqp.Error
		select {
		case <-b.ctx.Done():
			return
		case cause = <-s.closed:
		}
		b.mu.Lock()
		b.sess = nil
		b.ready = make(chan struct{})
		b.mu.Unlock()
		close(s.lost)
		down := time.Now()
		var reason error = amqp.ErrClosed
		if cause != nil {
			reason = b.scrub(cause)
		}
		b.log.Warn("rabbitmq connection lost", "addr", b.addr, "err", reason)

		conn, attempts := b.redial()
		if conn == nil {
			return
		}
		s = newSession(conn)
		b.mu.Lock()
		b.sess = s
		close(b.ready)
		b.mu.Unlock()
		b.log.Info("rabbitmq connection restored", "addr", b.addr, "attempts", attempts,
			"down_ms", time.Since(down).Milliseconds())
	}
}

// redial dials until it connects, pausing with exponential backoff and jitter between
// attempts. It returns nil once Close was called.
func (b *Broker) redial() (conn *amqp.Connection, attempts int) {
	backoff := minBackoff
	for {
		attempts++
		conn, err := b.dial(b.ctx)
		if err == nil {
			return conn, attempts
		}
		if b.ctx.Err() != nil {
			return nil, attempts
		}
		b.log.Debug("rabbitmq reconnect", "addr", b.addr, "attempt", attempts, "err", err)
		// Full jitter in [backoff/2, backoff): reconnecting workers do not stampede.
		pause := backoff/2 + rand.N(backoff/2)
		t := time.NewTimer(pause)
		select {
		case <-b.ctx.Done():
			t.Stop()
			return nil, attempts
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// current returns the live session, waiting for a reconnection if there is none.
func (b *Broker) current(ctx context.Context) (*session, error) {
	for {
		if b.ctx.Err() != nil {
			return nil, ErrClosed
		}
		b.mu.Lock()
		s, ready := b.sess, b.ready
		b.mu.Unlock()
		if s != nil {
			return s, nil
		}
		select {
		case <-ready:
		case <-b.ctx.Done():
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// do runs op on the live session until it succeeds, riding out reconnections: when op
// fails because the connection dropped, do waits for the next one and runs op again;
// when only a channel failed, it tries again a few times. op must be safe to repeat.
func (b *Broker) do(ctx context.Context, op func(s *session) error) error {
	failures := 0
	for {
		s, err := b.current(ctx)
		if err != nil {
			return err
		}
		err = op(s)
		if err == nil {
			return nil
		}
		if err := b.recover(ctx, s, err, &failures); err != nil {
			return err
		}
	}
}

// recover decides what follows a failure err of an operation on s: nil to try again,
// after the next connection is up if s's connection dropped or after a short pause if
// only a channel failed (counted in failures), or else the error to return.
func (b *Broker) recover(ctx context.Context, s *session, err error, failures *int) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if b.ctx.Err() != nil {
		return ErrClosed
	}
	// The broker may have deleted a queue (a consumer is cancelled then): declare the
	// topology again next time.
	s.forgetAll()
	if !s.conn.IsClosed() {
		*failures++
		if *failures >= maxChannelErrors {
			return b.scrub(err)
		}
		t := time.NewTimer(time.Duration(*failures) * minBackoff)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-s.lost:
		case <-b.ctx.Done():
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// The connection dropped: supervise notices and reconnects.
	select {
	case <-s.lost:
		return nil
	case <-b.ctx.Done():
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wrap adds the operation and topic to err, which ErrClosed already explains.
func wrap(op, topic string, err error) error {
	if err == nil || errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("rabbitmq: %s %s: %w", op, topic, err)
}
