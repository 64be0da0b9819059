// Package pricing prices the sellable zones of ever-online plans from their provider
// price, market data kept per location, and membership.
//
// Concepts:
//
//   - A product is one zone of one plan. Zone ids are not unique inside a plan (Los
//     Morancos sells zone 186 twice: numbered at 75.00 and unnumbered at 65.00), so a
//     product is known by its plan and the zone's (zone_id, numbered, name), plus an
//     occurrence number for the rare zones equal in all three. Its ProductID is a UUIDv5
//     of those: stable across syncs while the provider keeps describing the zone the
//     same way, and independent of the zones' order.
//   - Market data, per location: a multiplier (a city's price level) and a demand
//     adjustment that market events move.
//   - Demand signals, per product at recalculation time: scarcity (remaining capacity,
//     sold out) and urgency (time to the event).
//   - A quote is exact: amounts are integer cents, rates are basis points, and the
//     final price is computed from the base price and every factor at once, then
//     rounded once (half away from zero). See Factors.Price.
//   - A market event's trace: the API publishes it on the channel with its request's
//     W3C trace context in the payload (traceparent), so the listener's receipt, the
//     recalculation it enqueues and the worker's run continue the request's trace.
package pricing
