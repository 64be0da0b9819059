package clocktest

import (
	"testing"
	"time"
)

var start = time.Date(2021, 6, 30, 21, 0, 0, 0, time.UTC)

// fired reports whether c has a tick, taking it.
func fired(c <-chan time.Time) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestTimer(t *testing.T) {
	m := NewManual(start)
	tm := m.NewTimer(time.Second)
	m.Advance(999 * time.Millisecond)
	if fired(tm.C()) {
		t.Fatal("timer fired before its deadline")
	}
	m.Advance(time.Millisecond)
	if !fired(tm.C()) {
		t.Fatal("timer did not fire at its deadline")
	}
	m.Advance(time.Hour)
	if fired(tm.C()) || m.Waiters() != 0 {
		t.Fatalf("timer fired twice, or is still waiting (%d waiters)", m.Waiters())
	}
	if tm.Reset(time.Second) {
		t.Error("Reset() of a fired timer = true, want false")
	}
	if !tm.Stop() || fired(tm.C()) {
		t.Error("Stop() of a reset timer = false, or it fired")
	}
	m.Advance(time.Hour)
	if fired(tm.C()) {
		t.Error("a stopped timer fired")
	}
	if got := m.Now(); !got.Equal(start.Add(2*time.Hour + time.Second)) {
		t.Errorf("Now() = %v, want %v", got, start.Add(2*time.Hour+time.Second))
	}
}

func TestTicker(t *testing.T) {
	m := NewManual(start)
	tk := m.NewTicker(10 * time.Second)
	for range 3 {
		m.Advance(10 * time.Second)
		if !fired(tk.C()) {
			t.Fatal("ticker did not tick")
		}
	}
	m.Advance(time.Minute) // six ticks pass; the channel holds one
	if !fired(tk.C()) || fired(tk.C()) {
		t.Fatal("a slow receiver got other than one tick")
	}
	tk.Stop()
	m.Advance(time.Minute)
	if fired(tk.C()) || m.Waiters() != 0 {
		t.Error("a stopped ticker ticked, or is still waiting")
	}
}

func TestZeroTimerFiresAtOnce(t *testing.T) {
	m := NewManual(start)
	if tm := m.NewTimer(0); !fired(tm.C()) {
		t.Error("NewTimer(0) did not fire at once")
	}
}
