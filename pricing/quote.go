package pricing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"boxoffice/catalog"
)

// Request asks for the price of a product for a user.
type Request struct {
	ProductID catalog.ID
	Location  string // normalized by NormalizeLocation
	Prime     bool
}

// MaxLocation is the longest user_location accepted, in bytes.
const MaxLocation = 64

// NormalizeLocation trims and lower-cases a location, so "Madrid " and "madrid" share a
// market and a cache entry. It rejects an empty, overlong or non-UTF-8 one, and
// GlobalLocation, which is not a place.
func NormalizeLocation(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("user_location is not UTF-8")
	}
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "":
		return "", errors.New("user_location is empty")
	case len(s) > MaxLocation:
		return "", fmt.Errorf("user_location is longer than %d bytes", MaxLocation)
	case s == GlobalLocation:
		return "", fmt.Errorf("user_location %q is reserved", GlobalLocation)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", errors.New("user_location has control characters")
		}
	}
	return s, nil
}

// Quote is a priced request.
type Quote struct {
	ProductID catalog.ID
	Final     catalog.Money
	Base      catalog.Money
	Discount  BasisPoints
}

// Sources of a quote, as the API reports them.
const (
	SourceCache    = "cache"
	SourceDatabase = "database"
)

// AppendJSON appends the quote as the API's response body:
//
//	{"product_id":"…","final_price":18.00,"base_price":20.00,"discount_rate":0.1,"source":"cache"}
func (q Quote) AppendJSON(b []byte, source string) []byte {
	b = append(b, `{"product_id":"`...)
	b = q.ProductID.AppendText(b)
	b = append(b, `","final_price":`...)
	b = q.Final.AppendText(b)
	b = append(b, `,"base_price":`...)
	b = q.Base.AppendText(b)
	b = append(b, `,"discount_rate":`...)
	b = q.Discount.AppendText(b)
	b = append(b, `,"source":"`...)
	b = append(b, source...)
	return append(b, `"}`...)
}

// AppendText appends the rate as a decimal fraction of One: 1000 is "0.1", 12500 "1.25".
func (r BasisPoints) AppendText(b []byte) []byte {
	if r < 0 {
		b = append(b, '-')
		r = -r
	}
	b = strconv.AppendInt(b, int64(r/One), 10)
	if frac := int64(r % One); frac != 0 {
		digits := strconv.AppendInt(nil, frac+int64(One), 10)[1:] // 4 digits, leading zeros kept
		b = append(b, '.')
		b = append(b, strings.TrimRight(string(digits), "0")...)
	}
	return b
}

// String returns the rate as AppendText writes it.
func (r BasisPoints) String() string { return string(r.AppendText(nil)) }

// QuoteStore is what a Quoter reads (see Store).
type QuoteStore interface {
	// Product returns one product, or ErrNotFound.
	Product(ctx context.Context, id catalog.ID, primary bool) (Priced, error)
	// Market returns the market of location, falling back to the global market and then
	// to Neutral, with the pricing version read in the same statement.
	Market(ctx context.Context, location string, primary bool) (m Market, version int64, err error)
	// PricingState reads the state from the primary: a quote reads its Version when the
	// cache cannot tell the current one.
	PricingState(ctx context.Context) (State, error)
}

// Quoter prices requests cache-aside: a cached quote valid for the current pricing
// version, or one computed from the store and then cached. It is safe for concurrent
// use.
//
// No quote is older than the last recalculation that completed before it was asked
// for. A cached quote: entries carry the pricing version they were computed at and count
// only while it is current, and a recalculation makes its version current in the cache
// before it reports success. A computed quote: it is computed from a replica only when
// the replica has replayed the current version, else from the primary. The current
// version is the cache's; when the cache cannot tell (it failed, timed out, or knows no
// version: Redis lost its data), it is read from the primary (Store.PricingState), one
// read at a time shared by the quotes that asked before it began (see versionReads).
// With the cache healthy, a quote never reads the primary for it.
type Quoter struct {
	store QuoteStore
	cache Cache
	cfg   QuoterConfig // with its defaults
	log   *slog.Logger

	cacheErr sync.Once    // the cache failing is logged once; Lookup counts every failure
	floor    versionReads // the primary's version, for quotes the cache cannot vouch for
}

// QuoterConfig tunes a Quoter. TTL is required; other zero fields take their defaults.
type QuoterConfig struct {
	Policy Policy        // the zero Policy is DefaultPolicy
	TTL    time.Duration // how long a cached quote lives, whatever the version (PRICE_CACHE_TTL_SECONDS)
	// CacheTimeout bounds each cache call, so that a slow or unreachable cache costs a
	// quote little: past it the quote comes from the store. Zero means 50ms.
	CacheTimeout time.Duration
	// Now is the time the surcharges are computed at; nil is time.Now.
	Now func() time.Time
	// Lookup, when set, is told the result of each cache lookup: "hit", "miss" or
	// "error" (the cache failed or timed out), for metrics.
	Lookup func(result string)
}

// NewQuoter returns a Quoter that prices from store, cache-aside in cache. It panics on
// a missing dependency, a TTL that is not positive or a negative CacheTimeout: a
// programming mistake.
func NewQuoter(store QuoteStore, cache Cache, cfg QuoterConfig, log *slog.Logger) *Quoter {
	if store == nil || cache == nil || log == nil {
		panic("pricing: NewQuoter: a nil store, cache or log")
	}
	if cfg.TTL <= 0 || cfg.CacheTimeout < 0 {
		panic(fmt.Sprintf("pricing: NewQuoter: TTL %v is not positive or CacheTimeout %v is negative", cfg.TTL, cfg.CacheTimeout))
	}
	if cfg.Policy == (Policy{}) {
		cfg.Policy = DefaultPolicy
	}
	cfg.CacheTimeout = cmp.Or(cfg.CacheTimeout, 50*time.Millisecond)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Quoter{store: store, cache: cache, cfg: cfg, log: log}
}

// Quote prices r and returns the response body, from the cache or the store; it returns
// ErrNotFound for a product the store does not sell.
func (q *Quoter) Quote(ctx context.Context, r Request) ([]byte, error) {
	key := r.key()
	cctx, cancel := q.cacheContext(ctx)
	entry, known, err := q.cache.Get(cctx, key)
	cancel()
	current := known - 1 // the store's version the cache knows; -1 for none
	switch {
	case err != nil:
		q.countLookup("error")
		q.cacheErr.Do(func() { q.log.Warn("price cache unavailable; quoting from the store", "err", err) })
	case entry != nil:
		q.countLookup("hit")
		return entry, nil
	default:
		q.countLookup("miss")
	}
	floor := current
	if err != nil || known == 0 { // the cache cannot say which version is current: the primary can
		var ferr error
		if floor, ferr = q.floor.read(ctx, q.store); ferr != nil {
			return nil, fmt.Errorf("read the pricing version from the primary: %w", ferr)
		}
	}
	quote, version, cerr := q.compute(ctx, r, floor)
	if cerr != nil {
		return nil, cerr
	}
	if err == nil { // a cache that just failed is not worth waiting for again
		cctx, cancel := q.cacheContext(ctx)
		defer cancel()
		if version > current {
			if err := q.cache.SetVersion(cctx, cacheVersion(version)); err != nil {
				q.log.Debug("price cache: set version", "err", err)
			}
		}
		if err := q.cache.Set(cctx, key, cacheVersion(version), quote.AppendJSON(nil, SourceCache), q.cfg.TTL); err != nil {
			q.log.Debug("price cache: set", "err", err)
		}
	}
	return quote.AppendJSON(nil, SourceDatabase), nil
}

// countLookup tells Lookup, when set, of a cache lookup's result.
func (q *Quoter) countLookup(result string) {
	if q.cfg.Lookup != nil {
		q.cfg.Lookup(result)
	}
}

func (q *Quoter) cacheContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, q.cfg.CacheTimeout)
}

func (r Request) key() string {
	b := make([]byte, 0, 40+len(r.Location))
	b = r.ProductID.AppendText(b)
	if r.Prime {
		b = append(b, "|p|"...)
	} else {
		b = append(b, "|-|"...)
	}
	return string(append(b, r.Location...))
}

// compute reads the product and its market concurrently, from a replica first, and from
// the primary when the replica is behind atLeast (the current version), the product's prices are
// older than the market read beside them, or the replica does not know the product.
func (q *Quoter) compute(ctx context.Context, r Request, atLeast int64) (Quote, int64, error) {
	p, m, version, err := q.lookup(ctx, r, false)
	lagging := err == nil && (version < atLeast || (p.Version > 0 && p.Version < version))
	if lagging || errors.Is(err, ErrNotFound) { // a product new to the primary is not on the replica yet
		p, m, version, err = q.lookup(ctx, r, true)
	}
	if err != nil {
		return Quote{}, 0, err
	}
	if p.Version == 0 { // not priced yet: a new product since the last recalculation
		p.Surcharge = q.cfg.Policy.Surcharge(p.Product, q.cfg.Now())
	}
	discount := q.cfg.Policy.Discount(r.Prime)
	final, err := q.cfg.Policy.Factors(p.BasePrice, p.Surcharge, m).Price(discount)
	if err != nil {
		return Quote{}, 0, err
	}
	return Quote{ProductID: p.ID, Final: final, Base: p.BasePrice, Discount: discount}, version, nil
}

// lookup runs the product's and the market's reads concurrently: they are independent.
func (q *Quoter) lookup(ctx context.Context, r Request, primary bool) (p Priced, m Market, version int64, err error) {
	var (
		wg      sync.WaitGroup
		product Priced
		perr    error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		product, perr = q.store.Product(ctx, r.ProductID, primary)
	}()
	m, version, err = q.store.Market(ctx, r.Location, primary)
	wg.Wait()
	if perr != nil {
		return product, m, 0, perr
	}
	return product, m, version, err
}
