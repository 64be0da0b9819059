package redis

import (
	"errors"
	"testing"
	"time"

	"boxoffice/task"
	"boxoffice/task/tasktest"
)

func TestLocker(t *testing.T) {
	t.Parallel()
	tasktest.TestLocker(t, func(t *testing.T) task.Locker {
		c := open(t)
		return NewLocker(c, newPrefix(t, c))
	}, nil) // Redis expires keys on its own clock
}

func TestLockerKeepsATokenWithAnExpiryUnderThePrefix(t *testing.T) {
	t.Parallel()
	c := open(t)
	prefix := newPrefix(t, c)
	ctx := t.Context()
	a, err := NewLocker(c, prefix).Lock(ctx, "recalc", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	key := prefix + ":lock:recalc"
	token, err := c.rdb.Get(ctx, key).Result()
	if err != nil || len(token) < 16 {
		t.Fatalf("GET %s = %q, %v, want a random token", key, token, err)
	}
	if ttl, err := c.rdb.PTTL(ctx, key).Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL %s = %v, %v, want within a minute", key, ttl, err)
	}

	// Another process, with its own client on the same Redis and prefix, is shut out.
	other := open(t)
	if _, err := NewLocker(other, prefix).Lock(ctx, "recalc", time.Minute); !errors.Is(err, task.ErrLocked) {
		t.Errorf("Lock() from another client = %v, want ErrLocked", err)
	}
	if err := a.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := c.rdb.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Errorf("EXISTS %s after Unlock() = %d, %v, want 0", key, n, err)
	}
	b, err := NewLocker(other, prefix).Lock(ctx, "recalc", time.Minute)
	if err != nil {
		t.Fatalf("Lock() from another client after Unlock() = %v", err)
	}
	if next, _ := c.rdb.Get(ctx, key).Result(); next == token {
		t.Errorf("the next owner's token is the first owner's, %q", token)
	}
	if err := b.Unlock(ctx); err != nil {
		t.Error(err)
	}
}

func TestLockerRejectsTTLsBelowAMillisecond(t *testing.T) {
	t.Parallel()
	c := open(t)
	l := NewLocker(c, newPrefix(t, c))
	if _, err := l.Lock(t.Context(), "k", time.Microsecond); err == nil || errors.Is(err, task.ErrLocked) {
		t.Errorf("Lock(1µs) = %v, want an error about the ttl", err)
	}
	k, err := l.Lock(t.Context(), "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Refresh(t.Context(), 0); err == nil || errors.Is(err, task.ErrLockLost) {
		t.Errorf("Refresh(0) = %v, want an error about the ttl", err)
	}
	if err := k.Refresh(t.Context(), time.Minute); err != nil {
		t.Errorf("Refresh() after a rejected one = %v, want the lock still held", err)
	}
}
