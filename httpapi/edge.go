package httpapi

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"time"
)

// class is a route's class, which sets its deadline and its rate limit.
type class uint8

const (
	classOps    class = iota // /health, /ready, /metrics: no rate limit, never shed
	classSearch              // GET /search
	classQuote               // POST /api/v1/price
	classRead                // the other reads: products, tasks, /openapi.json, /docs
	classWrite               // POST /api/v1/recalculate, POST /api/v1/publish-market-event
	numClasses
)

// classNames name the classes in metrics and messages.
var classNames = [numClasses]string{"ops", "search", "quote", "read", "write"}

// classOf returns the class of a mux pattern ("" when no route matches: read).
func classOf(pattern string) class {
	switch pattern {
	case "GET /search":
		return classSearch
	case "POST /api/v1/price":
		return classQuote
	case "POST /api/v1/recalculate", "POST /api/v1/publish-market-event":
		return classWrite
	case "GET /health", "GET /ready", "GET /metrics":
		return classOps
	}
	return classRead
}

// Timeouts are the deadlines of requests by class, counted from when the handler
// starts. A request past its deadline gets 504, and the work behind it stops: the
// context carries the deadline down to PostgreSQL (a cancel request, and
// statement_timeout), Redis and SQLite. Zero fields take the defaults.
type Timeouts struct {
	// Search bounds a search that reads the store (no index, or a catalog beyond its
	// budget); one from the index does no I/O and needs none. Default 2s.
	Search time.Duration
	// Quote bounds a price quote: a cache lookup and, on a miss, store reads. Default 1s.
	Quote time.Duration
	// Read bounds the other reads (an event's products, a task). Default 2s.
	Read time.Duration
	// Write bounds the write endpoints (record and enqueue). Default 5s.
	Write time.Duration
}

// Default deadlines, used for the zero fields of Timeouts.
const (
	DefaultSearchTimeout = 2 * time.Second
	DefaultQuoteTimeout  = time.Second
	DefaultReadTimeout   = 2 * time.Second
	DefaultWriteTimeout  = 5 * time.Second
)

// byClass returns the deadlines indexed by class, defaults filled in.
func (t Timeouts) byClass() [numClasses]time.Duration {
	var d [numClasses]time.Duration
	d[classSearch] = cmp.Or(t.Search, DefaultSearchTimeout)
	d[classQuote] = cmp.Or(t.Quote, DefaultQuoteTimeout)
	d[classRead] = cmp.Or(t.Read, DefaultReadTimeout)
	d[classWrite] = cmp.Or(t.Write, DefaultWriteTimeout)
	return d
}

// withDeadline serves next with the deadline of class c in the request's context.
func (h *Handler) withDeadline(c class, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), h.timeouts[c])
		defer cancel()
		next(w, r.WithContext(ctx))
	}
}

// Errors of the edge, translated by writeError.
var (
	// errOverloaded: more requests in flight than Config.MaxInFlight; 503 at once.
	errOverloaded = errors.New("too many requests in flight; retry shortly")
	// errDeadline: the request's deadline passed while it waited for a backend; 504.
	errDeadline = errors.New("the request took longer than its deadline; retry shortly")
	// errRateLimited: the client is over its rate limit; 429.
	errRateLimited = errors.New("too many requests")
	// errClientGone: the client went away; nobody reads the answer.
	errClientGone = errors.New("request canceled by the client")
)

// contextError returns errDeadline or errClientGone, wrapping err, when the request's
// own context ended (its deadline passed, or the client left), and nil otherwise: an
// error that only wraps a deadline of its own (a cache's bound) is the backend's.
func contextError(r *http.Request, err error) error {
	ctx := r.Context()
	switch ctx.Err() {
	case context.DeadlineExceeded:
		return errors.Join(errDeadline, err)
	case context.Canceled:
		return errors.Join(errClientGone, err)
	}
	// The deadline may have passed before the context's timer ran: a backend's own
	// deadline, a little later, can fire first on a busy machine.
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return errors.Join(errDeadline, err)
	}
	return nil
}

// shed admits a request of class c under the in-flight cap and returns the function
// that releases its place, or ok false when it must be turned away (503). The
// operations routes are never shed: a live process answers its liveness probe
// whatever its load, and /ready and /metrics answer from results at most a second old.
func (h *Handler) shed(c class) (release func(), ok bool) {
	if h.maxInFlight <= 0 || c == classOps {
		return nil, true
	}
	if h.inFlight.Add(1) > h.maxInFlight {
		h.inFlight.Add(-1)
		return nil, false
	}
	return h.releaseInFlight, true
}

func (h *Handler) releaseInFlight() { h.inFlight.Add(-1) }
