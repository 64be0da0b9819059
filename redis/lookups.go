package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// maxLookupBatch is the most lookups one pipeline carries; more wait for the next.
const maxLookupBatch = 256

// lookupQueue is how many lookups can wait for a pipeline before a Get waits to queue.
const lookupQueue = 4096

// lookups coalesces the MGETs of concurrent callers into pipelines, so that at load
// each costs a fraction of a round trip: one write and one read carry every lookup that
// queued while the previous pipeline was out. A caller waits for its own reply or for
// its context, whichever ends first, so a Redis that hangs costs it its deadline and no
// more. (go-redis's automatic pipelining, experimental in v9.23, was as fast in `make
// bench-price`, but its calls wait out a hung connection whatever the caller's
// deadline: 20 s and more in TestPriceCacheLookupsEndWhenRedisHangs.)
//
// One goroutine sends the pipelines, one at a time, until the client closes. A
// pipeline's deadline is the latest of its callers'; a caller whose context has ended
// by then is left out. A pipeline's span, when Redis is traced, belongs to the trace
// of its first caller.
type lookups struct {
	rdb    *goredis.Client
	queue  chan *lookup
	closed <-chan struct{} // closed when the client closes; nil: never
}

// lookup is one MGET waiting for its reply.
type lookup struct {
	ctx  context.Context
	keys []string
	vals []any
	err  error
	done chan struct{} // closed once vals and err are set
}

func newLookups(rdb *goredis.Client, closed <-chan struct{}) *lookups {
	l := &lookups{rdb: rdb, queue: make(chan *lookup, lookupQueue), closed: closed}
	go l.run()
	return l
}

// mget returns the values of keys, as MGET does, in a pipeline shared with other
// callers.
func (l *lookups) mget(ctx context.Context, keys ...string) ([]any, error) {
	req := &lookup{ctx: ctx, keys: keys, done: make(chan struct{})}
	select {
	case l.queue <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.closed:
		return nil, goredis.ErrClosed
	}
	select {
	case <-req.done:
		return req.vals, req.err
	case <-ctx.Done():
		return nil, ctx.Err() // the pipeline still completes req, for no one
	case <-l.closed: // req may have been queued after run drained the queue
		return nil, goredis.ErrClosed
	}
}

// run sends what is queued as pipelines until the client closes.
func (l *lookups) run() {
	batch := make([]*lookup, 0, maxLookupBatch)
	for {
		select {
		case req := <-l.queue:
			batch = append(batch[:0], req)
		case <-l.closed:
			l.drain()
			return
		}
	fill:
		for len(batch) < maxLookupBatch {
			select {
			case req := <-l.queue:
				batch = append(batch, req)
			default:
				break fill
			}
		}
		l.send(batch)
		clear(batch) // drop the references, send's reordering included, until reuse
	}
}

// drain fails the lookups still queued when the client closes, so their callers need
// not wait for their deadlines.
func (l *lookups) drain() {
	for {
		select {
		case req := <-l.queue:
			req.err = goredis.ErrClosed
			close(req.done)
		default:
			return
		}
	}
}

// send runs batch as one pipeline and completes each lookup in it. It keeps the live
// lookups at the front of batch.
func (l *lookups) send(batch []*lookup) {
	live := batch[:0]
	var latest time.Time
	unbounded := false
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.err = err
			close(req.done)
			continue
		}
		if d, ok := req.ctx.Deadline(); !ok {
			unbounded = true
		} else if d.After(latest) {
			latest = d
		}
		live = append(live, req)
	}
	if len(live) == 0 {
		return
	}
	// The first caller's values (its trace), none of its cancellation: the pipeline
	// serves the others too.
	ctx := context.WithoutCancel(live[0].ctx)
	if !unbounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, latest)
		defer cancel()
	}
	cmds := make([]*goredis.SliceCmd, len(live))
	// Each command carries its own error; Pipelined's is the first of them.
	_, _ = l.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, req := range live {
			cmds[i] = p.MGet(ctx, req.keys...)
		}
		return nil
	})
	for i, req := range live {
		req.vals, req.err = cmds[i].Result()
		close(req.done)
	}
}
