package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"

	"boxoffice/catalog"
)

// Defaults of the cache settings in Config.
const (
	defaultCacheTTL   = 5 * time.Minute
	defaultL1MaxBytes = 64 << 20
	defaultL2Timeout  = 50 * time.Millisecond
)

// maxClientAge caps the Cache-Control max-age. Cached responses are keyed by catalog
// version, so on the server the TTL only bounds memory; a client or proxy cannot see
// the version, so its max-age is how stale it may serve a window. Revalidating is a
// cheap 304.
const maxClientAge = time.Minute

// l1EntryShare is the share of the L1 budget one response may take: a larger one (a
// very wide window) is served uncached, so it never evicts the hot windows.
const l1EntryShare = 16

// minGzipBytes is the size above which a response is worth gzipping: below it the
// header and the deflate block overhead eat most of the gain.
const minGzipBytes = 1 << 10

// eagerGzipBytes is the size from which a response is kept in L1 and gzipped on its
// first use. A smaller one is streamed plain from the index on its first use, and kept
// and gzipped from its second (see doorkeeper): compressing a one-off response of a few
// kilobytes (a random window) costs more CPU than it saves on the wire, and it halved
// the throughput of random windows in `make bench`, while a response that is asked for
// again is worth compressing once and keeping.
const eagerGzipBytes = 64 << 10

// responseOverhead is what an L1 entry costs besides its bytes: the key, the struct,
// the header values and the cache's own node, roughly.
const responseOverhead = 256

// Store is what searches read when the catalog has no index (not loaded yet, or the
// catalog is beyond the index's memory budget). catalog.Store implements it.
//
// ChangedSince(ctx, math.MaxInt64) returns no plans and the catalog version the store
// is at; SearchPlans returns the plans inside a window. Errors are the store's own (a
// refused connection, a timeout): searches answer 503 for windows that are not cached.
type Store interface {
	ChangedSince(ctx context.Context, version int64) (catalog.Changes, error)
	SearchPlans(ctx context.Context, w catalog.Window) ([]catalog.Plan, error)
}

var _ Store = catalog.Store(nil)

// Cache is the second response cache tier (L2), shared by the API instances, such as
// Redis. It holds response bodies under keys that name the catalog version and the
// window, so entries never need invalidating, only expiring. Errors are the cache's
// own: searches count them as misses and go on without it.
type Cache interface {
	// Get returns the value stored under key, and false when there is none.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores val under key for ttl.
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
}

// searchKey identifies a search response: the catalog version it was read at and the
// window in the whole seconds the index compares (plans start and end on whole
// seconds), open bounds as the extremes of int64.
type searchKey struct {
	version  int64
	from, to int64
}

func newSearchKey(version int64, w catalog.Window) searchKey {
	k := searchKey{version: version, from: math.MinInt64, to: math.MaxInt64}
	if !w.From.IsZero() {
		k.from = w.From.Unix()
		if w.From.Nanosecond() > 0 {
			k.from++
		}
	}
	if !w.To.IsZero() {
		k.to = w.To.Unix()
	}
	return k
}

// hash returns a well-mixed, nonzero 64-bit hash of the key.
func (k searchKey) hash() uint64 {
	return mix64(uint64(k.version)^mix64(uint64(k.from)^mix64(uint64(k.to)))) | 1
}

// mix64 is MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
//
// Not providersim's mix, which is SplitMix64's finaliser: other shifts and constants.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// doorkeeperSlots is the size of the doorkeeper's table: 512 KiB of hashes, enough to
// remember the windows of a few seconds of random traffic at tens of thousands of
// requests a second.
const doorkeeperSlots = 1 << 16

// doorkeeper remembers, approximately, which small responses were asked for recently,
// so that L1 keeps one only from its second use (TinyLFU's "doorkeeper"). A stream of
// one-off windows (random windows; a client busting the cache on purpose) is then
// served from the index through a pooled buffer: it allocates nothing per request and
// evicts nothing. It is a direct-mapped table of key hashes, safe for concurrent use
// without locks: a collision only makes a window look new once more (it is streamed
// again), or, with odds of 2^-64, seen.
type doorkeeper struct{ slots []atomic.Uint64 }

func newDoorkeeper() doorkeeper { return doorkeeper{slots: make([]atomic.Uint64, doorkeeperSlots)} }

// seen reports whether k was recorded before, and records it.
func (d doorkeeper) seen(k searchKey) bool {
	h := k.hash()
	slot := &d.slots[h&(doorkeeperSlots-1)]
	if slot.Load() == h {
		return true
	}
	slot.Store(h)
	return false
}

// appendText appends the key as "<version>.<from>.<to>" in base 36, "-" for an open
// bound: the L2 key and the ETag's opaque part.
func (k searchKey) appendText(b []byte) []byte {
	b = strconv.AppendInt(b, k.version, 36)
	b = append(b, '.')
	if k.from == math.MinInt64 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, k.from, 36)
	}
	b = append(b, '.')
	if k.to == math.MaxInt64 {
		return append(b, '-')
	}
	return strconv.AppendInt(b, k.to, 36)
}

// appendETag appends the key's ETag, W/"<text>". It is weak because the gzipped and
// the plain forms of a response share it.
func (k searchKey) appendETag(b []byte) []byte {
	b = append(b, `W/"`...)
	b = k.appendText(b)
	return append(b, '"')
}

// response is a search response ready to write, as L1 holds it. It is immutable:
// adding the gzipped form makes a new response.
type response struct {
	body       []byte
	gzip       []byte   // body gzipped; nil when not tried, too small or no smaller
	gzipTried  bool     // gzip was computed, or body is too small to try
	etag       []string // {ETag}, shared by responses' headers, never modified
	length     []string // {len(body)}, likewise
	gzipLength []string // {len(gzip)}, likewise
}

// newResponse returns the response of key with body, gzipped too when compress is set
// (and body is large enough to try); otherwise it is gzipped on the first use that
// accepts gzip (see writeResponse).
func (h *Handler) newResponse(key searchKey, body []byte, compress bool) *response {
	r := &response{
		body:      body,
		gzipTried: len(body) <= minGzipBytes,
		etag:      []string{string(key.appendETag(nil))},
		length:    []string{strconv.Itoa(len(body))},
	}
	if compress && !r.gzipTried {
		r.setGzip(h.compress(body)) // r is not shared yet
	}
	return r
}

// withGzip returns a copy of r with gz as its gzipped body; nil gz means no gain. r,
// which readers may hold, is left as it was.
func (r *response) withGzip(gz []byte) *response {
	c := *r
	c.setGzip(gz)
	return &c
}

// setGzip sets gz as r's gzipped body; nil gz means no gain.
func (r *response) setGzip(gz []byte) {
	r.gzip, r.gzipTried = gz, true
	if gz != nil {
		r.gzipLength = []string{strconv.Itoa(len(gz))}
	}
}

// weight is what r costs L1, in bytes.
func (r *response) weight() uint32 {
	return uint32(min(len(r.body)+len(r.gzip)+responseOverhead, math.MaxUint32))
}

// newL1 returns the in-process response cache: at most maxBytes of responses, each
// kept for ttl after it was written.
func newL1(maxBytes int64, ttl time.Duration) *otter.Cache[searchKey, *response] {
	return otter.Must(&otter.Options[searchKey, *response]{
		MaximumWeight:    uint64(maxBytes),
		Weigher:          func(_ searchKey, r *response) uint32 { return r.weight() },
		ExpiryCalculator: otter.ExpiryWriting[searchKey, *response](ttl),
	})
}

// compress returns body gzipped at the fastest level, or nil when that is no smaller.
func (h *Handler) compress(body []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(body)/4 + 64)
	zw := h.gzips.Get().(*gzip.Writer)
	zw.Reset(&buf)
	_, _ = zw.Write(body) // writes to a bytes.Buffer never fail
	zw.Close()
	h.gzips.Put(zw)
	if buf.Len() >= len(body) {
		return nil
	}
	return buf.Bytes()
}

// newGzipWriter returns a gzip writer at the fastest level, for the pool.
func newGzipWriter() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a valid level never errs
	return zw
}

// cacheMetrics are the search cache's counters, resolved once so that a request
// increments an atomic rather than looking up labels.
type cacheMetrics struct {
	l1Hit, l1Miss, l2Hit, l2Miss prometheus.Counter
}

// newCacheMetrics registers boxoffice_search_cache_requests_total{tier, result} on
// reg, or reuses the one another Handler registered there.
func newCacheMetrics(reg *prometheus.Registry) cacheMetrics {
	var requests prometheus.Collector = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "boxoffice_search_cache_requests_total",
		Help: "Search response cache lookups, by tier (l1: in-process, l2: Redis) and result (hit, miss).",
	}, []string{"tier", "result"})
	if err := reg.Register(requests); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic("httpapi: register search cache metrics: " + err.Error()) // a programmer mistake
		}
		requests = are.ExistingCollector
	}
	vec := requests.(*prometheus.CounterVec)
	return cacheMetrics{
		l1Hit:  vec.WithLabelValues("l1", "hit"),
		l1Miss: vec.WithLabelValues("l1", "miss"),
		l2Hit:  vec.WithLabelValues("l2", "hit"),
		l2Miss: vec.WithLabelValues("l2", "miss"),
	}
}

// acceptsGzip reports whether the Accept-Encoding header values allow a gzipped
// response: gzip (or x-gzip) listed with a nonzero q, or, when it is not listed, *
// with a nonzero q.
func acceptsGzip(values []string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, v := range values {
		for coding := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(coding, ";")
			name = strings.TrimSpace(name)
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				p = strings.TrimSpace(p)
				if len(p) > 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=' {
					if f, err := strconv.ParseFloat(p[2:], 64); err == nil {
						q = f
					}
				}
			}
			switch {
			case strings.EqualFold(name, "gzip"), strings.EqualFold(name, "x-gzip"):
				gzipQ = max(gzipQ, q)
			case name == "*":
				starQ = max(starQ, q)
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}

// etagMatches reports whether an If-None-Match header value, "*" or a list of entity
// tags, matches etag under the weak comparison (W/ prefixes ignored).
func etagMatches(header string, etag []byte) bool {
	etag = bytes.TrimPrefix(etag, []byte("W/"))
	s := header
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return false
		}
		if s[0] == '*' {
			return true
		}
		s = strings.TrimPrefix(s, "W/")
		if s == "" || s[0] != '"' {
			return false // malformed: match nothing
		}
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return false
		}
		if s[:end+2] == string(etag) { // compiled without a copy
			return true
		}
		s = s[end+2:]
	}
}
