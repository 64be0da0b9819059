// Package clocktest holds Manual, a clock.Clock that moves only when a test advances
// it.
package clocktest

import (
	"sync"
	"time"

	"boxoffice/clock"
)

// Manual is a clock.Clock whose time moves only by Advance (or Set). Its timers and
// tickers fire, in order of their deadlines, as Advance passes them; a channel holds
// one pending tick, as the time package's do. It is safe for concurrent use.
type Manual struct {
	mu      sync.Mutex // guards now and waiters
	now     time.Time
	waiters []*waiter // active timers and tickers
}

var _ clock.Clock = (*Manual)(nil)

// NewManual returns a Manual clock at start.
func NewManual(start time.Time) *Manual { return &Manual{now: start} }

type waiter struct {
	m      *Manual
	c      chan time.Time
	at     time.Time
	period time.Duration // 0 for a timer
}

// Now returns the clock's time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// NewTimer returns a timer that fires when the clock reaches d from now.
func (m *Manual) NewTimer(d time.Duration) clock.Timer {
	return m.add(d, 0)
}

// NewTicker returns a ticker that fires each time the clock passes another d.
func (m *Manual) NewTicker(d time.Duration) clock.Ticker {
	if d <= 0 {
		panic("clocktest: non-positive interval for NewTicker")
	}
	return manualTicker{m.add(d, d)}
}

func (m *Manual) add(d, period time.Duration) *waiter {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := &waiter{m: m, c: make(chan time.Time, 1), at: m.now.Add(d), period: period}
	m.waiters = append(m.waiters, w)
	m.fire()
	return w
}

// Waiters returns how many timers and tickers are active now: a test waits for the
// code under test to start waiting before it advances the clock.
func (m *Manual) Waiters() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.waiters)
}

// Advance moves the clock d forward, firing what it passes.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = m.now.Add(d)
	m.fire()
}

// fire sends on the channels of the waiters due, dropping a tick a full channel
// cannot take; tickers move to their next deadline, timers go. m.mu is held.
func (m *Manual) fire() {
	kept := m.waiters[:0]
	for _, w := range m.waiters {
		for !w.at.After(m.now) {
			select {
			case w.c <- w.at:
			default:
			}
			if w.period == 0 {
				break
			}
			w.at = w.at.Add(w.period)
		}
		if w.period == 0 && !w.at.After(m.now) {
			continue // fired
		}
		kept = append(kept, w)
	}
	clear(m.waiters[len(kept):])
	m.waiters = kept
}

func (w *waiter) C() <-chan time.Time { return w.c }

// Stop removes the timer; it reports whether it was active.
func (w *waiter) Stop() bool {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	for i, o := range w.m.waiters {
		if o == w {
			w.m.waiters = append(w.m.waiters[:i], w.m.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// Reset makes the timer fire d from the clock's now; it reports whether it was active.
func (w *waiter) Reset(d time.Duration) bool {
	active := w.Stop()
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	w.at = w.m.now.Add(d)
	w.m.waiters = append(w.m.waiters, w)
	w.m.fire()
	return active
}

type manualTicker struct{ w *waiter }

func (t manualTicker) C() <-chan time.Time { return t.w.c }
func (t manualTicker) Stop()               { t.w.Stop() }
