package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"boxoffice/task"
)

// errDeliveriesClosed reports that a consumer stopped receiving: its channel or
// connection closed, or the broker cancelled it (its queue was deleted).
var errDeliveriesClosed = errors.New("consumer stopped by the broker")

// Subscribe consumes topic's work queue and hands each delivery to h, one at a time,
// until ctx is done; it returns nil then. Run several Subscribe calls (here or in other
// processes) for parallel, competing consumers; each holds up to Config.Prefetch
// deliveries.
//
// A delivery is acknowledged after h returned nil (acks late). When h fails, a copy
// with the next attempt number goes, confirmed, to the retry queue of the policy's
// countdown, and the delivery is acknowledged; when h's error is task.Permanent or the
// policy's attempts are spent, the copy goes to the dead-letter queue instead, with the
// error in ErrorHeader (and a panic's stack in StackHeader). An error returned after ctx ended is not counted as a failure:
// the delivery goes back to the queue as it was, like those still waiting in the
// prefetch buffer.
//
// When the connection drops, Subscribe waits for the Broker to reconnect and consumes
// again; the deliveries it held are redelivered (maybe to another consumer). It returns
// an error only when it cannot set up its consumer (for example a queue that exists
// with other arguments) or when the Broker is closed (ErrClosed).
func (b *Broker) Subscribe(ctx context.Context, topic string, h task.Handler) error {
	q, err := b.queues(topic)
	if err != nil {
		return err
	}
	failures := 0
	for {
		s, err := b.current(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return wrap("subscribe", topic, err)
		}
		started, err := b.consume(ctx, s, q, topic, h)
		if ctx.Err() != nil {
			return nil
		}
		if started {
			failures = 0 // count the setup failures in a row, not those of a lifetime
		}
		if err := b.recover(ctx, s, err, &failures); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return wrap("subscribe", topic, err)
		}
	}
}

// consume runs one consumer of q on s until ctx is done (nil) or the consumer stops
// (an error). started reports whether the consumer was set up.
func (b *Broker) consume(ctx context.Context, s *session, q queues, topic string, h task.Handler) (started bool, err error) {
	if err := b.declare(s, q); err != nil {
		return false, err
	}
	ch, err := s.conn.Channel()
	if err != nil {
		return false, err
	}
	// Closing the channel hands the deliveries this consumer still holds back to the
	// queue.
	defer ch.Close()
	if err := ch.Qos(b.cfg.Prefetch, 0, false); err != nil {
		return false, fmt.Errorf("set prefetch: %w", err)
	}
	// Retries and dead letters are published on the consumer's own channel: if the
	// channel dies between the publish and the ack, the delivery is redelivered.
	if err := ch.Confirm(false); err != nil {
		return false, fmt.Errorf("confirm mode: %w", err)
	}
	c := consumer{ch: ch, returns: ch.NotifyReturn(make(chan amqp.Return, 1))}
	deliveries, err := ch.Consume(q.work, "", false, false, false, false, nil)
	if err != nil {
		return false, fmt.Errorf("consume %s: %w", q.work, err)
	}
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case d, ok := <-deliveries:
			if !ok {
				return true, errDeliveriesClosed
			}
			if ctx.Err() != nil {
				// Both cases were ready and select chose this one: a stopped consumer
				// handles nothing more. The delivery goes back to the queue unhandled
				// (it may be the one this consumer just handed back).
				_ = d.Nack(false, true)
				return true, nil
			}
			if err := b.handle(ctx, c, q, topic, d, h); err != nil {
				return true, err
			}
		}
	}
}

// consumer is the channel of one Subscribe call on one connection.
type consumer struct {
	ch *amqp.Channel
	// returns receives the retry or dead-letter copy that the broker could not route
	// (its queue was deleted): one at most, as a consumer forwards one at a time.
	returns chan amqp.Return
}

// handle runs h on d and settles d on c: ack, retry, dead-letter or requeue. It returns
// an error only when the topology must be declared again (errUnroutable).
func (b *Broker) handle(ctx context.Context, c consumer, q queues, topic string, d amqp.Delivery, h task.Handler) error {
	m := message(topic, d)
	err := h(ctx, m)
	switch {
	case err == nil:
		if err := d.Ack(false); err != nil {
			b.log.Warn("rabbitmq ack lost, message will be redelivered", "topic", topic, "message_id", m.ID, "err", b.scrub(err))
		}
		return nil
	case ctx.Err() != nil:
		// The consumer is stopping: not the message's fault. Hand it back untouched.
		_ = d.Nack(false, true)
		return nil
	case task.IsPermanent(err) || m.Attempt >= b.cfg.Retry.MaxAttempts:
		b.log.Error("dead-letter message", "topic", topic, "message_id", m.ID, "attempt", m.Attempt,
			"permanent", task.IsPermanent(err), "err", err)
		p := forwardable(d, m.Attempt)
		for k, v := range task.DeadLetterHeaders(err) {
			p.Headers[k] = v
		}
		p.Headers[DiedAtHeader] = time.Now().UnixMilli()
		return b.forward(ctx, c, d, q.dead, p)
	default:
		return b.forward(ctx, c, d, b.retryKey(q, m.Attempt), forwardable(d, m.Attempt+1))
	}
}

// forward publishes p to queue key on c, mandatory, waits for the broker's confirm and
// then acknowledges d, which p replaces. If anything fails, d is handed back for
// redelivery: p is then perhaps queued too, a duplicate that at-least-once allows. It
// returns errUnroutable when key's queue is gone, so that the consumer declares the
// topology again before it handles more.
func (b *Broker) forward(ctx context.Context, c consumer, d amqp.Delivery, key string, p amqp.Publishing) error {
	err := c.publish(ctx, key, p)
	if err == nil {
		err = d.Ack(false)
	}
	if err == nil {
		return nil
	}
	_ = d.Nack(false, true) // fails, harmlessly, when the channel is gone
	if ctx.Err() != nil {
		return nil // stopping: the requeue is expected
	}
	b.log.Warn("rabbitmq settle lost, message will be redelivered", "queue", key, "message_id", d.MessageId, "err", b.scrub(err))
	if errors.Is(err, errUnroutable) {
		return fmt.Errorf("forward to %s: %w", key, err)
	}
	return nil
}

// publish publishes p to queue key on c, mandatory, and waits for the broker's confirm:
// nil once the broker has stored it, errUnroutable when key's queue is gone.
func (c consumer) publish(ctx context.Context, key string, p amqp.Publishing) error {
	dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, "", key, true, false, p)
	if err != nil {
		return err
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return err
	}
	// A return comes before the confirm: it is in c.returns by now, if any.
	select {
	case _, returned := <-c.returns: // not returned: closed with the channel
		if returned {
			return errUnroutable
		}
	default:
	}
	switch {
	case !ok && c.ch.IsClosed():
		return amqp.ErrClosed
	case !ok:
		return errNacked
	}
	return nil
}
