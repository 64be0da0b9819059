package catalog

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

// The expected IDs come from Python's uuid.uuid5 with PlanNamespace, an independent
// implementation of RFC 4122 name-based UUIDs.
func TestNewID(t *testing.T) {
	tests := []struct {
		provider, base, plan string
		want                 string
	}{
		{"fever", "291", "291", "7f108a7e-0291-57cf-9a8b-47036e0f7c3e"},
		{"fever", "322", "1642", "ef1d68f5-16f2-5bb2-85df-c87c8e2c38d1"},
		{"fever", "1591", "1642", "66f78fab-30a8-5458-8516-3e64c6835345"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := NewID(tt.provider, tt.base, tt.plan).String(); got != tt.want {
				t.Errorf("NewID(%q, %q, %q) = %s, want %s", tt.provider, tt.base, tt.plan, got, tt.want)
			}
		})
	}
}

func TestIDRoundTrip(t *testing.T) {
	id := NewID("fever", "291", "291")
	b, err := json.Marshal(id)
	if err != nil {
		t.Fatal(err)
	}
	var got ID
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got != id {
		t.Errorf("round trip of %s = %s", id, got)
	}
	for _, bad := range []string{"", "7f108a7e02915", "7f108a7e-0291-57cf-9a8b-47036e0f7c3g", "7f108a7e+0291-57cf-9a8b-47036e0f7c3e"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) succeeded, want an error", bad)
		}
	}
}

func TestParseMoney(t *testing.T) {
	tests := []struct {
		give string
		want Money
	}{
		{"20.00", 2000},
		{"20", 2000},
		{"20.5", 2050},
		{"0.05", 5},
		{"-1.25", -125},
		{"0", 0},
		{"92233720368547", 9223372036854700},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := ParseMoney(tt.give)
			if err != nil || got != tt.want {
				t.Errorf("ParseMoney(%q) = %d, %v, want %d", tt.give, got, err, tt.want)
			}
		})
	}
}

func TestParseMoneyRejects(t *testing.T) {
	for _, give := range []string{"", "abc", "20.", ".5", "20.001", "1e3", "+5", "20,00", " 20", "NaN", "--1", "99999999999999999999"} {
		if got, err := ParseMoney(give); err == nil {
			t.Errorf("ParseMoney(%q) = %d, want an error", give, got)
		}
	}
}

func TestMoneyString(t *testing.T) {
	tests := []struct {
		give Money
		want string
	}{
		{2000, "20.00"},
		{5, "0.05"},
		{-125, "-1.25"},
		{0, "0.00"},
		{math.MinInt64, "-92233720368547758.08"},
	}
	for _, tt := range tests {
		if got := tt.give.String(); got != tt.want {
			t.Errorf("Money(%d).String() = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	start := time.Date(2021, 6, 30, 21, 0, 0, 0, time.UTC)
	ok := Plan{Provider: "fever", BasePlanID: "1", PlanID: "2", SellMode: Online, StartsAt: start, EndsAt: start}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate() = %v for a plan ending when it starts", err)
	}
	bad := map[string]Plan{}
	p := ok
	p.EndsAt = start.Add(-time.Second)
	bad["end before start"] = p
	p = ok
	p.PlanID = ""
	bad["no plan id"] = p
	p = ok
	p.SellMode = "sometimes"
	bad["unknown sell mode"] = p
	p = ok
	p.Zones = []Zone{{Price: -1}}
	bad["negative price"] = p
	for name, p := range bad {
		if err := p.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil, want an error", name)
		}
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewID("fever", "1591", "1642")
	}
}
