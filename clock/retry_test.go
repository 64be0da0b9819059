package clock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"boxoffice/clock"
	"boxoffice/clock/clocktest"
	"boxoffice/testenv"
)

// failure is one call of Retry's failed.
type failure struct {
	Attempts int
	Pause    time.Duration
}

// TestRetryPausesOnItsClockAndDoubles fails the first four attempts: Retry must tell
// of each with a pause that doubles up to Max, wait on its clock before the next
// attempt, and return once an attempt returns nil.
func TestRetryPausesOnItsClockAndDoubles(t *testing.T) {
	c := clocktest.NewManual(time.Unix(0, 0))
	attempts := make(chan int, 1)
	failures := make(chan failure, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := 0
		clock.Retry(t.Context(), c, clock.Backoff{First: time.Second, Max: 3 * time.Second}, func(context.Context) error {
			n++
			attempts <- n
			if n <= 4 {
				return errors.New("unreachable")
			}
			return nil
		}, func(err error, attempts int, pause time.Duration) {
			if err == nil || err.Error() != "unreachable" {
				t.Errorf("failed(%v), want the attempt's error", err)
			}
			failures <- failure{attempts, pause}
		})
	}()
	var got []failure
	for want := 1; want <= 5; want++ {
		if n := <-attempts; n != want {
			t.Fatalf("attempt %d, want %d", n, want)
		}
		if want == 5 {
			break
		}
		f := <-failures
		got = append(got, f)
		testenv.Poll(t, "the pause's timer", func() bool { return c.Waiters() == 1 })
		c.Advance(f.Pause - time.Millisecond)
		select {
		case n := <-attempts:
			t.Fatalf("attempt %d before its pause of %v ended", n, f.Pause)
		default:
		}
		c.Advance(time.Millisecond)
	}
	<-done
	want := []failure{{1, time.Second}, {2, 2 * time.Second}, {3, 3 * time.Second}, {4, 3 * time.Second}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
}

func TestRetryDefaults(t *testing.T) {
	c := clocktest.NewManual(time.Unix(0, 0))
	ctx, cancel := context.WithCancel(t.Context())
	var pauses []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		clock.Retry(ctx, c, clock.Backoff{}, func(context.Context) error { return errors.New("down") },
			func(_ error, attempts int, pause time.Duration) {
				pauses = append(pauses, pause)
				if attempts == 8 {
					cancel()
				}
			})
	}()
	for range 7 {
		testenv.Poll(t, "the pause's timer", func() bool { return c.Waiters() == 1 })
		c.Advance(5 * time.Second)
	}
	<-done // the eighth failure ended the context
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second}
	if diff := cmp.Diff(want, pauses); diff != "" {
		t.Errorf("pauses (-want +got):\n%s", diff)
	}
}

// TestRetryStopsWithTheContext ends the context during a pause and during an attempt
// whose error is then the context's: Retry returns without another attempt, and does
// not report the error of the attempt the context ended.
func TestRetryStopsWithTheContext(t *testing.T) {
	c := clocktest.NewManual(time.Unix(0, 0))
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		clock.Retry(ctx, c, clock.Backoff{}, func(context.Context) error {
			calls++
			return errors.New("down")
		}, nil)
	}()
	testenv.Poll(t, "the pause's timer", func() bool { return c.Waiters() == 1 })
	cancel()
	<-done
	if calls != 1 || c.Waiters() != 0 {
		t.Errorf("%d attempts and %d timers after the context ended in a pause, want 1 and 0", calls, c.Waiters())
	}

	reported := 0
	ctx, cancel = context.WithCancel(t.Context())
	clock.Retry(ctx, c, clock.Backoff{}, func(ctx context.Context) error {
		cancel()
		return ctx.Err()
	}, func(error, int, time.Duration) { reported++ })
	if reported != 0 {
		t.Errorf("failed called %d times for the error of an attempt the context ended, want 0", reported)
	}
}
