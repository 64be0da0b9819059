package task

import (
	"context"
	"errors"
	"time"
)

// Message is one unit of work on a topic.
type Message struct {
	ID      string            // unique per published message, kept across redeliveries
	Topic   string            // set by the broker on delivery
	Body    []byte            // the topic's own encoding
	Headers map[string]string // trace context and other metadata
	Attempt int               // 1 on first delivery, set by the broker
}

// Handler processes one message. nil acknowledges it; an error retries it or, when
// Permanent or out of attempts, dead-letters it.
type Handler func(ctx context.Context, m Message) error

// Publisher publishes messages durably: when Publish returns nil the broker has them.
type Publisher interface {
	Publish(ctx context.Context, topic string, msgs ...Message) error
}

// Subscriber delivers the messages of a topic to h, acknowledging each only after h
// returned nil. Subscribe blocks until ctx is done and returns nil then, or an error
// when the subscription cannot be set up. Several subscribers to one topic compete for
// its messages.
type Subscriber interface {
	Subscribe(ctx context.Context, topic string, h Handler) error
}

// RetryPolicy says how often and when a failed message is tried again, and how many
// times a message may take its consumer down with it.
type RetryPolicy struct {
	MaxAttempts int           // handler attempts, including the first
	Countdown   time.Duration // delay before the first retry; doubles with each attempt
	MaxDelay    time.Duration // cap on the delay
	// DeliveryLimit bounds the deliveries that end without an outcome, because the
	// consumer died (OOM, SIGKILL, a lost connection) or stopped mid-task: a message is
	// dead-lettered once more than DeliveryLimit of its deliveries in a row were lost,
	// so a message that kills every process handling it stops after DeliveryLimit+1
	// deaths instead of crash-looping the workers for ever. 0 is no limit.
	DeliveryLimit int
}

// DefaultRetry is the policy the brokers use unless told otherwise: Celery's
// max_retries=5 after the first attempt, with a growing countdown; a message lost with
// its consumer 6 times in a row is dead-lettered.
var DefaultRetry = RetryPolicy{MaxAttempts: 6, Countdown: time.Second, MaxDelay: 30 * time.Second, DeliveryLimit: 5}

// Delay returns the countdown before delivery attempt+1 after attempt failed.
func (p RetryPolicy) Delay(attempt int) time.Duration {
	d := p.Countdown
	for i := 1; i < attempt && d < p.MaxDelay; i++ {
		d *= 2
	}
	return min(d, p.MaxDelay)
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: the broker dead-letters the message.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// ErrLocked is returned by Locker.Lock when another owner holds the lock.
var ErrLocked = errors.New("task: lock held by another owner")

// ErrLockLost is returned by Lock.Refresh and Lock.Unlock when the lock expired or
// passed to another owner.
var ErrLockLost = errors.New("task: lock lost")

// Locker hands out named locks with an expiry. Lock returns ErrLocked when the lock is
// held by another owner.
type Locker interface {
	Lock(ctx context.Context, key string, ttl time.Duration) (Lock, error)
}

// Lock is a held lock. Refresh extends it to ttl from now; Unlock releases it. Both
// return ErrLockLost when the lock is no longer this owner's.
type Lock interface {
	Refresh(ctx context.Context, ttl time.Duration) error
	Unlock(ctx context.Context) error
}
