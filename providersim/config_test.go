package providersim

import (
	"math"
	"testing"
	"time"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v, want nil", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("Config{}.Validate() = %v, want nil", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		give Config
		want string
	}{
		{name: "unknown mode", give: Config{Mode: "random"}, want: `mode: unknown value "random" (want rotate, synthetic or sequence)`},
		{name: "sequence mode without sequence", give: Config{Mode: Sequence}, want: "sequence: must not be empty in sequence mode"},
		{name: "bad sequence", give: Config{Mode: Sequence, Sequence: "1,slo"}, want: `sequence: step 2: unknown step "slo" (want 1, 2, 3, synthetic, malformed, truncated, slow, hang, abort or a status code)`},
		{name: "bad sequence in other mode", give: Config{Sequence: "1,,2"}, want: "sequence: step 2: empty step"},
		{name: "negative latency", give: Config{Latency: -time.Second}, want: "latency: must not be negative: -1s"},
		{name: "negative slow delay", give: Config{SlowDelay: -time.Millisecond}, want: "slow-delay: must not be negative: -1ms"},
		{name: "negative base plans", give: Config{BasePlans: -1}, want: "base-plans: must be between 0 and 100000000: -1"},
		{name: "too many plans", give: Config{Plans: 100_001}, want: "plans: must be between 0 and 100000: 100001"},
		{name: "too many zones", give: Config{Zones: 1001}, want: "zones: must be between 0 and 1000: 1001"},
		{name: "too many zones per base plan", give: Config{Plans: 10_000, Zones: 101}, want: "plans, zones: at most 1000000 zones in a base plan: 1010000"},
		{name: "error rate above 1", give: Config{ErrorRate: 1.5}, want: "error-rate: must be between 0 and 1: 1.5"},
		{name: "negative vanish rate", give: Config{VanishRate: -0.1}, want: "vanish-rate: must be between 0 and 1: -0.1"},
		{name: "NaN price change rate", give: Config{PriceChangeRate: math.NaN()}, want: "price-change-rate: must be between 0 and 1: NaN"},
		{name: "time change rate", give: Config{TimeChangeRate: 2}, want: "time-change-rate: must be between 0 and 1: 2"},
		{name: "sell mode flip rate", give: Config{SellModeFlipRate: 2}, want: "sell-mode-flip-rate: must be between 0 and 1: 2"},
		{name: "invalid date rate", give: Config{InvalidDateRate: 2}, want: "invalid-date-rate: must be between 0 and 1: 2"},
		{name: "offline rate", give: Config{OfflineRate: 2}, want: "offline-rate: must be between 0 and 1: 2"},
		{name: "malformed rate", give: Config{MalformedRate: 2}, want: "malformed-rate: must be between 0 and 1: 2"},
		{name: "truncate rate", give: Config{TruncateRate: 2}, want: "truncate-rate: must be between 0 and 1: 2"},
		{name: "hang rate", give: Config{HangRate: 2}, want: "hang-rate: must be between 0 and 1: 2"},
		{name: "fault rates above 1 together", give: Config{ErrorRate: 0.5, HangRate: 0.7}, want: "error-rate, malformed-rate, truncate-rate, hang-rate: must add up to at most 1: 1.2"},
		{name: "fault rates add up to 1", give: Config{ErrorRate: 0.25, MalformedRate: 0.25, TruncateRate: 0.25, HangRate: 0.25}},
		{name: "everything at the limits", give: Config{Mode: Synthetic, BasePlans: 100_000_000, Plans: 1000, Zones: 1000, VanishRate: 1, PriceChangeRate: 1, TimeChangeRate: 1, SellModeFlipRate: 1, InvalidDateRate: 1, OfflineRate: 1, ErrorRate: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if err := tt.give.Validate(); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewPanicsOnInvalidConfig(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("New(invalid config) did not panic")
		}
	}()
	New(Config{ErrorRate: 2})
}
