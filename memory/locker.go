package memory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"boxoffice/clock"
	"boxoffice/task"
)

var _ task.Locker = (*Locker)(nil)

// Locker is an in-process lock table with the same contract as the Redis locker: each
// lock has a random token and an expiry, and only the holder of the token may refresh
// or release it. Its expiries are read on an injected clock.
type Locker struct {
	clock clock.Clock

	mu    sync.Mutex // guards locks
	locks map[string]held
}

type held struct {
	token   string
	expires time.Time
}

// NewLocker returns an empty lock table whose locks expire on c (nil is clock.System).
func NewLocker(c clock.Clock) *Locker { return &Locker{clock: clock.Or(c), locks: map[string]held{}} }

// Lock takes key for ttl, or returns task.ErrLocked while another owner holds it.
func (l *Locker) Lock(ctx context.Context, key string, ttl time.Duration) (task.Lock, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if h, ok := l.locks[key]; ok && now.Before(h.expires) {
		return nil, task.ErrLocked
	}
	token := newID()
	l.locks[key] = held{token: token, expires: now.Add(ttl)}
	return &lock{l: l, key: key, token: token}, nil
}

type lock struct {
	l          *Locker
	key, token string
}

// Refresh extends the lock to ttl from now while it is still this owner's.
func (k *lock) Refresh(ctx context.Context, ttl time.Duration) error {
	k.l.mu.Lock()
	defer k.l.mu.Unlock()
	now := k.l.clock.Now()
	h, ok := k.l.locks[k.key]
	if !ok || h.token != k.token || !now.Before(h.expires) {
		return task.ErrLockLost
	}
	k.l.locks[k.key] = held{token: k.token, expires: now.Add(ttl)}
	return nil
}

// Unlock releases the lock if it is still this owner's.
func (k *lock) Unlock(ctx context.Context) error {
	k.l.mu.Lock()
	defer k.l.mu.Unlock()
	h, ok := k.l.locks[k.key]
	if !ok || h.token != k.token || !k.l.clock.Now().Before(h.expires) {
		return task.ErrLockLost
	}
	delete(k.l.locks, k.key)
	return nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}
