package pricing

import (
	"testing"
	"time"

	"boxoffice/catalog"
)

func TestPrice(t *testing.T) {
	tests := []struct {
		name       string
		base       catalog.Money
		multiplier BasisPoints
		demand     BasisPoints
		discount   BasisPoints
		want       catalog.Money
	}{
		{"provider price", 2000, One, One, 0, 2000},
		{"prime 10%", 2000, One, One, 1000, 1800},
		{"city ×1.25", 2000, 12500, One, 0, 2500},
		{"surge ×1.2 and prime", 7500, One, 12000, 1000, 8100},
		{"rounds half away from zero", 5, 15000, One, 0, 8},        // 7.5 → 8
		{"rounds down below half", 1, 14999, One, 0, 1},            // 1.4999 → 1
		{"rounds once, not per factor", 333, 10050, 10050, 0, 336}, // 336.33, two roundings would give 337
		{"free stays free", 0, 30000, 30000, 0, 0},
		{"large base exact", 90_000_000_000, MaxMultiplier, 30000, 0, 2_700_000_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Factors{Base: tt.base, Multiplier: tt.multiplier, Demand: tt.demand}
			if got, err := f.Price(tt.discount); err != nil || got != tt.want {
				t.Errorf("%+v.Price(%d) = %d, %v; want %d", f, tt.discount, got, err, tt.want)
			}
		})
	}
}

func TestPolicyFactors(t *testing.T) {
	now := time.Date(2021, 6, 1, 12, 0, 0, 0, time.UTC)
	city := Market{Location: "madrid", Multiplier: 11000, Demand: 0}
	tests := []struct {
		name     string
		capacity int64
		soldOut  bool
		starts   time.Duration // from now
		demand   BasisPoints   // the market's
		want     BasisPoints
	}{
		{"plenty, far away", 100, false, 30 * 24 * time.Hour, 0, 10000},
		{"low stock", 10, false, 30 * 24 * time.Hour, 0, 11000},
		{"no capacity left", 0, false, 30 * 24 * time.Hour, 0, 12000},
		{"sold out flag", 100, true, 30 * 24 * time.Hour, 0, 12000},
		{"this week", 100, false, 3 * 24 * time.Hour, 0, 10500},
		{"tomorrow morning", 100, false, 20 * time.Hour, 0, 11000},
		{"already started", 100, false, -time.Hour, 0, 10000},
		{"market surge", 100, false, 30 * 24 * time.Hour, 2500, 12500},
		{"everything, clamped", 0, true, time.Hour, 20000, 30000},
		{"slump, clamped", 100, false, 30 * 24 * time.Hour, -5000, 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := city
			m.Demand = tt.demand
			p := Product{BasePrice: 2000, Capacity: tt.capacity, SoldOut: tt.soldOut, StartsAt: now.Add(tt.starts)}
			got := DefaultPolicy.Factors(p.BasePrice, DefaultPolicy.Surcharge(p, now), m)
			if got.Demand != tt.want || got.Multiplier != 11000 || got.Base != 2000 {
				t.Errorf("Factors() = %+v, want demand %d, multiplier 11000, base 2000", got, tt.want)
			}
		})
	}
}

func TestPriceOutOfRange(t *testing.T) {
	for _, f := range []struct {
		Factors
		discount BasisPoints
	}{
		{Factors{Base: -1, Multiplier: One, Demand: One}, 0},
		{Factors{Base: 1, Multiplier: One, Demand: One}, One + 1},
		{Factors{Base: 1 << 62, Multiplier: MaxMultiplier, Demand: 30000}, 0},
	} {
		if got, err := f.Price(f.discount); err == nil {
			t.Errorf("%+v.Price(%d) = %d, want an error", f.Factors, f.discount, got)
		}
	}
}

func TestMarketValidate(t *testing.T) {
	for _, bad := range []Market{
		{Location: "", Multiplier: One},
		{Location: "x", Multiplier: 0},
		{Location: "x", Multiplier: MaxMultiplier + 1},
		{Location: "x", Multiplier: One, Demand: MinDemand - 1},
		{Location: "x", Multiplier: One, Demand: MaxDemand + 1},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v.Validate() = nil, want an error", bad)
		}
	}
	if err := (Market{Location: "x", Multiplier: One}).Validate(); err != nil {
		t.Errorf("Validate() = %v for a neutral market", err)
	}
}

// The Los Morancos sample sells zone 186 twice; each is its own product, and the IDs do
// not depend on the zones' order.
func TestProducts(t *testing.T) {
	plan := catalog.Plan{ID: catalog.NewID("fever", "1591", "1642"), Zones: []catalog.Zone{
		{ZoneID: "186", Name: "Amfiteatre", Price: 7500, Capacity: 2, Numbered: true},
		{ZoneID: "186", Name: "Amfiteatre", Price: 6500, Capacity: 16},
		{ZoneID: "7", Name: "Pista", Price: 1000},
		{ZoneID: "7", Name: "Pista", Price: 1200},
	}}
	got := Products(plan)
	ids := map[catalog.ID]bool{}
	for _, p := range got {
		ids[p.ID] = true
	}
	if len(got) != 4 || len(ids) != 4 {
		t.Fatalf("Products() = %d products with %d distinct ids, want 4 and 4", len(got), len(ids))
	}
	reordered := plan
	reordered.Zones = []catalog.Zone{plan.Zones[1], plan.Zones[0], plan.Zones[2], plan.Zones[3]}
	again := Products(reordered)
	if again[0].ID != got[1].ID || again[1].ID != got[0].ID {
		t.Errorf("product ids depend on the order of distinct zones")
	}
	if got[0].BasePrice != 7500 || !got[0].Numbered || got[0].PlanID != plan.ID {
		t.Errorf("Products()[0] = %+v", got[0])
	}
}
