package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Rate is a token bucket: PerSecond requests a second on average, up to Burst at
// once. A zero PerSecond means no limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

// RateLimits are the limits of each client (its API key when it presents a valid one,
// else its address; see clientOf) by route class. The operations routes have none.
type RateLimits struct {
	Search, Quote, Read, Write Rate
}

// SharedRates keeps budgets that several API instances share, such as Redis. Errors
// are its own (unreachable, timed out): each instance then limits on its own.
type SharedRates interface {
	// Take spends up to n requests of key's budget (perSecond, up to burst) and returns
	// how long its bucket takes to refill after them.
	Take(ctx context.Context, key string, perSecond float64, burst, n int) (refill time.Duration, err error)
}

// rateSyncInterval is how often a limiter with SharedRates reports what it admitted and
// learns what the other instances spent: the limit holds across instances to within
// the requests of one interval.
const rateSyncInterval = 100 * time.Millisecond

// rateSyncTimeout bounds one report to SharedRates.
const rateSyncTimeout = time.Second

// limiterShards spreads the clients over locks, so that requests of different clients
// rarely meet on one.
const limiterShards = 64

// minSweep is the size of a shard's map from which adding a client first sweeps out the
// idle ones.
const minSweep = 1024

// gcra is a class's limit in the form the bucket arithmetic uses.
type gcra struct {
	interval  int64 // nanoseconds between requests at the sustained rate; 0: no limit
	tolerance int64 // interval × burst: how far ahead of now a bucket's time may run
	rate      Rate
	limit     []string // {burst}, the RateLimit-Limit header, shared and never modified
}

// clientKey names a bucket: one per client and class.
type clientKey struct {
	addr  netip.Addr // the client's address (IPv6 by /64); zero when key is set
	key   int        // 1 + the index of the client's API key; 0: none
	class class
}

// bucket is one client's token bucket for one class, as GCRA keeps it: the theoretical
// arrival time of the next request, in nanoseconds of the limiter's clock.
type bucket struct {
	tat     atomic.Int64
	pending atomic.Int64 // requests admitted since the last report to SharedRates
}

// take admits a request at now under g, or returns how long until one would be
// (retry) and until the bucket is full again (reset).
func (b *bucket) take(now int64, g *gcra) (ok bool, retry, reset int64) {
	for {
		old := b.tat.Load()
		tat := max(old, now)
		next := tat + g.interval
		allowAt := next - g.tolerance
		if now < allowAt {
			return false, allowAt - now, tat - now
		}
		if b.tat.CompareAndSwap(old, next) {
			return true, 0, next - now
		}
	}
}

// raise moves the bucket's time to at least tat: what another instance spent.
func (b *bucket) raise(tat int64) {
	for {
		old := b.tat.Load()
		if old >= tat || b.tat.CompareAndSwap(old, tat) {
			return
		}
	}
}

type limiterShard struct {
	mu      sync.RWMutex // guards buckets and sweepAt
	buckets map[clientKey]*bucket
	sweepAt int // the map's size from which the next insertion sweeps
	_       [32]byte
}

// limiter limits requests per client and class, in process, and across instances
// through SharedRates when there is one. Admitting a request of a known client takes a
// read lock, a map lookup and a compare-and-swap, and allocates nothing; reports to
// SharedRates run in the background (run), never on a request.
type limiter struct {
	classes [numClasses]gcra
	shards  [limiterShards]limiterShard
	trusted []netip.Prefix
	shared  SharedRates
	log     *slog.Logger
	epoch   time.Time
	now     func() int64 // nanoseconds since epoch (monotonic); tests replace it

	sharedDown atomic.Bool  // the last report failed: the recovery is logged
	syncs      atomic.Int64 // reports completed, for tests
}

// newLimiter returns the limiter of limits, or nil when no class is limited.
func newLimiter(limits RateLimits, trusted []netip.Prefix, shared SharedRates, log *slog.Logger) *limiter {
	l := &limiter{trusted: trusted, shared: shared, log: log, epoch: time.Now()}
	l.now = func() int64 { return int64(time.Since(l.epoch)) }
	on := false
	for c, r := range map[class]Rate{classSearch: limits.Search, classQuote: limits.Quote, classRead: limits.Read, classWrite: limits.Write} {
		if r.PerSecond <= 0 {
			continue
		}
		on = true
		burst := max(r.Burst, 1)
		interval := max(int64(float64(time.Second)/r.PerSecond), 1)
		l.classes[c] = gcra{interval: interval, tolerance: interval * int64(burst),
			rate: Rate{PerSecond: r.PerSecond, Burst: burst}, limit: []string{strconv.Itoa(burst)}}
	}
	if !on {
		return nil
	}
	for i := range l.shards {
		l.shards[i].buckets = make(map[clientKey]*bucket)
		l.shards[i].sweepAt = minSweep
	}
	return l
}

// shard returns the shard of k.
func (l *limiter) shard(k clientKey) *limiterShard {
	a := k.addr.As16()
	h := mix64(uint64(a[0])<<56 | uint64(a[1])<<48 | uint64(a[2])<<40 | uint64(a[3])<<32 |
		uint64(a[4])<<24 | uint64(a[5])<<16 | uint64(a[6])<<8 | uint64(a[7]))
	h = mix64(h ^ uint64(k.key)<<8 ^ uint64(k.class))
	return &l.shards[h%limiterShards]
}

// bucket returns k's bucket, adding it when k is new.
func (l *limiter) bucket(k clientKey, now int64) *bucket {
	s := l.shard(k)
	s.mu.RLock()
	b := s.buckets[k]
	s.mu.RUnlock()
	if b != nil {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b = s.buckets[k]; b != nil {
		return b
	}
	if len(s.buckets) >= s.sweepAt {
		sweep(s.buckets, now)
		s.sweepAt = max(minSweep, 2*len(s.buckets))
	}
	b = &bucket{}
	b.tat.Store(now)
	s.buckets[k] = b
	return b
}

// sweep deletes the buckets that are full again and owe no report: dropping one
// changes nothing, since a new client's bucket starts full.
func sweep(buckets map[clientKey]*bucket, now int64) {
	for k, b := range buckets {
		if b.tat.Load() <= now && b.pending.Load() == 0 {
			delete(buckets, k)
		}
	}
}

// allow admits r, of class c, under its client's limit, or answers it 429 with
// Retry-After and the RateLimit headers and returns false.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request, c class) bool {
	l := h.limiter
	g := &l.classes[c]
	if g.interval == 0 {
		return true
	}
	k := clientKey{class: c}
	k.key = h.keyIndex(r)
	if k.key == 0 {
		k.addr = l.clientAddr(r)
	}
	now := l.now()
	b := l.bucket(k, now)
	ok, retry, reset := b.take(now, g)
	if !ok {
		// now may be stale: this goroutine may have been descheduled after reading the
		// clock while others moved the bucket's time past it, which refuses a request
		// whenever the pause outlasts the burst's tolerance. Refuse only on a fresh
		// reading; the admitting path reads the clock once.
		if fresh := l.now(); fresh > now {
			ok, retry, reset = b.take(fresh, g)
		}
	}
	if ok {
		if l.shared != nil {
			b.pending.Add(1)
		}
		return true
	}
	hd := w.Header()
	hd["Retry-After"] = []string{strconv.FormatInt(ceilSeconds(retry), 10)}
	hd["Ratelimit-Limit"] = g.limit
	hd["Ratelimit-Remaining"] = zeroRemaining
	hd["Ratelimit-Reset"] = []string{strconv.FormatInt(ceilSeconds(reset), 10)}
	h.writeError(w, r, fmt.Errorf("%w: at most %g %s requests a second, %d at once", errRateLimited,
		g.rate.PerSecond, classNames[c], g.rate.Burst))
	return false
}

// zeroRemaining is the RateLimit-Remaining of a 429, shared and never modified.
var zeroRemaining = []string{"0"}

// ceilSeconds returns ns nanoseconds in whole seconds, rounded up, at least 1.
func ceilSeconds(ns int64) int64 {
	return max(1, (ns+int64(time.Second)-1)/int64(time.Second))
}

// keyIndex returns 1 + the index of the valid API key r presents, or 0 when it presents
// none or an invalid one: only a valid key names a client, or a client could make up
// keys to get fresh budgets.
func (h *Handler) keyIndex(r *http.Request) int {
	if len(h.apiKeys) == 0 {
		return 0
	}
	auth := r.Header["Authorization"]
	if len(auth) == 0 {
		return 0
	}
	token, ok := bearerToken(auth[0])
	if !ok {
		return 0
	}
	return h.keyOf(token) + 1
}

// clientAddr returns the address of r's client: the connection's peer, or, when the
// peer is a trusted proxy, the first address of X-Forwarded-For read from the right
// that is not a trusted proxy (the leftmost when all are). An IPv6 client counts by
// its /64, which one subscriber usually gets whole.
func (l *limiter) clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{} // not a TCP peer (a test, a pipe): one bucket for all
	}
	addr := ap.Addr().Unmap().WithZone("")
	if len(l.trusted) > 0 && l.isTrusted(addr) {
		addr = l.forwardedFor(r.Header["X-Forwarded-For"], addr)
	}
	if addr.Is6() {
		addr = netip.PrefixFrom(addr, 64).Masked().Addr()
	}
	return addr
}

// forwardedFor walks the X-Forwarded-For values from the right, starting from peer, a
// trusted proxy, and returns the first hop that is not trusted. A hop that is not an
// address ends the walk at the hop after it: only trusted proxies wrote what is to its
// right.
func (l *limiter) forwardedFor(values []string, peer netip.Addr) netip.Addr {
	client := peer
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			var hop string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				hop, v = v[j+1:], v[:j]
			} else {
				hop, v = v, ""
			}
			hop = strings.TrimSpace(hop)
			if hop == "" {
				continue
			}
			addr, ok := parseHop(hop)
			if !ok {
				return client
			}
			client = addr
			if !l.isTrusted(addr) {
				return client
			}
		}
	}
	return client
}

// parseHop parses one X-Forwarded-For entry: an address, or an address with a port
// (some proxies add it), IPv4-mapped addresses unmapped.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

func (l *limiter) isTrusted(a netip.Addr) bool {
	for _, p := range l.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// report is one bucket's admissions since the last report.
type report struct {
	key string
	g   *gcra
	b   *bucket
	n   int64
}

// run reports admissions to SharedRates every rateSyncInterval until ctx is done, and
// raises each reported bucket to what the instances spent together. A failing
// SharedRates is logged once, when it starts failing, and once when it recovers;
// meanwhile each instance limits on its own.
func (l *limiter) run(ctx context.Context, keyNames []string) {
	t := time.NewTicker(rateSyncInterval)
	defer t.Stop()
	var batch []report
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		batch = l.collect(batch[:0], keyNames)
		l.sync(ctx, batch)
		clear(batch)
		l.syncs.Add(1)
	}
}

// collect appends the buckets with admissions to report, taking their counts.
func (l *limiter) collect(batch []report, keyNames []string) []report {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.RLock()
		for k, b := range s.buckets {
			if n := b.pending.Swap(0); n > 0 {
				batch = append(batch, report{key: sharedKey(k, keyNames), g: &l.classes[k.class], b: b, n: n})
			}
		}
		s.mu.RUnlock()
	}
	return batch
}

// sharedKey names k in SharedRates: <class>:<address>, or <class>:key:<hash prefix>
// for an API key (never the key itself).
func sharedKey(k clientKey, keyNames []string) string {
	if k.key > 0 {
		return classNames[k.class] + ":key:" + keyNames[k.key-1]
	}
	return classNames[k.class] + ":" + k.addr.String()
}

// syncWorkers bounds the reports in flight at once.
const syncWorkers = 8

// sync sends batch to SharedRates and raises each bucket to the shared state.
func (l *limiter) sync(ctx context.Context, batch []report) {
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, rateSyncTimeout)
	defer cancel()
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range min(syncWorkers, len(batch)) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(batch)); i = next.Add(1) - 1 {
				rp := batch[i]
				refill, err := l.shared.Take(ctx, rp.key, rp.g.rate.PerSecond, rp.g.rate.Burst, int(min(rp.n, math.MaxInt32)))
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					continue
				}
				rp.b.raise(l.now() + int64(refill))
			}
		})
	}
	wg.Wait()
	switch errp := failed.Load(); {
	case errp != nil && ctx.Err() != context.Canceled && l.sharedDown.CompareAndSwap(false, true):
		l.log.Warn("shared rate limits failing; each instance limits on its own", "err", *errp)
	case errp == nil && l.sharedDown.Load() && l.sharedDown.CompareAndSwap(true, false):
		l.log.Info("shared rate limits recovered")
	}
}
