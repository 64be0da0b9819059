package pricing

import (
	"errors"
	"fmt"
	"math/bits"
	"time"

	"boxoffice/catalog"
)

// BasisPoints is a rate in hundredths of a percent: 10000 is 100%, 1000 is 10%.
type BasisPoints int64

// One is the rate 100%.
const One BasisPoints = 10000

// Market is the market data of one location.
type Market struct {
	Location   string
	Multiplier BasisPoints // the location's price level: One leaves the provider's price as it is
	Demand     BasisPoints // added to the demand factor by market events; may be negative
}

// Limits of market data, so that no event can make prices absurd.
const (
	MinMultiplier BasisPoints = 1000   // ×0.1
	MaxMultiplier BasisPoints = 100000 // ×10
	MinDemand     BasisPoints = -5000
	MaxDemand     BasisPoints = 20000
)

// Validate reports market data outside the limits.
func (m Market) Validate() error {
	switch {
	case m.Location == "":
		return errors.New("market: empty location")
	case m.Multiplier < MinMultiplier || m.Multiplier > MaxMultiplier:
		return fmt.Errorf("market %s: multiplier %d bp outside [%d, %d]", m.Location, m.Multiplier, MinMultiplier, MaxMultiplier)
	case m.Demand < MinDemand || m.Demand > MaxDemand:
		return fmt.Errorf("market %s: demand %d bp outside [%d, %d]", m.Location, m.Demand, MinDemand, MaxDemand)
	}
	return nil
}

// Policy holds the constants of the price formula.
type Policy struct {
	PrimeDiscount     BasisPoints   // taken off for prime members
	LowStock          int64         // remaining capacity at or below which a zone is scarce
	LowStockSurcharge BasisPoints   // demand added for a scarce zone
	SoldOutSurcharge  BasisPoints   // demand added for a zone with no capacity left or a sold-out plan
	Soon              time.Duration // an event starting within Soon is urgent
	SoonSurcharge     BasisPoints   // demand added for an urgent event
	Week              time.Duration // an event starting within Week, but not Soon, is near
	WeekSurcharge     BasisPoints   // demand added for a near event
	MinFactor         BasisPoints   // the demand factor's floor
	MaxFactor         BasisPoints   // the demand factor's ceiling
}

// DefaultPolicy is the formula documented in the README.
var DefaultPolicy = Policy{
	PrimeDiscount:     1000,
	LowStock:          10,
	LowStockSurcharge: 1000,
	SoldOutSurcharge:  2000,
	Soon:              24 * time.Hour,
	SoonSurcharge:     1000,
	Week:              7 * 24 * time.Hour,
	WeekSurcharge:     500,
	MinFactor:         5000,
	MaxFactor:         30000,
}

// Factors are what a product's price depends on in one location, fixed when prices are
// recalculated; membership is applied when quoting.
type Factors struct {
	Base       catalog.Money
	Multiplier BasisPoints
	Demand     BasisPoints // the demand factor: One plus surcharges and market demand, clamped
}

// Surcharge is the demand that product p's own signals add at time now: scarcity plus
// urgency, where scarcity is SoldOutSurcharge when p has no capacity left or its plan is
// sold out, LowStockSurcharge when at most LowStock remain, else 0; and urgency is
// SoonSurcharge when p starts within Soon from now, WeekSurcharge within Week, else 0
// (past events get none). Recalculation stores it per product.
func (pol Policy) Surcharge(p Product, now time.Time) BasisPoints {
	var s BasisPoints
	switch {
	case p.SoldOut || p.Capacity <= 0:
		s += pol.SoldOutSurcharge
	case p.Capacity <= pol.LowStock:
		s += pol.LowStockSurcharge
	}
	switch until := p.StartsAt.Sub(now); {
	case until < 0:
	case until < pol.Soon:
		s += pol.SoonSurcharge
	case until < pol.Week:
		s += pol.WeekSurcharge
	}
	return s
}

// Factors computes the factors of a product of base price base with surcharge s in
// market m:
//
//	demand = clamp(One + s + m.Demand, MinFactor, MaxFactor)
func (pol Policy) Factors(base catalog.Money, s BasisPoints, m Market) Factors {
	demand := One + s + m.Demand
	return Factors{Base: base, Multiplier: m.Multiplier, Demand: min(max(demand, pol.MinFactor), pol.MaxFactor)}
}

// Discount is the discount rate of a member (prime) or not.
func (pol Policy) Discount(prime bool) BasisPoints {
	if prime {
		return pol.PrimeDiscount
	}
	return 0
}

// Price returns the final price after discount, exactly:
//
//	final = round(base × multiplier × demand × (One − discount) / One³)
//
// computed in 128-bit integers and rounded once, half away from zero. A negative base
// or rate, a discount above One, or a result beyond 64 bits is an error; within the
// limits of Market and Policy that takes a base price above 10^13 cents.
func (f Factors) Price(discount BasisPoints) (catalog.Money, error) {
	if f.Base < 0 || f.Multiplier < 0 || f.Demand < 0 || discount < 0 || discount > One {
		return 0, fmt.Errorf("pricing: factors out of range: %+v, discount %d", f, discount)
	}
	const denom = uint64(One) * uint64(One) * uint64(One) // 10^12
	ahi, a := bits.Mul64(uint64(f.Base), uint64(f.Multiplier))
	b := uint64(f.Demand) * uint64(One-discount) // at most 3·10^8 within the Policy's limits
	hi, lo := bits.Mul64(a, b)
	if ahi != 0 || hi >= denom {
		return 0, fmt.Errorf("pricing: price overflows: %+v", f)
	}
	q, r := bits.Div64(hi, lo, denom)
	if r >= denom-r { // r ≥ denom/2: half away from zero
		q++
	}
	return catalog.Money(q), nil
}
