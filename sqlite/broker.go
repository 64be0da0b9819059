package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pressly/goose/v3"

	"boxoffice/clock"
	"boxoffice/task"
)

// QueueFileName is the name of the embedded broker's database file in the data
// directory. It is a file of its own so that the broker's commits never wait for the
// store's single writer, nor the store's for the broker's.
const QueueFileName = "queue.db"

//go:embed queue/*.sql
var queueMigrations embed.FS

var (
	_ task.Publisher   = (*Broker)(nil)
	_ task.Subscriber  = (*Broker)(nil)
	_ task.DeadLetters = (*Broker)(nil)
)

// BrokerConfig tunes a Broker. The zero value of each field picks its default.
type BrokerConfig struct {
	// Retry says how often and after which countdown a failed message is tried again,
	// and how many deliveries may be lost with their consumer. Default task.DefaultRetry.
	Retry task.RetryPolicy
	// Lease is how long a delivery holds its message before the message is handed to
	// another consumer; the consumer renews it every third of it while its handler
	// runs, so only a consumer that died (or is stuck outside its handler) loses it.
	// Default 30 s.
	Lease time.Duration
	// Poll is how often an idle consumer looks for messages that another process put in
	// the queue (boxoffice dead-letters replay beside boxoffice run); messages of this
	// process wake it at once. Default 1 s.
	Poll time.Duration
	// Clock tells the time of countdowns and leases and makes the consumers' timers
	// and the leases' renewal tickers. Default clock.System.
	Clock clock.Clock
}

func (c BrokerConfig) withDefaults() BrokerConfig {
	if c.Retry.MaxAttempts <= 0 {
		c.Retry = task.DefaultRetry
	}
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	c.Clock = clock.Or(c.Clock)
	return c
}

// Broker is the embedded mode's durable task broker: a queue in a SQLite database of its
// own (queue.db in the data directory), with the guarantees of the RabbitMQ adapter.
//
//   - Publish returns once its messages are committed with synchronous=FULL: they
//     survive a crash of the process and a power loss.
//   - Acks late: a delivery holds its message under a lease, renewed while the handler
//     runs, and the message is deleted only after the handler returned nil. A consumer
//     that dies leaves the lease to expire, and the message is delivered again; Recover,
//     called at start-up, hands back at once every delivery a previous process left
//     unfinished.
//   - A failed message waits out the retry policy's countdown (available_at) and is
//     delivered again with the next attempt number; a permanent error or the last
//     attempt moves it to the dead letters, with the error (and a panic's stack) in its
//     headers.
//   - A message whose deliveries keep ending without an outcome (its consumer is killed
//     each time: OOM, SIGKILL) is dead-lettered once more than Retry.DeliveryLimit of
//     them were lost in a row, instead of crash-looping the process for ever.
//
// Delivery is at least once: a consumer that dies after its handler's effects but
// before the delete commits has its message handled again. Several processes may open
// the same queue (boxoffice dead-letters beside boxoffice run): SQLite serialises their
// writes, and consumers see another process's messages within Poll.
type Broker struct {
	path  string
	write *sql.DB // one connection; every transaction BEGIN IMMEDIATE
	read  *sql.DB // query-only connections for counts and listings
	ckpt  *checkpointer
	cfg   BrokerConfig
	log   *slog.Logger
	// lock is the data directory's, shared (LockFileName); nil for Restore's own queue.
	lock *dirLock
	// consumer is the queue's consumer lock (ConsumerLockFileName), taken by Recover.
	consumer *dirLock

	mu   sync.Mutex               // guards wake
	wake map[string]chan struct{} // per topic: closed (and replaced) when a message may have become ready
}

// OpenBroker opens, creating them when missing, the data directory dataDir and the
// queue database in it, and brings its schema up to date. log (nil for none) gets the
// dead-lettered messages and the leases lost. Close it when done. Like Open it holds the
// data directory's lock, shared, until Close.
func OpenBroker(ctx context.Context, dataDir string, cfg BrokerConfig, log *slog.Logger) (*Broker, error) {
	path := filepath.Join(dataDir, QueueFileName)
	b, err := openLocked(dataDir, func() (*Broker, error) { return openBroker(ctx, dataDir, path, cfg, log) })
	if err != nil {
		return nil, fmt.Errorf("open sqlite broker %s: %w", path, err)
	}
	return b, nil
}

func openBroker(ctx context.Context, dataDir, path string, cfg BrokerConfig, log *slog.Logger) (*Broker, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	write, err := openWriter(ctx, abs, durable)
	if err != nil {
		return nil, err
	}
	read, err := openReaders(ctx, abs, 2)
	if err != nil {
		write.Close()
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Its commits carry messages of up to 16 MiB (embeddedBatch), and the worker's
	// claims and settlements commit on its critical path.
	ckpt, err := startCheckpointer(ctx, abs, log)
	if err != nil {
		return nil, errors.Join(err, read.Close(), write.Close())
	}
	b := &Broker{path: path, write: write, read: read, ckpt: ckpt, cfg: cfg.withDefaults(), log: log, wake: map[string]chan struct{}{}}
	if err := b.migrate(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Broker) migrate(ctx context.Context) error {
	fsys, err := fs.Sub(queueMigrations, "queue")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, b.write, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// Close closes the queue database. Subscribe calls should have returned first.
func (b *Broker) Close() error {
	defer b.lock.release()
	defer b.consumer.release()
	if err := errors.Join(b.ckpt.close(), b.read.Close(), b.write.Close()); err != nil {
		return fmt.Errorf("close sqlite broker %s: %w", b.path, err)
	}
	return nil
}

// Recover claims the queue for this process and hands back to it, at once, every
// delivery that a previous process left unfinished (it was killed mid-task), without
// waiting for their leases to expire; each counts as a delivery lost. Call it at
// start-up, before subscribing, in the one process that consumes this queue. The claim
// (an exclusive lock on ConsumerLockFileName, held until Close) makes a second consumer
// fail here with ErrInUse, rather than take the first one's live deliveries.
func (b *Broker) Recover(ctx context.Context) (int, error) {
	if b.consumer == nil {
		l, err := lockConsumer(filepath.Dir(b.path))
		if err != nil {
			return 0, fmt.Errorf("sqlite broker: %w", err)
		}
		b.consumer = l
	}
	res, err := b.write.ExecContext(ctx, `UPDATE messages SET lease = NULL, available_at = ? WHERE lease IS NOT NULL`,
		b.cfg.Clock.Now().UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("sqlite broker: recover deliveries: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Publish commits msgs to topic's queue in one transaction, durable (synchronous=FULL)
// when it returns nil. A message without an ID gets a random one; Topic and Attempt
// are ignored (a published message is on its first attempt).
func (b *Broker) Publish(ctx context.Context, topic string, msgs ...task.Message) error {
	if topic == "" {
		return errors.New("sqlite broker: empty topic")
	}
	if len(msgs) == 0 {
		return nil
	}
	now := b.cfg.Clock.Now().UnixMilli()
	err := b.tx(ctx, func(tx *sql.Tx) error {
		for _, m := range msgs {
			id := m.ID
			if id == "" {
				id = newID()
			}
			headers, err := encodeHeaders(m.Headers)
			if err != nil {
				return err
			}
			body := m.Body
			if body == nil {
				body = []byte{}
			}
			if err := insertMessage(ctx, tx, topic, id, headers, body, now, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite broker: publish %s: %w", topic, err)
	}
	b.notify(topic)
	return nil
}

// Subscribe hands topic's messages to h, one at a time, until ctx is done, and returns
// nil then; run several Subscribe calls (here or in other processes) for competing
// consumers. A delivery is deleted after h returned nil; when h fails it waits out its
// countdown, or is dead-lettered when h's error is task.Permanent or the attempts are
// spent. An error returned after ctx ended is not counted as a failure: the message
// goes back to the queue as it was. A database error is logged and tried again after
// Poll: Subscribe returns an error only for an empty topic.
func (b *Broker) Subscribe(ctx context.Context, topic string, h task.Handler) error {
	if topic == "" {
		return errors.New("sqlite broker: empty topic")
	}
	for {
		wake := b.waker(topic)
		d, next, err := b.claim(ctx, topic)
		if ctx.Err() != nil {
			if d != nil {
				b.release(ctx, d)
			}
			return nil
		}
		if err != nil {
			b.log.Warn("sqlite broker: claim a message; trying again", "topic", topic, "err", err)
			next = time.Time{}
		}
		if d != nil {
			b.deliver(ctx, d, h)
			continue
		}
		wait := b.cfg.Poll
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(b.cfg.Clock.Now()), 0))
		}
		t := b.cfg.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-wake:
			t.Stop()
		case <-t.C():
		}
	}
}

// delivery is a message claimed by one consumer under a lease.
type delivery struct {
	seq        int64
	lease      string // the claim's token: only its holder renews or settles it
	deliveries int
	published  int64
	msg        task.Message
}

// claim takes the next ready message of topic under a new lease, dead-lettering on the
// way those lost with their consumer more than the delivery limit allows. With none
// ready it returns when the next one will be (zero if none waits).
func (b *Broker) claim(ctx context.Context, topic string) (*delivery, time.Time, error) {
	var (
		d    *delivery
		next time.Time
	)
	err := b.tx(ctx, func(tx *sql.Tx) error {
		now := b.cfg.Clock.Now()
		for {
			var (
				c         delivery
				headers   string
				unsettled int
			)
			err := tx.QueryRowContext(ctx, `SELECT seq, id, body, headers, attempt, deliveries, unsettled, published_at
				FROM messages JOIN message_bodies USING (seq) WHERE topic = ? AND available_at <= ? ORDER BY available_at, seq LIMIT 1`,
				topic, now.UnixMilli()).Scan(&c.seq, &c.msg.ID, &c.msg.Body, &headers, &c.msg.Attempt, &c.deliveries, &unsettled, &c.published)
			if errors.Is(err, sql.ErrNoRows) {
				var at sql.NullInt64
				if err := tx.QueryRowContext(ctx, `SELECT min(available_at) FROM messages WHERE topic = ?`, topic).Scan(&at); err != nil {
					return err
				}
				if at.Valid {
					next = time.UnixMilli(at.Int64)
				}
				return nil
			}
			if err != nil {
				return err
			}
			c.msg.Topic = topic
			if c.msg.Headers, err = decodeHeaders(headers); err != nil {
				return fmt.Errorf("message %s: %w", c.msg.ID, err)
			}
			if limit := b.cfg.Retry.DeliveryLimit; limit > 0 && unsettled > limit {
				lost := fmt.Errorf("delivered %d times without an outcome, over the limit of %d: each time its consumer died or stopped while handling it (a crash, OOM, SIGKILL)",
					unsettled, limit)
				if err := b.bury(ctx, tx, &c, lost); err != nil {
					return err
				}
				continue
			}
			c.lease = newID()
			c.deliveries++
			if _, err := tx.ExecContext(ctx, `UPDATE messages SET lease = ?, available_at = ?, deliveries = deliveries + 1,
				unsettled = unsettled + 1 WHERE seq = ?`, c.lease, now.Add(b.cfg.Lease).UnixMilli(), c.seq); err != nil {
				return err
			}
			d = &c
			return nil
		}
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	return d, next, nil
}

// deliver runs h on d, renewing d's lease meanwhile, and settles d by h's outcome.
func (b *Broker) deliver(ctx context.Context, d *delivery, h task.Handler) {
	renewCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { b.renew(renewCtx, d) })
	err := h(ctx, d.msg)
	stop()
	wg.Wait()
	switch {
	case err == nil:
		b.settle(ctx, d, "ack", func(sctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(sctx, `DELETE FROM messages WHERE seq = ?`, d.seq)
			return err
		})
	case ctx.Err() != nil && !task.IsPermanent(err):
		b.release(ctx, d)
	case task.IsPermanent(err) || d.msg.Attempt >= b.cfg.Retry.MaxAttempts:
		b.settle(ctx, d, "dead-letter", func(sctx context.Context, tx *sql.Tx) error {
			return b.bury(sctx, tx, d, err)
		})
	default:
		delay := b.cfg.Retry.Delay(d.msg.Attempt)
		b.settle(ctx, d, "retry", func(sctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(sctx, `UPDATE messages SET attempt = attempt + 1, available_at = ?, lease = NULL,
				unsettled = 0 WHERE seq = ? AND lease = ?`, b.cfg.Clock.Now().Add(delay).UnixMilli(), d.seq, d.lease)
			return err
		})
	}
}

// settleTimeout bounds a settlement's transaction, which outlives a stopping consumer's
// context so that the outcome of a finished handler is recorded.
const settleTimeout = 10 * time.Second

// settle runs op, the settlement of d, in a transaction of its own and wakes the
// topic's consumers. When it fails, d's lease expires and d is delivered again.
func (b *Broker) settle(ctx context.Context, d *delivery, what string, op func(ctx context.Context, tx *sql.Tx) error) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if err := b.tx(sctx, func(tx *sql.Tx) error { return op(sctx, tx) }); err != nil {
		b.log.Warn("sqlite broker: settle lost, message will be redelivered", "settle", what, "topic", d.msg.Topic,
			"message_id", d.msg.ID, "err", err)
		return
	}
	b.notify(d.msg.Topic)
}

// release hands d back to the queue untouched, as a stopping consumer does: ready at
// once, its delivery not counted as lost.
func (b *Broker) release(ctx context.Context, d *delivery) {
	b.settle(ctx, d, "release", func(sctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(sctx, `UPDATE messages SET lease = NULL, available_at = ?, unsettled = max(unsettled - 1, 0)
			WHERE seq = ? AND lease = ?`, b.cfg.Clock.Now().UnixMilli(), d.seq, d.lease)
		return err
	})
}

// renew extends d's lease every third of the lease until ctx is done.
func (b *Broker) renew(ctx context.Context, d *delivery) {
	clock.Every(ctx, b.cfg.Clock, b.cfg.Lease/3, func() bool {
		res, err := b.write.ExecContext(ctx, `UPDATE messages SET available_at = ? WHERE seq = ? AND lease = ?`,
			b.cfg.Clock.Now().Add(b.cfg.Lease).UnixMilli(), d.seq, d.lease)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Warn("sqlite broker: renew a lease", "topic", d.msg.Topic, "message_id", d.msg.ID, "err", err)
			}
			return true
		}
		if n, _ := res.RowsAffected(); n == 0 {
			b.log.Warn("sqlite broker: lease lost, the message may be handled twice", "topic", d.msg.Topic, "message_id", d.msg.ID)
			return false
		}
		return true
	})
}

// bury moves the message of d from the queue to the dead letters, with cause in its
// headers, inside tx.
func (b *Broker) bury(ctx context.Context, tx *sql.Tx, d *delivery, cause error) error {
	b.log.Error("dead-letter message", "topic", d.msg.Topic, "message_id", d.msg.ID, "attempt", d.msg.Attempt,
		"permanent", task.IsPermanent(cause), "err", cause)
	extra := task.DeadLetterHeaders(cause)
	headers := make(map[string]string, len(d.msg.Headers)+len(extra))
	for k, v := range d.msg.Headers {
		headers[k] = v
	}
	for k, v := range extra {
		headers[k] = v
	}
	encoded, err := encodeHeaders(headers)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO dead_letters (topic, id, body, headers, attempt, deliveries, error, died_at, published_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, d.msg.Topic, d.msg.ID, d.msg.Body, encoded, d.msg.Attempt, d.deliveries,
		extra[task.ErrorHeader], b.cfg.Clock.Now().UnixMilli(), d.published); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM messages WHERE seq = ?`, d.seq)
	return err
}

// tx runs op in an immediate transaction on the write connection, commits it and
// signals the checkpointer.
func (b *Broker) tx(ctx context.Context, op func(tx *sql.Tx) error) error {
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := op(tx); err != nil {
		return err
	}
	return b.ckpt.commit(tx)
}

// ReportCheckpoints calls report with the queue's checkpoints that failed since
// OpenBroker and the commits not yet checkpointed ("sqlite_queue"): for /metrics.
func (b *Broker) ReportCheckpoints(report func(db string, failed, behind int64)) {
	b.ckpt.report(func(failed, behind int64) { report("sqlite_queue", failed, behind) })
}

// insertMessage inserts a message, available at availableAt (Unix ms), and its body,
// in a table of its own (queue migration 0002): written once, never updated.
func insertMessage(ctx context.Context, tx *sql.Tx, topic, id, headers string, body []byte, availableAt, published int64) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO messages (topic, id, headers, available_at, published_at)
		VALUES (?, ?, ?, ?, ?)`, topic, id, headers, availableAt, published)
	if err != nil {
		return err
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO message_bodies (seq, body) VALUES (?, ?)`, seq, body)
	return err
}

// waker returns the channel that the next notify of topic closes.
func (b *Broker) waker(topic string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.wake[topic]
	if !ok {
		c = make(chan struct{})
		b.wake[topic] = c
	}
	return c
}

// notify wakes the consumers of topic in this process: a message may be ready, or the
// next one's time changed.
func (b *Broker) notify(topic string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.wake[topic]; ok {
		close(c)
		delete(b.wake, topic)
	}
}

// QueueDepth returns the number of messages of topic that are ready for delivery (not
// held by a consumer nor waiting out a countdown), for metrics.
func (b *Broker) QueueDepth(ctx context.Context, topic string) (int, error) {
	var n int
	if err := b.read.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE topic = ? AND available_at <= ? AND lease IS NULL`,
		topic, b.cfg.Clock.Now().UnixMilli()).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite broker: queue depth of %s: %w", topic, err)
	}
	return n, nil
}

// ReportQueue is QueueDepth, for /metrics; consumers is -1: the embedded broker does
// not count them.
func (b *Broker) ReportQueue(ctx context.Context, topic string) (ready, consumers int, err error) {
	ready, err = b.QueueDepth(ctx, topic)
	return ready, -1, err
}

// ListDeadLetters returns up to limit of topic's dead letters, oldest first.
func (b *Broker) ListDeadLetters(ctx context.Context, topic string, limit int) ([]task.DeadLetter, error) {
	rows, err := b.read.QueryContext(ctx, `SELECT id, body, headers, attempt, error, died_at FROM dead_letters
		WHERE topic = ? ORDER BY seq LIMIT ?`, topic, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite broker: dead letters of %s: %w", topic, err)
	}
	defer rows.Close()
	var dead []task.DeadLetter
	for rows.Next() {
		var (
			d       = task.DeadLetter{Message: task.Message{Topic: topic}}
			headers string
			died    int64
		)
		if err := rows.Scan(&d.ID, &d.Body, &headers, &d.Attempt, &d.Error, &died); err != nil {
			return nil, fmt.Errorf("sqlite broker: dead letters of %s: %w", topic, err)
		}
		if d.Headers, err = decodeHeaders(headers); err != nil {
			return nil, fmt.Errorf("sqlite broker: dead letter %s: %w", d.ID, err)
		}
		d.DiedAt = time.UnixMilli(died).UTC()
		dead = append(dead, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite broker: dead letters of %s: %w", topic, err)
	}
	return dead, nil
}

// CountDeadLetters returns the number of topic's dead letters.
func (b *Broker) CountDeadLetters(ctx context.Context, topic string) (int, error) {
	var n int
	if err := b.read.QueryRowContext(ctx, `SELECT count(*) FROM dead_letters WHERE topic = ?`, topic).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite broker: count dead letters of %s: %w", topic, err)
	}
	return n, nil
}

// ReplayDeadLetters moves topic's dead letters back to its queue in one transaction:
// same ID, body and publisher's headers (without the dead letter's error and stack),
// attempt 1, no deliveries, ready at once, in the order they died.
func (b *Broker) ReplayDeadLetters(ctx context.Context, topic string) (int, error) {
	return b.ReplayDeadLettersReporting(ctx, topic, nil)
}

var _ task.ReplayReporter = (*Broker)(nil)

// ReplayDeadLettersReporting is ReplayDeadLetters calling progress after each dead
// letter it moves into the transaction; they are in the queue once it commits.
func (b *Broker) ReplayDeadLettersReporting(ctx context.Context, topic string, progress func(moved, total int)) (int, error) {
	var n int
	err := b.tx(ctx, func(tx *sql.Tx) error {
		type row struct {
			seq, published int64
			id, headers    string
			body           []byte
		}
		var dead []row
		err := queryRows(ctx, tx, `SELECT seq, id, body, headers, published_at FROM dead_letters WHERE topic = ? ORDER BY seq`,
			[]any{topic}, func(rows *sql.Rows) error {
				var r row
				if err := rows.Scan(&r.seq, &r.id, &r.body, &r.headers, &r.published); err != nil {
					return err
				}
				dead = append(dead, r)
				return nil
			})
		if err != nil {
			return err
		}
		now := b.cfg.Clock.Now().UnixMilli()
		for i, r := range dead {
			h, err := decodeHeaders(r.headers)
			if err != nil {
				return fmt.Errorf("dead letter %s: %w", r.id, err)
			}
			delete(h, task.ErrorHeader)
			delete(h, task.StackHeader)
			headers, err := encodeHeaders(h)
			if err != nil {
				return err
			}
			if err := insertMessage(ctx, tx, topic, r.id, headers, r.body, now, r.published); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM dead_letters WHERE seq = ?`, r.seq); err != nil {
				return err
			}
			if progress != nil {
				progress(i+1, len(dead))
			}
		}
		n = len(dead)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite broker: replay dead letters of %s: %w", topic, err)
	}
	if n > 0 {
		b.notify(topic)
	}
	return n, nil
}

// PurgeDeadLetters deletes topic's dead letters.
func (b *Broker) PurgeDeadLetters(ctx context.Context, topic string) (int, error) {
	res, err := b.write.ExecContext(ctx, `DELETE FROM dead_letters WHERE topic = ?`, topic)
	if err != nil {
		return 0, fmt.Errorf("sqlite broker: purge dead letters of %s: %w", topic, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func encodeHeaders(h map[string]string) (string, error) {
	if len(h) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("encode headers: %w", err)
	}
	return string(b), nil
}

func decodeHeaders(s string) (map[string]string, error) {
	var h map[string]string
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, fmt.Errorf("decode headers: %w", err)
	}
	if len(h) == 0 {
		return nil, nil
	}
	return h, nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}
