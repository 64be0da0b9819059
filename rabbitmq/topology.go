package rabbitmq

import (
	"errors"
	"fmt"
	"slices"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"boxoffice/task"
)

// maxQueueName is RabbitMQ's limit on the length of a queue name, in bytes.
const maxQueueName = 255

// topologyVersion ends the name of every queue of the current topology: quorum queues
// ("<prefix>.<topic>.v2"). Version 1, the classic queues named "<prefix>.<topic>", is
// migrated by declare (see migrate.go).
const topologyVersion = "v2"

// queues names the queues of one topic.
type queues struct {
	work  string                   // where publishers send and consumers consume
	dead  string                   // where messages end that failed for good
	retry map[time.Duration]string // by countdown: hold a message for that long, then back to work
	v1    queues1                  // the classic queues of the first topology, to migrate
}

// queues returns the names of topic's queues.
func (b *Broker) queues(topic string) (queues, error) {
	if topic == "" {
		return queues{}, errors.New("rabbitmq: empty topic")
	}
	work := b.cfg.Prefix + "." + topic + "." + topologyVersion
	q := queues{work: work, dead: work + ".dead", retry: make(map[time.Duration]string, len(b.delays)),
		v1: b.queues1(topic)}
	longest := q.dead
	for _, d := range b.delays {
		name := fmt.Sprintf("%s.retry.%dms", work, d.Milliseconds())
		q.retry[d] = name
		if len(name) > len(longest) {
			longest = name
		}
	}
	if len(longest) > maxQueueName {
		return queues{}, fmt.Errorf("rabbitmq: topic %q: queue name %q longer than %d bytes", topic, longest, maxQueueName)
	}
	return q, nil
}

// all returns every queue name of the topic, the first topology's included.
func (q queues) all() []string {
	names := make([]string, 0, 2+len(q.retry))
	names = append(names, q.work, q.dead)
	for _, name := range q.retry {
		names = append(names, name)
	}
	return append(names, q.v1.all()...)
}

// retryKey returns the queue that a message goes to after failing attempt: the retry
// queue of its countdown, or the work queue directly when the countdown is zero.
func (b *Broker) retryKey(q queues, attempt int) string {
	d := countdown(b.cfg.Retry, attempt)
	if d == 0 {
		return q.work
	}
	return q.retry[d]
}

// countdown is p.Delay(attempt) in whole milliseconds, the unit of x-message-ttl; a
// positive delay under a millisecond counts as one.
func countdown(p task.RetryPolicy, attempt int) time.Duration {
	d := p.Delay(attempt)
	if d <= 0 {
		return 0
	}
	return max(d.Truncate(time.Millisecond), time.Millisecond)
}

// retryDelays returns the distinct non-zero countdowns that p applies after attempts
// 1 to MaxAttempts-1, shortest first: one retry queue each.
func retryDelays(p task.RetryPolicy) []time.Duration {
	var delays []time.Duration
	for attempt := 1; attempt < p.MaxAttempts; attempt++ {
		if d := countdown(p, attempt); d > 0 && !slices.Contains(delays, d) {
			delays = append(delays, d)
		}
	}
	slices.Sort(delays)
	return delays
}

// declare declares topic's queues on s's connection, once per connection, all durable
// quorum queues (replicated, fsynced): the dead-letter queue; the work queue, whose
// messages RabbitMQ dead-letters itself, at least once, into the dead-letter queue once
// their delivery count exceeds the policy's DeliveryLimit (their consumers keep dying);
// and per countdown a queue whose messages expire after it, at least once, into the
// work queue, through the default exchange. Then it moves what the classic queues of
// the first topology still hold into these (migrate).
func (b *Broker) declare(s *session, q queues) error {
	s.decMu.Lock()
	defer s.decMu.Unlock()
	if s.decl[q.work] {
		return nil
	}
	ch, err := s.conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(q.dead, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		return fmt.Errorf("declare %s: %w", q.dead, err)
	}
	work := deadLettering(q.dead)
	if limit := b.cfg.Retry.DeliveryLimit; limit > 0 {
		work["x-delivery-limit"] = int64(limit)
	}
	if _, err := ch.QueueDeclare(q.work, true, false, false, false, work); err != nil {
		return fmt.Errorf("declare %s: %w", q.work, err)
	}
	for d, name := range q.retry {
		args := deadLettering(q.work)
		args["x-message-ttl"] = d.Milliseconds()
		if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
			return fmt.Errorf("declare %s: %w", name, err)
		}
	}
	if err := b.migrate(s, q); err != nil {
		return err
	}
	s.decl[q.work] = true
	return nil
}

// deadLettering returns the arguments of a quorum queue that dead-letters, at least
// once, to queue to through the default exchange: RabbitMQ keeps a dead letter until
// to has confirmed it, which requires the reject-publish overflow.
func deadLettering(to string) amqp.Table {
	return amqp.Table{
		"x-queue-type":              "quorum",
		"x-dead-letter-exchange":    "",
		"x-dead-letter-routing-key": to,
		"x-dead-letter-strategy":    "at-least-once",
		"x-overflow":                "reject-publish",
	}
}

// forget makes the next use of the topic whose work queue is work declare it again.
func (s *session) forget(work string) {
	s.decMu.Lock()
	defer s.decMu.Unlock()
	delete(s.decl, work)
}

// forgetAll makes the next use of every topic declare it again.
func (s *session) forgetAll() {
	s.decMu.Lock()
	defer s.decMu.Unlock()
	clear(s.decl)
}
