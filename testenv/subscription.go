package testenv

import (
	"context"
	"slices"
	"sync"
	"testing"
)

// Subscription runs a subscription (a Bus's or a Notifier's Subscribe) on a goroutine
// of its own until Stop or the end of the test, and records what it delivers.
type Subscription[T any] struct {
	cancel context.CancelFunc
	exit   chan struct{} // closed when subscribe has returned err

	mu  sync.Mutex // guards got and err
	got []T
	err error
}

// Subscribe starts subscribe with a function that records each value (copied by clone
// when it is not nil, for values the caller may reuse) and returns the subscription,
// stopped by t.Cleanup.
func Subscribe[T any](t testing.TB, subscribe func(ctx context.Context, fn func(T)) error, clone func(T) T) *Subscription[T] {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Subscription[T]{cancel: cancel, exit: make(chan struct{})}
	go func() {
		err := subscribe(ctx, func(v T) {
			if clone != nil {
				v = clone(v)
			}
			s.mu.Lock()
			s.got = append(s.got, v)
			s.mu.Unlock()
		})
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.exit)
	}()
	t.Cleanup(func() { s.Stop() })
	return s
}

// Got returns what the subscription delivered so far, in order.
func (s *Subscription[T]) Got() []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// Exited reports whether subscribe has returned.
func (s *Subscription[T]) Exited() bool {
	select {
	case <-s.exit:
		return true
	default:
		return false
	}
}

// Stop ends the subscription's context, waits for subscribe to return and returns
// what it returned.
func (s *Subscription[T]) Stop() error {
	s.cancel()
	<-s.exit
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
