package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"boxoffice/task"
)

// Headers that the broker sets on messages. Other string headers are the publisher's
// (task.Message.Headers).
const (
	// AttemptHeader carries task.Message.Attempt, an integer: 1 when published, one
	// more for each retry.
	AttemptHeader = "boxoffice-attempt"
	// ErrorHeader carries, on a dead letter, the text of the handler's last error (or
	// panic). It shows in the Headers of the messages that DeadLetters returns.
	ErrorHeader = task.ErrorHeader
	// StackHeader carries, on the dead letter of a handler that panicked, the stack.
	StackHeader = task.StackHeader
	// DiedAtHeader carries, on a dead letter, when it was dead-lettered: Unix
	// milliseconds, an integer.
	DiedAtHeader = "boxoffice-died-at"
)

const (
	// confirmWindow bounds the messages one Publish call has sent but not yet seen
	// confirmed, so that a huge batch pipelines without unbounded bookkeeping.
	confirmWindow = 512
	// maxIdlePublishers bounds the confirm-mode channels a connection keeps for the
	// next Publish calls; concurrent calls beyond it open channels of their own.
	maxIdlePublishers = 4
)

var (
	// errNacked reports messages the broker refused to take responsibility for.
	errNacked = errors.New("broker nacked the message")
	// errUnroutable reports messages the broker returned because their queue is gone
	// (deleted after this connection declared it).
	errUnroutable = errors.New("queue not found, message returned")
)

// Publish sends msgs to topic's work queue, persistent, and returns nil once the broker
// has confirmed every one of them. A message without an ID gets a random one; Topic and
// Attempt are ignored (a published message is on its first attempt).
//
// While the connection is down, Publish waits for the reconnection and then sends again
// whatever was not confirmed; a message that comes back unroutable (its queue was
// deleted) is sent again after the topology is declared again. So Publish fails only
// when ctx ends, the Broker is closed, or the broker keeps refusing the messages (a
// nack, a queue that exists with other arguments: three tries). An error means some
// messages may be queued and some not: publish them again (a duplicate keeps its ID;
// handlers are idempotent). Publish calls may run concurrently, each on a channel of
// its own. While RabbitMQ blocks publishers (a memory or disk alarm), a Publish can
// wait in a socket write that ctx does not interrupt, until the alarm clears.
func (b *Broker) Publish(ctx context.Context, topic string, msgs ...task.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	q, err := b.queues(topic)
	if err != nil {
		return err
	}
	now := time.Now()
	pending := make([]amqp.Publishing, len(msgs))
	for i, m := range msgs {
		id := m.ID
		if id == "" {
			id = newID()
		}
		h := make(amqp.Table, len(m.Headers)+1)
		for k, v := range m.Headers {
			h[k] = v
		}
		h[AttemptHeader] = int64(1)
		pending[i] = amqp.Publishing{
			Headers:      h,
			DeliveryMode: amqp.Persistent,
			MessageId:    id,
			Timestamp:    now,
			Body:         m.Body,
		}
	}
	err = b.do(ctx, func(s *session) error {
		if err := b.declare(s, q); err != nil {
			return err
		}
		var err error
		pending, err = s.publish(ctx, q.work, pending)
		return err
	})
	return wrap("publish", topic, err)
}

// publisher is a confirm-mode channel that one Publish call at a time has to itself,
// so that the messages the broker returns as unroutable (mandatory publishing) are
// that call's.
type publisher struct {
	ch      *amqp.Channel
	closed  chan *amqp.Error // from ch.NotifyClose
	returns chan amqp.Return // from ch.NotifyReturn, with room for a confirm window
	once    sync.Once        // reads closed once, into err
	err     error
}

// reason returns why the closed channel p.ch closed.
func (p *publisher) reason() error {
	p.once.Do(func() {
		p.err = amqp.ErrClosed
		t := time.NewTimer(time.Second) // the reason is sent as the channel shuts down
		defer t.Stop()
		select {
		case e, ok := <-p.closed:
			if ok && e != nil {
				p.err = e
			}
		case <-t.C:
		}
	})
	return p.err
}

// takePublisher returns an idle publisher of s, or a new one.
func (s *session) takePublisher() (*publisher, error) {
	s.pubMu.Lock()
	for len(s.idle) > 0 {
		p := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if !p.ch.IsClosed() {
			s.pubMu.Unlock()
			return p, nil
		}
	}
	s.pubMu.Unlock()
	ch, err := s.conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return nil, err
	}
	return &publisher{
		ch:      ch,
		closed:  ch.NotifyClose(make(chan *amqp.Error, 1)),
		returns: ch.NotifyReturn(make(chan amqp.Return, confirmWindow+1)),
	}, nil
}

// putPublisher hands p back to s for the next Publish call. clean says that p has no
// confirm or return outstanding; a publisher that is not clean is closed instead.
func (s *session) putPublisher(p *publisher, clean bool) {
	if p.ch.IsClosed() {
		return
	}
	s.pubMu.Lock()
	if clean && len(s.idle) < maxIdlePublishers {
		s.idle = append(s.idle, p)
		s.pubMu.Unlock()
		return
	}
	s.pubMu.Unlock()
	p.ch.Close()
}

// publish sends msgs to queue key through the default exchange, mandatory, and waits
// for their confirms, keeping up to confirmWindow of them in flight. It returns the
// messages that were not confirmed or came back unroutable, to send again, with the
// reason.
func (s *session) publish(ctx context.Context, key string, msgs []amqp.Publishing) (rest []amqp.Publishing, err error) {
	p, err := s.takePublisher()
	if err != nil {
		return msgs, err
	}
	var (
		confirms = make([]*amqp.DeferredConfirmation, 0, min(len(msgs), confirmWindow))
		failed   []amqp.Publishing
		returned = map[string]bool{} // IDs of the messages the broker could not route
		sent     int                 // msgs[:sent] were written to the channel
		waited   int                 // the confirms of msgs[:waited] are in
		sendErr  error
	)
	defer func() { s.putPublisher(p, waited == sent) }()
	// drain collects the returns that came in so far. A return comes before the confirm
	// of its message, so once a confirm is in, so is the return it follows, if any.
	drain := func() {
		for {
			select {
			case r, ok := <-p.returns:
				if !ok { // the channel closed
					return
				}
				returned[r.MessageId] = true
			default:
				return
			}
		}
	}
	await := func() error {
		ok, err := confirms[waited%confirmWindow].WaitContext(ctx)
		if err != nil {
			return err
		}
		if !ok {
			failed = append(failed, msgs[waited])
		}
		waited++
		drain()
		return nil
	}
	for sent < len(msgs) {
		if sent-waited == confirmWindow {
			if err := await(); err != nil {
				return msgs[waited:], err
			}
		}
		dc, err := p.ch.PublishWithDeferredConfirmWithContext(ctx, "", key, true, false, msgs[sent])
		if err != nil {
			sendErr = err
			break
		}
		if len(confirms) < confirmWindow {
			confirms = append(confirms, dc)
		} else {
			confirms[sent%confirmWindow] = dc
		}
		sent++
	}
	for waited < sent {
		if err := await(); err != nil {
			return append(failed, msgs[waited:]...), err
		}
	}
	unroutable := 0
	if len(returned) > 0 {
		for _, m := range msgs[:sent] {
			if returned[m.MessageId] {
				failed = append(failed, m)
				unroutable++
			}
		}
	}
	rest = append(failed, msgs[sent:]...)
	switch {
	case len(rest) == 0:
		return nil, nil
	case sendErr != nil:
		return rest, sendErr
	case p.ch.IsClosed():
		return rest, p.reason()
	case unroutable == len(rest):
		return rest, fmt.Errorf("%d of %d messages: %w", unroutable, len(msgs), errUnroutable)
	default:
		return rest, fmt.Errorf("%d of %d messages: %w", len(rest)-unroutable, len(msgs), errNacked)
	}
}

// message turns a delivery from one of topic's queues into a task.Message: the
// publisher's string headers, the attempt from AttemptHeader (1 when absent).
// RabbitMQ's own dead-lettering headers are left out.
func message(topic string, d amqp.Delivery) task.Message {
	m := task.Message{ID: d.MessageId, Topic: topic, Body: d.Body, Attempt: 1}
	for k, v := range d.Headers {
		if k == AttemptHeader {
			if n, ok := toInt(v); ok && n > 0 {
				m.Attempt = n
			}
			continue
		}
		s, ok := v.(string)
		if !ok || isDeathHeader(k) {
			continue
		}
		if m.Headers == nil {
			m.Headers = map[string]string{}
		}
		m.Headers[k] = s
	}
	return m
}

// forwardable returns a copy of d to publish to another queue (a retry queue or the
// dead-letter queue) as delivery attempt. The copy is a new message whose attempt
// header says where it stands, so it leaves out the x-death headers RabbitMQ added when
// d's last countdown expired: they would pile up over the retries and miscount them.
func forwardable(d amqp.Delivery, attempt int) amqp.Publishing {
	h := make(amqp.Table, len(d.Headers)+1)
	for k, v := range d.Headers {
		if !isDeathHeader(k) {
			h[k] = v
		}
	}
	h[AttemptHeader] = int64(attempt)
	return amqp.Publishing{
		Headers:         h,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}

// isDeathHeader reports whether k is one of the headers RabbitMQ adds when it
// dead-letters a message.
func isDeathHeader(k string) bool {
	return k == "x-death" || strings.HasPrefix(k, "x-first-death-") || strings.HasPrefix(k, "x-last-death-")
}

func toInt64(v any) (int64, bool) {
	n, ok := toInt(v)
	return int64(n), ok
}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int64:
		return int(n), true
	case int32:
		return int(n), true
	case int16:
		return int(n), true
	case int8:
		return int(n), true
	case int:
		return n, true
	case uint8:
		return int(n), true
	case uint16:
		return int(n), true
	case uint32:
		return int(n), true
	default:
		return 0, false
	}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}
