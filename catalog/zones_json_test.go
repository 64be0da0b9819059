package catalog

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeZones(t *testing.T) {
	platea := Zone{ZoneID: "1", Name: "Platea", Capacity: 100, Price: 2000, Numbered: true}
	tests := []struct {
		name string
		give string
		want []Zone
	}{
		{name: "none", give: `[]`},
		{name: "none, spaced", give: ` [ ] `},
		{name: "as written", give: `[{"zone_id":"1","name":"Platea","capacity":100,"price_cents":2000,"numbered":true}]`,
			want: []Zone{platea}},
		{name: "as jsonb returns it", give: `[{"name": "Platea", "zone_id": "1", "capacity": 100, "numbered": true, "price_cents": 2000}]`,
			want: []Zone{platea}},
		{name: "order and duplicates kept",
			give: `[{"name": "B", "zone_id": "2", "capacity": 0, "numbered": false, "price_cents": 0}, ` +
				`{"name": "Platea", "zone_id": "1", "capacity": 100, "numbered": true, "price_cents": 2000}, ` +
				`{"name": "Platea", "zone_id": "1", "capacity": 100, "numbered": true, "price_cents": 2000}]`,
			want: []Zone{{ZoneID: "2", Name: "B"}, platea, platea}},
		{name: "extremes", give: `[{"name": "", "zone_id": "", "capacity": 9223372036854775807, "numbered": false, "price_cents": -9223372036854775808}]`,
			want: []Zone{{Capacity: math.MaxInt64, Price: math.MinInt64}}},
		{name: "escapes, by encoding/json", give: `[{"name": "Grada \"Norte\"\n\\ sur \u00f1", "zone_id": "7", "capacity": 3, "numbered": false, "price_cents": 1}]`,
			want: []Zone{{ZoneID: "7", Name: "Grada \"Norte\"\n\\ sur ñ", Capacity: 3, Price: 1}}},
		{name: "non-ASCII", give: `[{"name": "日本 Ñandú", "zone_id": "ñ", "capacity": 1, "numbered": true, "price_cents": 5}]`,
			want: []Zone{{ZoneID: "ñ", Name: "日本 Ñandú", Capacity: 1, Price: 5, Numbered: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeZonesJSON([]byte(tt.give))
			if err != nil {
				t.Fatalf("DecodeZonesJSON(%s): %v", tt.give, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodeZonesJSON(%s) mismatch (-want +got):\n%s", tt.give, diff)
			}
		})
	}
}

func TestDecodeZonesErrors(t *testing.T) {
	tests := []string{
		``,
		`{}`,
		`[{"name": "x", "zone_id": "1", "capacity": 1.5, "numbered": true, "price_cents": 1}]`,
		`[{"name": "x", "zone_id": "1", "capacity": 1, "numbered": true, "price_cents": 99999999999999999999}]`,
		`[{"name": "x"`,
		`[1]`,
	}
	for _, give := range tests {
		if got, err := DecodeZonesJSON([]byte(give)); err == nil {
			t.Errorf("DecodeZonesJSON(%s) = %v, nil; want an error", give, got)
		}
	}
}

func TestZonesRoundTrip(t *testing.T) {
	tests := [][]Zone{
		nil,
		{{ZoneID: "1", Name: "Platea", Capacity: 100, Price: 2000, Numbered: true}},
		{{ZoneID: "a\tb", Name: "\"quoted\" \\ \x01", Capacity: 1 << 40, Price: 1 << 50}, {}},
	}
	for _, zones := range tests {
		b := AppendZonesJSON(nil, zones)
		got, err := DecodeZonesJSON(b)
		if err != nil {
			t.Fatalf("DecodeZonesJSON(%s): %v", b, err)
		}
		if diff := cmp.Diff(zones, got); diff != "" {
			t.Errorf("DecodeZonesJSON(AppendZonesJSON(%v)) mismatch (-want +got):\n%s", zones, diff)
		}
	}
}
