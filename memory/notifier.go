package memory

import (
	"context"
	"sync"

	"boxoffice/catalog"
)

var _ catalog.Notifier = (*Notifier)(nil)

// Notifier is the in-process catalog.Notifier of the embedded mode: Publish hands the
// version to every subscription open now without ever waiting for one. A subscription
// holds one version not yet delivered, the newest: a slow subscriber skips the versions
// between, which the catalog's announcements allow (they are hints). The zero value is
// not usable; call NewNotifier.
type Notifier struct {
	mu   sync.Mutex              // guards subs and the sends into their channels
	subs map[chan int64]struct{} // each subscription's pending version, buffer 1
}

// NewNotifier returns a Notifier without subscriptions.
func NewNotifier() *Notifier {
	return &Notifier{subs: make(map[chan int64]struct{})}
}

// Publish hands version to every open subscription, replacing a version it has not
// delivered yet. It returns ctx's error when ctx is done, and nil otherwise.
func (n *Notifier) Publish(ctx context.Context, version int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.subs {
		select { // drop the version not delivered yet: only publishers send, under mu
		case <-ch:
		default:
		}
		ch <- version
	}
	return nil
}

// Subscribe calls fn with the versions published until ctx is done, then returns nil.
func (n *Notifier) Subscribe(ctx context.Context, fn func(version int64)) error {
	ch := make(chan int64, 1)
	n.mu.Lock()
	n.subs[ch] = struct{}{}
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.subs, ch)
		n.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case v := <-ch:
			fn(v)
		}
	}
}
