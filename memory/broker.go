package memory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"boxoffice/task"
)

var (
	_ task.Publisher  = (*Broker)(nil)
	_ task.Subscriber = (*Broker)(nil)
)

// deadLetterLimit bounds the dead letters kept per topic; older ones are dropped.
const deadLetterLimit = 1000

// Broker is an in-process task broker. Each topic is a bounded queue that competing
// subscribers drain; a message is settled only when its handler returns (acks late).
// A failed message comes back after the retry policy's countdown, and is dead-lettered
// when the handler marks the error permanent or the attempts run out. Publish blocks
// while a topic's queue is full, which pushes back on a producer that outruns the
// consumers.
type Broker struct {
	retry    task.RetryPolicy
	capacity int
	log      *slog.Logger

	mu     sync.Mutex // guards topics and each topic's dead letters
	topics map[string]*topic
}

type topic struct {
	queue chan task.Message
	dead  []task.Message
}

// NewBroker returns a broker whose topics queue up to capacity messages each.
func NewBroker(retry task.RetryPolicy, capacity int, log *slog.Logger) *Broker {
	return &Broker{retry: retry, capacity: capacity, log: log, topics: map[string]*topic{}}
}

func (b *Broker) topic(name string) *topic {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.topics[name]
	if !ok {
		t = &topic{queue: make(chan task.Message, b.capacity)}
		b.topics[name] = t
	}
	return t
}

// Publish queues msgs on topic, in order. It blocks while the queue is full and returns
// ctx's error if ctx ends first; the messages queued before that stay queued.
func (b *Broker) Publish(ctx context.Context, topic string, msgs ...task.Message) error {
	t := b.topic(topic)
	for _, m := range msgs {
		m.Topic = topic
		m.Attempt = 1
		if m.ID == "" {
			m.ID = newID()
		}
		m.Headers = cloneHeaders(m.Headers)
		select {
		case t.queue <- m:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Subscribe hands topic's messages to h one at a time until ctx is done. Run several
// Subscribe calls for parallel consumers.
func (b *Broker) Subscribe(ctx context.Context, topic string, h task.Handler) error {
	t := b.topic(topic)
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-t.queue:
			if ctx.Err() != nil { // select picks at random among ready cases
				b.requeue(t, m, 0)
				return nil
			}
			b.settle(ctx, t, m, h(ctx, m))
		}
	}
}

// settle acknowledges, retries or dead-letters m after its handler returned err.
func (b *Broker) settle(ctx context.Context, t *topic, m task.Message, err error) {
	switch {
	case err == nil:
		return
	case ctx.Err() != nil && !task.IsPermanent(err):
		// The consumer is stopping: hand the message back untouched, as a broker does
		// with the unacknowledged messages of a closed channel.
		b.requeue(t, m, 0)
	case task.IsPermanent(err) || m.Attempt >= b.retry.MaxAttempts:
		b.log.Error("dead-letter message", "topic", m.Topic, "message_id", m.ID, "attempt", m.Attempt, "err", err)
		m.Headers = cloneHeaders(m.Headers)
		if m.Headers == nil {
			m.Headers = map[string]string{}
		}
		for k, v := range task.DeadLetterHeaders(err) {
			m.Headers[k] = v
		}
		b.mu.Lock()
		t.dead = append(t.dead, m)
		if len(t.dead) > deadLetterLimit {
			t.dead = t.dead[len(t.dead)-deadLetterLimit:]
		}
		b.mu.Unlock()
	default:
		delay := b.retry.Delay(m.Attempt)
		m.Attempt++
		b.requeue(t, m, delay)
	}
}

// requeue puts m back on t's queue after delay, from a goroutine of its own so that a
// full queue never blocks the consumer that is draining it.
func (b *Broker) requeue(t *topic, m task.Message, delay time.Duration) {
	time.AfterFunc(delay, func() { t.queue <- m })
}

// DeadLetters returns a copy of the messages dead-lettered on topic, oldest first.
func (b *Broker) DeadLetters(topic string) []task.Message {
	t := b.topic(topic)
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]task.Message(nil), t.dead...)
}

// Len returns the number of messages waiting on topic (not counting those in flight or
// waiting for a retry countdown).
func (b *Broker) Len(topic string) int { return len(b.topic(topic).queue) }

func cloneHeaders(h map[string]string) map[string]string {
	if h == nil {
		return nil
	}
	c := make(map[string]string, len(h))
	for k, v := range h {
		c[k] = v
	}
	return c
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(errors.Join(errors.New("memory: read random bytes"), err))
	}
	return hex.EncodeToString(b[:])
}
