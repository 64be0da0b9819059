package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"boxoffice/task"
)

var _ task.DeadLetters = (*Broker)(nil)

// ListDeadLetters returns up to limit messages of topic's dead-letter queue, oldest
// first, leaving them in the queue. Each carries the attempt it failed at and, in
// Error and Headers[ErrorHeader], why it died: the handler's error, or RabbitMQ's
// account of a message dead-lettered for its delivery limit.
//
// RabbitMQ cannot browse a queue: ListDeadLetters gets the messages unacknowledged and
// then hands them all back (nack with requeue), which puts them back in their places,
// and waits (up to 5 s) until the queue counts them again. While it runs, the messages
// it holds are invisible to other readers of the queue, so two listings at once may
// each see part of it.
func (b *Broker) ListDeadLetters(ctx context.Context, topic string, limit int) ([]task.DeadLetter, error) {
	q, err := b.queues(topic)
	if err != nil {
		return nil, err
	}
	var dead []task.DeadLetter
	err = b.onChannel(ctx, q, func(ch *amqp.Channel) error {
		dead = dead[:0] // the channel closing hands back the messages, should the nack fail
		var last uint64
		for len(dead) < limit && ctx.Err() == nil {
			d, ok, err := ch.Get(q.dead, false)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			dead = append(dead, deadLetter(topic, d))
			last = d.DeliveryTag
		}
		if last == 0 {
			return nil
		}
		if err := ch.Nack(last, true, true); err != nil {
			return err
		}
		return settled(ctx, ch, q.dead, len(dead))
	})
	if err != nil {
		return nil, wrap("dead letters of", topic, err)
	}
	return dead, nil
}

// onChannel runs op on a channel of its own after declaring q, riding out
// reconnections as do does; the channel is closed when op returns.
func (b *Broker) onChannel(ctx context.Context, q queues, op func(ch *amqp.Channel) error) error {
	return b.do(ctx, func(s *session) error {
		if err := b.declare(s, q); err != nil {
			return err
		}
		ch, err := s.conn.Channel()
		if err != nil {
			return err
		}
		defer ch.Close()
		return op(ch)
	})
}

// returnWait bounds how long ListDeadLetters waits for the messages it handed back to
// be ready again.
const returnWait = 5 * time.Second

// settled waits until queue holds at least n ready messages, or returnWait passed: a
// quorum queue takes the messages a nack hands back through its log, after the nack
// returned, and a count taken in between would miss them. Another reader holding some
// of them only makes it wait longer.
func settled(ctx context.Context, ch *amqp.Channel, queue string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, returnWait)
	defer cancel()
	for {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			return err
		}
		if q.Messages >= n {
			return nil
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil // handed back all the same; only the count lags
		case <-t.C:
		}
	}
}

// CountDeadLetters returns the number of messages ready in topic's dead-letter queue
// (those a listing holds at that moment are not counted). It declares nothing: a queue
// that does not exist holds none.
func (b *Broker) CountDeadLetters(ctx context.Context, topic string) (int, error) {
	q, err := b.queues(topic)
	if err != nil {
		return 0, err
	}
	n, _, err := b.depth(ctx, q.dead)
	if err != nil {
		return 0, wrap("count dead letters of", topic, err)
	}
	return n, nil
}

// ReplayDeadLetters moves the messages of topic's dead-letter queue back to its work
// queue, one at a time: each is published again, persistent and confirmed, with its ID,
// body and publisher's headers and attempt 1, and only then removed from the dead-letter
// queue, so a failure half-way duplicates at most one message and loses none. It moves
// at most the number of messages the queue held when it started.
func (b *Broker) ReplayDeadLetters(ctx context.Context, topic string) (int, error) {
	return b.ReplayDeadLettersReporting(ctx, topic, nil)
}

var _ task.ReplayReporter = (*Broker)(nil)

// ReplayDeadLettersReporting is ReplayDeadLetters calling progress after each message
// it moves, with the number the dead-letter queue held when it started as the total.
func (b *Broker) ReplayDeadLettersReporting(ctx context.Context, topic string, progress func(moved, total int)) (int, error) {
	q, err := b.queues(topic)
	if err != nil {
		return 0, err
	}
	moved := 0
	err = b.onChannel(ctx, q, func(ch *amqp.Channel) error {
		if err := ch.Confirm(false); err != nil {
			return fmt.Errorf("confirm mode: %w", err)
		}
		state, err := ch.QueueDeclarePassive(q.dead, true, false, false, false, nil)
		if err != nil {
			return err
		}
		c := consumer{ch: ch, returns: ch.NotifyReturn(make(chan amqp.Return, 1))}
		for range state.Messages {
			d, ok, err := ch.Get(q.dead, false)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if err := c.publish(ctx, q.work, replayable(d)); err != nil {
				_ = d.Nack(false, true)
				return err
			}
			if err := d.Ack(false); err != nil {
				return err // the message is back in the dead-letter queue and, replayed, in the work queue too
			}
			moved++
			if progress != nil {
				progress(moved, state.Messages)
			}
		}
		return nil
	})
	if err != nil {
		return moved, wrap("replay dead letters of", topic, err)
	}
	return moved, nil
}

// PurgeDeadLetters deletes the messages ready in topic's dead-letter queue.
func (b *Broker) PurgeDeadLetters(ctx context.Context, topic string) (int, error) {
	q, err := b.queues(topic)
	if err != nil {
		return 0, err
	}
	var n int
	err = b.onChannel(ctx, q, func(ch *amqp.Channel) error {
		n, err = ch.QueuePurge(q.dead, false)
		return err
	})
	if err != nil {
		return 0, wrap("purge dead letters of", topic, err)
	}
	return n, nil
}

// QueueDepth returns the number of messages ready in topic's work queue (not counting
// those delivered and not yet acknowledged, nor those waiting out a countdown) and the
// number of its consumers, for metrics and tests. It declares nothing: a queue that does
// not exist has depth 0.
func (b *Broker) QueueDepth(ctx context.Context, topic string) (messages, consumers int, err error) {
	q, err := b.queues(topic)
	if err != nil {
		return 0, 0, err
	}
	messages, consumers, err = b.depth(ctx, q.work)
	if err != nil {
		return 0, 0, wrap("queue depth of", topic, err)
	}
	return messages, consumers, nil
}

// ReportQueue is QueueDepth: the ready messages and the consumers of topic's work
// queue, for /metrics.
func (b *Broker) ReportQueue(ctx context.Context, topic string) (ready, consumers int, err error) {
	return b.QueueDepth(ctx, topic)
}

// depth returns the ready messages and the consumers of the queue name, 0 and 0 when it
// does not exist.
func (b *Broker) depth(ctx context.Context, name string) (messages, consumers int, err error) {
	err = b.do(ctx, func(s *session) error {
		ch, err := s.conn.Channel()
		if err != nil {
			return err
		}
		defer ch.Close()
		q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
		var ae *amqp.Error
		switch {
		case errors.As(err, &ae) && ae.Code == amqp.NotFound:
			messages, consumers = 0, 0
			return nil
		case err != nil:
			return err
		}
		messages, consumers = q.Messages, q.Consumers
		return nil
	})
	return messages, consumers, err
}

// DeleteTopic deletes topic's queues (work, dead-letter, and the retry queues of this
// Broker's policy) with the messages in them; the next use declares them again. It is
// meant for tests, to clean up: consumers of the topic should be stopped first.
func (b *Broker) DeleteTopic(ctx context.Context, topic string) error {
	q, err := b.queues(topic)
	if err != nil {
		return err
	}
	err = b.do(ctx, func(s *session) error {
		ch, err := s.conn.Channel()
		if err != nil {
			return err
		}
		defer ch.Close()
		for _, name := range q.all() {
			if _, err := ch.QueueDelete(name, false, false, false); err != nil {
				return err
			}
		}
		s.forget(q.work)
		return nil
	})
	return wrap("delete topic", topic, err)
}

// deadLetter turns a delivery from topic's dead-letter queue into a task.DeadLetter: why
// it died from ErrorHeader or, for a message RabbitMQ dead-lettered itself (its delivery
// limit), from its x-death header; when from DiedAtHeader or x-death.
func deadLetter(topic string, d amqp.Delivery) task.DeadLetter {
	dl := task.DeadLetter{Message: message(topic, d), Error: stringValue(d.Headers[ErrorHeader])}
	if ms, ok := toInt64(d.Headers[DiedAtHeader]); ok {
		dl.DiedAt = time.UnixMilli(ms).UTC()
	}
	if deaths, ok := d.Headers["x-death"].([]any); ok && len(deaths) > 0 {
		if death, ok := deaths[0].(amqp.Table); ok {
			if dl.Error == "" {
				reason, _ := death["reason"].(string)
				count, _ := toInt64(death["count"])
				dl.Error = fmt.Sprintf("dead-lettered by RabbitMQ: %s (%d times)", reason, count)
				if reason == "delivery_limit" {
					dl.Error = "delivered more times than the delivery limit without an outcome: each time its consumer died or stopped while handling it (a crash, OOM, SIGKILL)"
				}
				if dl.Message.Headers == nil {
					dl.Message.Headers = map[string]string{}
				}
				dl.Message.Headers[ErrorHeader] = dl.Error
			}
			if at, ok := death["time"].(time.Time); ok && dl.DiedAt.IsZero() {
				dl.DiedAt = at.UTC()
			}
		}
	}
	if dl.DiedAt.IsZero() {
		dl.DiedAt = d.Timestamp.UTC()
	}
	return dl
}

// stringValue returns v as a string, "" when it is not one.
func stringValue(v any) string {
	s, _ := v.(string)
	return s
}

// replayable returns a copy of the dead letter d to publish to its work queue as if
// just published: attempt 1, without the dead letter's error, stack and time.
func replayable(d amqp.Delivery) amqp.Publishing {
	p := forwardable(d, 1)
	delete(p.Headers, ErrorHeader)
	delete(p.Headers, StackHeader)
	delete(p.Headers, DiedAtHeader)
	return p
}
