// Package clock is the time that components stamp and wait on: the system's in
// production (System), a manual one in tests (clocktest.Manual), so that tests of TTLs,
// retries, countdowns and polls advance time instead of sleeping. It imports only the
// standard library, so every package may take a Clock.
package clock

import (
	"context"
	"time"
)

// Clock tells the time and makes the timers and tickers that wait on it.
type Clock interface {
	Now() time.Time
	// NewTimer returns a Timer that fires once, d from now.
	NewTimer(d time.Duration) Timer
	// NewTicker returns a Ticker that fires every d (d > 0), dropping ticks that a slow
	// receiver misses, as time.Ticker does.
	NewTicker(d time.Duration) Ticker
}

// Timer is a time.Timer of a Clock.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether that stopped it.
	Stop() bool
	// Reset makes the timer fire d from now; it reports whether it was active.
	Reset(d time.Duration) bool
}

// Ticker is a time.Ticker of a Clock.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// System is the system's clock: time.Now, time.NewTimer and time.NewTicker.
type System struct{}

var _ Clock = System{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer.
func (System) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

// NewTicker returns a time.Ticker.
func (System) NewTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time        { return t.t.C }
func (t systemTimer) Stop() bool                 { return t.t.Stop() }
func (t systemTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

type systemTicker struct{ t *time.Ticker }

func (t systemTicker) C() <-chan time.Time { return t.t.C }
func (t systemTicker) Stop()               { t.t.Stop() }

// Or returns c, or System when c is nil: what components that take an optional Clock
// use.
func Or(c Clock) Clock {
	if c == nil {
		return System{}
	}
	return c
}

// Every calls f every d (d > 0) on c, from d from now, until ctx is done or f returns
// false: the loop of whatever renews a lock or a lease.
func Every(ctx context.Context, c Clock, d time.Duration, f func() bool) {
	t := c.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		if !f() {
			return
		}
	}
}
