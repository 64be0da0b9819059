package pricing

import "time"

// GlobalLocation is the market that applies to every location without a market of its
// own. A market event without a location changes it.
const GlobalLocation = "*"

// Neutral is the market of a location nobody set: the provider's price level, no demand.
func Neutral(location string) Market {
	return Market{Location: location, Multiplier: One}
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

// Fold applies events, in order, to markets: the stored markets by location, which must
// hold the stored market of every location the events name that has one. A location
// without a market starts from Neutral (never from the global market); an event's nil
// field leaves the value as it is. Fold updates markets and returns the markets it
// changed, in the order of each location's first event, which is the order a store
// writes them in. Store.BeginRun folds with it.
func Fold(markets map[string]Market, events []MarketEvent) []Market {
	var order []string
	seen := make(map[string]bool)
	for _, ev := range events {
		m, ok := markets[ev.Location]
		if !ok {
			m = Neutral(ev.Location)
		}
		if ev.Multiplier != nil {
			m.Multiplier = *ev.Multiplier
		}
		if ev.Demand != nil {
			m.Demand = *ev.Demand
		}
		if !seen[ev.Location] {
			seen[ev.Location] = true
			order = append(order, ev.Location)
		}
		markets[ev.Location] = m
	}
	changed := make([]Market, len(order))
	for i, loc := range order {
		changed[i] = markets[loc]
	}
	return changed
}

// MarketOf returns the market of location in markets, or Neutral without one.
func MarketOf(markets map[string]Market, location string) Market {
	if m, ok := markets[location]; ok {
		return m
	}
	return Neutral(location)
}
