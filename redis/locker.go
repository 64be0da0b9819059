package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bsm/redislock"

	"boxoffice/task"
)

// callTimeout bounds a lock operation whose context has no deadline. redislock would
// otherwise bound it by the lock's ttl, so that a short lock on a busy machine failed
// with a deadline error instead of being taken.
const callTimeout = 10 * time.Second

var _ task.Locker = (*Locker)(nil)

// Locker hands out locks stored in Redis under "<prefix>:lock:<key>", shared by every
// process on the same Redis: the ingest leader and the one price recalculation at a
// time. Each lock holds a random token and expires after its ttl unless refreshed;
// taking, refreshing and releasing are each one atomic Lua script (bsm/redislock) that
// acts only while the key still holds the owner's token. It is safe for concurrent use.
type Locker struct {
	locks  *redislock.Client
	prefix string
}

// NewLocker returns a Locker on c whose keys start with prefix.
func NewLocker(c *Client, prefix string) *Locker {
	return &Locker{locks: redislock.New(c.rdb), prefix: prefix}
}

// Lock takes key for ttl, or returns task.ErrLocked at once while another owner holds
// it: it never waits. ttl counts in milliseconds and must be at least one. The lock's
// Refresh and Unlock act only while the key still holds its token, and return
// task.ErrLockLost once it expired or passed to another owner.
func (l *Locker) Lock(ctx context.Context, key string, ttl time.Duration) (task.Lock, error) {
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("lock %s: ttl %v is below a millisecond", key, ttl)
	}
	ctx, cancel := bound(ctx)
	defer cancel()
	rl, err := l.locks.Obtain(ctx, l.prefix+":lock:"+key, ttl, nil)
	switch {
	case errors.Is(err, redislock.ErrNotObtained):
		return nil, fmt.Errorf("lock %s: %w", key, task.ErrLocked)
	case err != nil:
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	return &lock{rl: rl, key: key}, nil
}

// lock is a held lock: its key and the token redislock generated for it.
type lock struct {
	rl  *redislock.Lock
	key string // without the prefix, for messages
}

// Refresh extends the lock to ttl from now while the key still holds this owner's
// token, or returns task.ErrLockLost.
func (k *lock) Refresh(ctx context.Context, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("refresh lock %s: ttl %v is below a millisecond", k.key, ttl)
	}
	ctx, cancel := bound(ctx)
	defer cancel()
	err := k.rl.Refresh(ctx, ttl, nil)
	switch {
	case errors.Is(err, redislock.ErrNotObtained):
		return fmt.Errorf("refresh lock %s: %w", k.key, task.ErrLockLost)
	case err != nil:
		return fmt.Errorf("refresh lock %s: %w", k.key, err)
	}
	return nil
}

// Unlock deletes the lock while the key still holds this owner's token, or returns
// task.ErrLockLost.
func (k *lock) Unlock(ctx context.Context) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	err := k.rl.Release(ctx)
	switch {
	case errors.Is(err, redislock.ErrLockNotHeld):
		return fmt.Errorf("unlock %s: %w", k.key, task.ErrLockLost)
	case err != nil:
		return fmt.Errorf("unlock %s: %w", k.key, err)
	}
	return nil
}

// bound gives ctx the deadline callTimeout from now when it has none.
func bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, callTimeout)
}
