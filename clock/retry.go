package clock

import (
	"cmp"
	"context"
	"time"
)

// Backoff is the pause of Retry between two attempts: First after the first failure,
// doubling after each one up to Max. Zero fields take the defaults, 100 ms and 5 s: how
// the subscriptions to the Pub/Sub channels (the listener's market events, the API's
// catalog versions) retry, as RabbitMQ's reconnections do.
type Backoff struct {
	First, Max time.Duration
}

// Retry calls attempt until it returns nil or ctx is done, and after each error pauses
// on c (see Backoff) before calling it again: the loop of whatever must keep trying for
// as long as the process runs, such as a subscription whose first attempt failed.
// failed, when not nil, is told of each error, with the attempts made so far and the
// pause before the next one; an error returned once ctx is done is not an error.
func Retry(ctx context.Context, c Clock, b Backoff, attempt func(ctx context.Context) error,
	failed func(err error, attempts int, pause time.Duration)) {
	pause := cmp.Or(b.First, 100*time.Millisecond)
	limit := cmp.Or(b.Max, 5*time.Second)
	for n := 1; ; n++ {
		err := attempt(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		pause = min(pause, limit)
		if failed != nil {
			failed(err, n, pause)
		}
		t := c.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		pause *= 2
	}
}
