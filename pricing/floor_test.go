package pricing

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"boxoffice/testenv"
)

// gatedState is a Store whose PricingState reads the version when it is called and
// answers once gate is closed. It counts the calls and whether two ever overlapped.
type gatedState struct {
	Store
	version  atomic.Int64
	gate     chan struct{}
	calls    atomic.Int32
	inFlight atomic.Int32
	overlaps atomic.Int32
}

func (g *gatedState) PricingState(context.Context) (State, error) {
	g.calls.Add(1)
	if g.inFlight.Add(1) > 1 {
		g.overlaps.Add(1)
	}
	defer g.inFlight.Add(-1)
	v := g.version.Load()
	<-g.gate
	return State{Version: v}, nil
}

// TestVersionReadsNeverAnswerWithAReadStartedEarlier checks the floor's guarantee: a
// quote that asks while a read is under way gets the next read, which sees a version
// the primary reached meanwhile; the quotes that asked meanwhile share that one read;
// and reads never overlap.
func TestVersionReadsNeverAnswerWithAReadStartedEarlier(t *testing.T) {
	s := &gatedState{gate: make(chan struct{})}
	s.version.Store(1)
	var v versionReads
	type answer struct {
		version int64
		err     error
	}
	ask := func() <-chan answer {
		c := make(chan answer, 1)
		go func() {
			version, err := v.read(t.Context(), s)
			c <- answer{version, err}
		}()
		return c
	}
	first := ask()
	testenv.Poll(t, "the first read under way", func() bool { return s.calls.Load() == 1 })
	s.version.Store(2) // a recalculation completes while the first read is out
	later := []<-chan answer{ask(), ask(), ask()}
	testenv.Poll(t, "three quotes waiting for the next read", func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.next != nil && v.next.waiters == 3
	})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := v.read(ctx, s); !errors.Is(err, context.Canceled) {
		t.Errorf("read with a cancelled context = %v, want context.Canceled", err)
	}
	close(s.gate)
	if a := <-first; a.version != 1 || a.err != nil {
		t.Errorf("the first quote got %d, %v; want 1", a.version, a.err)
	}
	for i, c := range later {
		if a := <-c; a.version != 2 || a.err != nil {
			t.Errorf("quote %d, asked during the first read, got %d, %v; want 2 from a read started after it asked", i, a.version, a.err)
		}
	}
	if n := s.calls.Load(); n != 2 {
		t.Errorf("%d reads of the primary for five quotes, want 2", n)
	}
	if n := s.overlaps.Load(); n != 0 {
		t.Errorf("reads overlapped %d times, want never", n)
	}
	testenv.Poll(t, "the reading goroutine to end", func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return !v.running && v.next == nil
	})
}
