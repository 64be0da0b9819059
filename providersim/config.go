package providersim

import (
	"fmt"
	"time"

	"boxoffice/provider"
)

// Mode says what the simulator serves, call after call.
type Mode string

// The simulator's modes.
const (
	// Rotate serves the provider's three samples in turn: 1, 2, 3, 1, …
	Rotate Mode = "rotate"
	// Synthetic serves a generated catalog that churns from call to call; see Catalog.
	Synthetic Mode = "synthetic"
	// Sequence serves the steps of Config.Sequence one per call, the last one repeating.
	Sequence Mode = "sequence"
)

// Limits on the size of the synthetic catalog. The simulator's memory grows with the
// size of one base plan (Plans × Zones), never with the number of base plans.
const (
	maxBasePlans    = 100_000_000
	maxPlans        = 100_000
	maxZones        = 1_000
	maxZonesPerBase = 1_000_000
)

// Config configures a Server. Its fields map one to one onto the flags of
// `boxoffice provider-sim`, named in each comment; Validate's errors use those names.
// The zero Config is valid: it rotates the samples, without faults.
type Config struct {
	// Mode is what the simulator serves (--mode): Rotate, Synthetic or Sequence.
	// Empty means Rotate.
	Mode Mode
	// Format is the document format it serves (--format): provider.FormatPlanList,
	// FormatEventList or FormatJSON. Empty means planList. The samples of each format
	// hold the same catalog, but for eventList's first, the legacy original, which
	// lacks plan 1643 of base plan 322.
	Format string
	// Feeds are more simulated providers served beside the one at Path (--feeds), such
	// as "acme=json legacy=eventList": each is a simulator of its own, with these
	// settings but its own format and call count, at FeedPath(name); see ParseFeeds.
	Feeds string
	// Sequence is the script of Sequence mode (--sequence), such as
	// "1,2,malformed,500,slow,3"; see ParseSequence.
	Sequence string
	// SlowDelay is how long a "slow" step waits before answering (--slow-delay).
	SlowDelay time.Duration

	// Seed makes the synthetic catalog and the faults (--seed): the same seed gives the
	// same bytes and the same faults for the same call number.
	Seed uint64
	// BasePlans is the number of base plans of the synthetic catalog (--base-plans).
	BasePlans int
	// Plans is the number of plans in each base plan (--plans).
	Plans int
	// Zones is the number of zones in each plan (--zones).
	Zones int

	// The synthetic catalog's churn, each a fraction between 0 and 1; see Catalog.

	// VanishRate is the fraction of plans absent from each response (--vanish-rate).
	VanishRate float64
	// PriceChangeRate is the fraction of plans whose zone prices and capacities change
	// from one call to the next (--price-change-rate).
	PriceChangeRate float64
	// TimeChangeRate is the fraction of plans whose start, end and sell_to change from
	// one call to the next (--time-change-rate).
	TimeChangeRate float64
	// SellModeFlipRate is the fraction of base plans whose sell_mode flips from one call
	// to the next (--sell-mode-flip-rate).
	SellModeFlipRate float64
	// InvalidDateRate is the fraction of plans served with dates that do not exist,
	// such as 2021-09-31, in each response (--invalid-date-rate).
	InvalidDateRate float64
	// OfflineRate is the fraction of base plans that start offline (--offline-rate).
	OfflineRate float64

	// Faults, on top of any mode, chosen per call from Seed and the call number. The
	// four rates add up to at most 1: a call gets at most one of these faults.

	// ErrorRate is the fraction of calls answered 500 or 503 (--error-rate).
	ErrorRate float64
	// MalformedRate is the fraction of calls answered with a document that is not
	// well-formed XML (--malformed-rate).
	MalformedRate float64
	// TruncateRate is the fraction of calls answered with a document cut in the middle
	// (--truncate-rate).
	TruncateRate float64
	// HangRate is the fraction of calls that send part of a document and then wait
	// until the client goes away (--hang-rate).
	HangRate float64
	// Latency is added before answering every call (--latency).
	Latency time.Duration
}

// DefaultConfig returns the defaults of `boxoffice provider-sim` and of the embedded
// mode: the samples in rotation and, for Synthetic mode, a catalog of 1000 base plans ×
// 10 plans × 3 zones that churns at realistic rates. It injects no faults.
func DefaultConfig() Config {
	return Config{
		Mode:             Rotate,
		SlowDelay:        5 * time.Second,
		Seed:             1,
		BasePlans:        1000,
		Plans:            10,
		Zones:            3,
		VanishRate:       0.05,
		PriceChangeRate:  0.10,
		TimeChangeRate:   0.05,
		SellModeFlipRate: 0.02,
		InvalidDateRate:  0.001,
		OfflineRate:      0.10,
	}
}

// Validate reports the first invalid field, named after its flag, such as
// `error-rate: must be between 0 and 1: 1.5`.
func (c Config) Validate() error {
	switch c.Mode {
	case "", Rotate, Synthetic:
	case Sequence:
		if c.Sequence == "" {
			return fmt.Errorf("sequence: must not be empty in %s mode", Sequence)
		}
	default:
		return fmt.Errorf("mode: unknown value %q (want %s, %s or %s)", c.Mode, Rotate, Synthetic, Sequence)
	}
	if _, ok := formatFiles[c.format()]; !ok {
		return fmt.Errorf("format: unknown value %q (want %s, %s or %s)", c.Format,
			provider.FormatPlanList, provider.FormatEventList, provider.FormatJSON)
	}
	if _, err := ParseFeeds(c.Feeds); err != nil {
		return fmt.Errorf("feeds: %w", err)
	}
	if c.Sequence != "" {
		if _, err := ParseSequence(c.Sequence); err != nil {
			return fmt.Errorf("sequence: %w", err)
		}
	}
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"slow-delay", c.SlowDelay},
		{"latency", c.Latency},
	}
	for _, f := range durations {
		if f.d < 0 {
			return fmt.Errorf("%s: must not be negative: %s", f.name, f.d)
		}
	}
	counts := []struct {
		name string
		n    int
		max  int
	}{
		{"base-plans", c.BasePlans, maxBasePlans},
		{"plans", c.Plans, maxPlans},
		{"zones", c.Zones, maxZones},
	}
	for _, f := range counts {
		if f.n < 0 || f.n > f.max {
			return fmt.Errorf("%s: must be between 0 and %d: %d", f.name, f.max, f.n)
		}
	}
	if n := c.Plans * c.Zones; n > maxZonesPerBase {
		return fmt.Errorf("plans, zones: at most %d zones in a base plan: %d", maxZonesPerBase, n)
	}
	rates := []struct {
		name string
		r    float64
	}{
		{"vanish-rate", c.VanishRate},
		{"price-change-rate", c.PriceChangeRate},
		{"time-change-rate", c.TimeChangeRate},
		{"sell-mode-flip-rate", c.SellModeFlipRate},
		{"invalid-date-rate", c.InvalidDateRate},
		{"offline-rate", c.OfflineRate},
		{"error-rate", c.ErrorRate},
		{"malformed-rate", c.MalformedRate},
		{"truncate-rate", c.TruncateRate},
		{"hang-rate", c.HangRate},
	}
	for _, f := range rates {
		if !(f.r >= 0 && f.r <= 1) { // NaN fails too
			return fmt.Errorf("%s: must be between 0 and 1: %v", f.name, f.r)
		}
	}
	if sum := c.ErrorRate + c.MalformedRate + c.TruncateRate + c.HangRate; sum > 1+1e-9 {
		return fmt.Errorf("error-rate, malformed-rate, truncate-rate, hang-rate: must add up to at most 1: %v", sum)
	}
	return nil
}

func (c Config) format() string {
	if c.Format == "" {
		return provider.FormatPlanList
	}
	return c.Format
}

func (c Config) mode() Mode {
	if c.Mode == "" {
		return Rotate
	}
	return c.Mode
}
