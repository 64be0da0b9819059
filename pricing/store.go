package pricing

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"boxoffice/catalog"
	"boxoffice/task"
)

// ErrNotFound is returned for a product or an event (plan) that the store does not sell:
// unknown, or never seen online.
var ErrNotFound = errors.New("not found")

// GlobalLocation is the market that applies to every location without a market of its
// own. A market event without a location changes it.
const GlobalLocation = "*"

// Neutral is the market of a location nobody set: the provider's price level, no demand.
func Neutral(location string) Market {
	return Market{Location: location, Multiplier: One}
}

// Priced is a product with what the last recalculation computed for it.
type Priced struct {
	Product
	Position  int         // the zone's place in the plan's zones, from 0
	Surcharge BasisPoints // demand from scarcity and urgency, before market demand and the clamp
	Price     catalog.Money
	// Price is the list price: at the global market, without discount.
	Version int64 // the pricing version Surcharge and Price were computed for; 0: never
}

// MarketEvent changes one location's market data. Nil fields leave the value as it is;
// values are absolute (a multiplier of 1.25 sets 1.25), so applying an event twice is
// the same as applying it once.
type MarketEvent struct {
	ID         int64        // assigned by the store, increasing
	Location   string       // GlobalLocation for every location without its own market
	Multiplier *BasisPoints // the location's price level
	Demand     *BasisPoints // the location's demand adjustment
	Source     string       // "api", or "pubsub" for one published on Redis by someone else
	ReceivedAt time.Time
	// Trace is the W3C trace context (traceparent, tracestate) of the request that
	// published the event on the channel, carried in its payload; nil when none. The
	// store does not keep it.
	Trace map[string]string
}

// Run is what a recalculation starts from: the trigger generation it covers and the
// global market after folding the market events received so far.
type Run struct {
	Gen     int64  // every trigger up to this generation is covered by the run
	Version int64  // the pricing version the run will publish
	Global  Market // the global market, for list prices
	Events  int    // market events folded in by this run
}

// State is the pricing's progress: triggers requested and covered, and the version of
// the published prices.
type State struct {
	Requested int64 // generation of the last trigger
	Done      int64 // generation covered by the last completed run
	Version   int64 // pricing version: advances when a run completes
	Events    int64 // id of the last market event received
	Applied   int64 // id of the last market event folded into the markets
}

// Store keeps products, prices and market data. Implementations:
// sqlite.Store and postgres.Store, which keep products in step with the plans they
// upsert (the zones of ever-online plans; a plan whose zones change gets its products
// replaced). Methods taking primary read from the primary database when it is true and
// may read a replica otherwise. The recalculation tasks are task records
// (task.Records), which the same adapters keep: State.Requested is the generation of
// the last task of Kind that they created.
type Store interface {
	// EventProducts returns the products of the ever-online plan with id event, in the
	// plan's zone order, or ErrNotFound.
	EventProducts(ctx context.Context, event catalog.ID) ([]Priced, error)
	// Product returns one product, or ErrNotFound.
	Product(ctx context.Context, id catalog.ID, primary bool) (Priced, error)
	// Market returns the market of location, falling back to the global market and then
	// to Neutral, with the pricing version read in the same statement.
	Market(ctx context.Context, location string, primary bool) (m Market, version int64, err error)

	// AddMarketEvent records ev durably and returns its id.
	AddMarketEvent(ctx context.Context, ev MarketEvent) (int64, error)

	// PricingState reads the state from the primary.
	PricingState(ctx context.Context) (State, error)
	// BeginRun folds the market events received so far into the markets, in id order,
	// and returns the run: the generation of the last trigger and the version to publish.
	BeginRun(ctx context.Context, now time.Time) (Run, error)
	// ProductsAfter returns up to limit products with ids above after, in id order,
	// from the primary. The zero ID starts at the beginning.
	ProductsAfter(ctx context.Context, after catalog.ID, limit int) ([]Priced, error)
	// SavePrices writes the Surcharge, Price and Version of each product.
	SavePrices(ctx context.Context, prices []Priced) error
	// CompleteRun publishes run: Done becomes at least run.Gen and Version run.Version.
	CompleteRun(ctx context.Context, run Run, now time.Time) (State, error)
}

// Cache keeps encoded quotes for a time, each valid for one pricing version.
// Implementations: redis.PriceCache (distributed) and memory.PriceCache (embedded).
// A cache's versions are the store's plus one (cacheVersion), so that its 0, a cache
// that knows no version (new, or flushed), is below every version the store has.
type Cache interface {
	// Get returns the entry under key when it was stored for the current pricing
	// version, and the current version as the cache knows it (0 when it does not).
	Get(ctx context.Context, key string) (entry []byte, current int64, err error)
	// Set stores entry under key for version, for ttl.
	Set(ctx context.Context, key string, version int64, entry []byte, ttl time.Duration) error
	// SetVersion makes version current unless a higher one already is.
	SetVersion(ctx context.Context, version int64) error
}

// cacheVersion is the cache's name for the store's pricing version v.
func cacheVersion(v int64) int64 { return v + 1 }

// Bus carries market event notifications: Redis Pub/Sub channel market_events in
// distributed mode, an in-process fan-out in embedded mode. Delivery is not durable;
// the store is.
type Bus interface {
	Publish(ctx context.Context, payload []byte) error
	// Subscribe calls f with each payload until ctx is done. It returns nil then.
	Subscribe(ctx context.Context, f func(payload []byte)) error
}

// Channel is the Redis channel of market events, as in the seed.
const Channel = "market_events"

// TopicRecalculate is the broker topic of recalculation tasks. A message's body is a
// RecalculateMessage.
const TopicRecalculate = "pricing.recalculate"

// RecalculateMessage asks a worker to run the recalculation task TaskID.
type RecalculateMessage struct {
	TaskID string `json:"task_id"`
}

// Kind is the task kind of a recalculation.
const Kind = "recalculate"

// Enqueue records a recalculation task triggered by trigger and publishes it with the
// trace context of ctx (see task.Publish). When the publish fails the task is recorded
// as failed, with the reason, and the error returned.
func Enqueue(ctx context.Context, s task.Records, pub task.Publisher, trigger string, now time.Time) (task.Record, error) {
	rec, err := s.CreateTask(ctx, Kind, trigger, now)
	if err != nil {
		return task.Record{}, err
	}
	body, _ := json.Marshal(RecalculateMessage{TaskID: rec.ID})
	if err := task.Publish(ctx, pub, TopicRecalculate, task.Message{ID: rec.ID, Body: body}); err != nil {
		rec.State, rec.ErrorCode = task.Failed, task.CodeNotEnqueued
		rec.Error = "not enqueued: " + err.Error()
		rec.FinishedAt = now
		_ = s.SaveTask(context.WithoutCancel(ctx), rec)
		return rec, err
	}
	return rec, nil
}
