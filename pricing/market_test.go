package pricing_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"boxoffice/pricing"
)

func TestFold(t *testing.T) {
	bp := func(v pricing.BasisPoints) *pricing.BasisPoints { return &v }
	stored := map[string]pricing.Market{
		pricing.GlobalLocation: {Location: pricing.GlobalLocation, Multiplier: 12000, Demand: 500},
		"madrid":               {Location: "madrid", Multiplier: 9000, Demand: 100},
	}
	events := []pricing.MarketEvent{
		{ID: 1, Location: "bilbao", Demand: bp(200)},                      // new: from Neutral, not the global market
		{ID: 2, Location: "madrid", Multiplier: bp(15000)},                // nil demand keeps 100
		{ID: 3, Location: pricing.GlobalLocation, Demand: bp(-500)},       //
		{ID: 4, Location: "bilbao", Multiplier: bp(11000), Demand: bp(0)}, // again: absolute values
		{ID: 5, Location: "vigo"},                                         // sets nothing, still a market
	}
	got := pricing.Fold(stored, events)
	want := []pricing.Market{
		{Location: "bilbao", Multiplier: 11000, Demand: 0},
		{Location: "madrid", Multiplier: 15000, Demand: 100},
		{Location: pricing.GlobalLocation, Multiplier: 12000, Demand: -500},
		pricing.Neutral("vigo"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Fold changed markets mismatch (-want +got):\n%s", diff)
	}
	for _, m := range want {
		if stored[m.Location] != m {
			t.Errorf("Fold left markets[%q] = %+v, want %+v", m.Location, stored[m.Location], m)
		}
	}
	if got := pricing.MarketOf(stored, "lugo"); got != pricing.Neutral("lugo") {
		t.Errorf("MarketOf(unknown) = %+v, want Neutral", got)
	}
	if got := pricing.Fold(stored, nil); len(got) != 0 {
		t.Errorf("Fold(no events) = %+v, want none", got)
	}
}
