package pricing

import (
	"context"
	"sync"
	"time"
)

// floorTimeout bounds one read of the primary's pricing version.
const floorTimeout = 5 * time.Second

// versionReads reads the primary's pricing version for the quotes that the cache cannot
// vouch for (it failed, or it knows no version), sharing reads among concurrent quotes
// without ever handing one a version read before it asked: a quote joins the next read
// to start, never one already under way, so it sees every recalculation that completed
// before it arrived. One read runs at a time, so a cache outage costs the primary at
// most one single-row read per round trip per process, whatever the rate of quotes.
type versionReads struct {
	mu      sync.Mutex // guards running and next
	running bool       // a goroutine is reading (see run)
	next    *versionRead
	// next is the read that starts when the running one ends; nil until a quote asks.
}

// versionRead is one read of the primary's pricing version and its waiters.
type versionRead struct {
	done    chan struct{} // closed once version and err are set
	version int64
	err     error
	waiters int // quotes that joined it, for tests
}

// read returns the primary's pricing version, read after the call began.
func (v *versionReads) read(ctx context.Context, s QuoteStore) (int64, error) {
	v.mu.Lock()
	if v.next == nil {
		v.next = &versionRead{done: make(chan struct{})}
	}
	r := v.next
	r.waiters++
	if !v.running {
		v.running, v.next = true, nil
		go v.run(context.WithoutCancel(ctx), r, s) // shared: no one quote's cancellation ends it
	}
	v.mu.Unlock()
	select {
	case <-r.done:
		return r.version, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run performs r, then each read that quotes queued meanwhile, one after the other, in
// the context of the quote that started it (its values, not its cancellation). It
// returns once no quote waits for a read; each read ends within floorTimeout.
func (v *versionReads) run(base context.Context, r *versionRead, s QuoteStore) {
	for r != nil {
		ctx, cancel := context.WithTimeout(base, floorTimeout)
		st, err := s.PricingState(ctx)
		cancel()
		r.version, r.err = st.Version, err
		close(r.done)
		v.mu.Lock()
		r, v.next = v.next, nil
		v.running = r != nil
		v.mu.Unlock()
	}
}
