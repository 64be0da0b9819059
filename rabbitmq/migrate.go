package rabbitmq

import (
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

// queues1 names the classic queues of one topic in the first topology, before quorum
// queues: "<prefix>.<topic>", "<prefix>.<topic>.dead" and "<prefix>.<topic>.retry.<ms>ms".
// RabbitMQ cannot turn a classic queue into a quorum queue, and declaring a quorum
// queue under a classic queue's name fails (PRECONDITION_FAILED), so the quorum queues
// have names of their own and migrate moves these queues' messages into them.
type queues1 struct {
	work, dead string
	retry      []string
}

// queues1 returns the names of topic's classic queues, for the countdowns of this
// Broker's policy (a policy changed with the upgrade leaves the old countdowns' queues
// behind: see the package documentation).
func (b *Broker) queues1(topic string) queues1 {
	work := b.cfg.Prefix + "." + topic
	q := queues1{work: work, dead: work + ".dead"}
	for _, d := range b.delays {
		q.retry = append(q.retry, fmt.Sprintf("%s.retry.%dms", work, d.Milliseconds()))
	}
	return q
}

func (q queues1) all() []string { return append([]string{q.work, q.dead}, q.retry...) }

// migrate moves the messages of topic's classic queues, if any are left, into its
// quorum queues: those of the work queue and of the retry queues (without waiting out
// their countdowns, keeping their attempt) into the work queue, the dead letters into
// the dead-letter queue. Each message is published to its new queue, confirmed, before
// it is acknowledged (removed) from the old one, so a failure half-way duplicates at
// most one message and loses none. A retry or dead-letter queue it emptied is deleted
// unless a consumer still uses it (a process of the previous version, still running).
// The classic work queue is kept, empty: processes of the previous version publish to
// it, and classic retry queues this Broker does not know (another retry policy's) expire
// into it; the next migration, at the next connection of any Broker, moves what it
// received since.
func (b *Broker) migrate(s *session, q queues) error {
	type move struct {
		from, to string
		keep     bool
	}
	moves := make([]move, 0, len(q.v1.retry)+2)
	for _, r := range q.v1.retry { // first: expired, they would go to the old work queue
		moves = append(moves, move{r, q.work, false})
	}
	moves = append(moves, move{q.v1.work, q.work, true}, move{q.v1.dead, q.dead, false})
	for _, m := range moves {
		n, kept, err := b.drain(s, m.from, m.to, m.keep)
		if err != nil {
			return fmt.Errorf("migrate %s to %s: %w", m.from, m.to, err)
		}
		if n > 0 || kept {
			b.log.Info("rabbitmq: classic queue migrated to its quorum queue", "from", m.from, "to", m.to,
				"messages", n, "kept_for_its_consumers", kept)
		}
	}
	return nil
}

// drain moves the messages of queue from to queue to (see migrate) and, unless keep,
// deletes from once it is empty and unused. It returns how many it moved, and whether
// it kept from although asked to delete it, because a consumer still uses it. A queue
// from that does not exist moves nothing.
func (b *Broker) drain(s *session, from, to string, keep bool) (moved int, kept bool, err error) {
	ch, err := s.conn.Channel()
	if err != nil {
		return 0, false, err
	}
	defer ch.Close()
	if _, err := ch.QueueDeclarePassive(from, true, false, false, false, nil); err != nil {
		if ae := (*amqp.Error)(nil); errors.As(err, &ae) && ae.Code == amqp.NotFound {
			return 0, false, nil
		}
		return 0, false, err
	}
	if err := ch.Confirm(false); err != nil {
		return 0, false, fmt.Errorf("confirm mode: %w", err)
	}
	c := consumer{ch: ch, returns: ch.NotifyReturn(make(chan amqp.Return, 1))}
	for {
		d, ok, err := ch.Get(from, false)
		if err != nil {
			return moved, false, err
		}
		if !ok {
			break
		}
		if err := c.publish(b.ctx, to, forwardable(d, message("", d).Attempt)); err != nil {
			_ = d.Nack(false, true)
			return moved, false, err
		}
		if err := d.Ack(false); err != nil {
			return moved, false, err // back in from, and in to too: a duplicate at most
		}
		moved++
	}
	if keep {
		return moved, false, nil
	}
	if _, err := ch.QueueDelete(from, true, true, false); err != nil {
		if ae := (*amqp.Error)(nil); errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed {
			return moved, true, nil // in use, or a message arrived since: the next migration
		}
		return moved, false, err
	}
	return moved, false, nil
}
