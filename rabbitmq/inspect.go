package rabbitmq

import (
	"context"
	"errors"

	amqp "github.com/rabbitmq/amqp091-go"

	"boxoffice/task"
)

// deadLetterLimit bounds the dead letters DeadLetters returns.
const deadLetterLimit = 1000

// DeadLetters returns the messages in topic's dead-letter queue, oldest first, up to
// 1000 of them, leaving them in the queue. Each carries the attempt it failed at and,
// in Headers[ErrorHeader], the handler's error.
//
// RabbitMQ cannot browse a classic queue: DeadLetters gets the messages unacknowledged
// and then hands them all back (nack with requeue), which puts them back in their
// places. While it runs, the messages it holds are invisible to other readers of the
// queue, so two DeadLetters calls at once may each see part of it. It is meant for
// tests and operators.
func (b *Broker) DeadLetters(ctx context.Context, topic string) ([]task.Message, error) {
	q, err := b.queues(topic)
	if err != nil {
		return nil, err
	}
	var dead []task.Message
	err = b.do(ctx, func(s *session) error {
		dead = dead[:0]
		if err := s.declare(q); err != nil {
			return err
		}
		ch, err := s.conn.Channel()
		if err != nil {
			return err
		}
		defer ch.Close() // would hand back the messages too, should the nack fail
		var last uint64
		for len(dead) < deadLetterLimit && ctx.Err() == nil {
			d, ok, err := ch.Get(q.dead, false)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			dead = append(dead, message(topic, d))
			last = d.DeliveryTag
		}
		if last == 0 {
			return nil
		}
		return ch.Nack(last, true, true)
	})
	if err != nil {
		return nil, wrap("dead letters of", topic, err)
	}
	return dead, nil
}

// QueueDepth returns the number of messages ready in topic's work queue (not counting
// those delivered and not yet acknowledged, nor those waiting out a countdown) and the
// number of its consumers, for metrics and tests. It declares nothing: a queue that does
// not exist has depth 0. As queue names are "<prefix>.<topic>", QueueDepth(ctx,
// topic+".dead") reports the dead-letter queue.
func (b *Broker) QueueDepth(ctx context.Context, topic string) (messages, consumers int, err error) {
	if topic == "" {
		return 0, 0, errors.New("rabbitmq: empty topic")
	}
	name := b.cfg.Prefix + "." + topic
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
	if err != nil {
		return 0, 0, wrap("queue depth of", topic, err)
	}
	return messages, consumers, nil
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
