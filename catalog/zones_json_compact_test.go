package catalog

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestZonesRoundTripCompact(t *testing.T) {
	tests := []struct {
		name  string
		zones []Zone
		want  string
	}{
		{name: "none", want: `[]`},
		{
			name:  "one",
			zones: []Zone{{ZoneID: "1", Name: "Platea", Capacity: 100, Price: 2000, Numbered: true}},
			want:  `[{"zone_id":"1","name":"Platea","capacity":100,"price_cents":2000,"numbered":true}]`,
		},
		{
			name: "repeated ids in order",
			zones: []Zone{
				{ZoneID: "7", Name: "B", Capacity: 1, Price: 5},
				{ZoneID: "7", Name: "A", Capacity: 2, Price: 4, Numbered: true},
				{ZoneID: "7", Name: "B", Capacity: 1, Price: 5},
			},
			want: `[{"zone_id":"7","name":"B","capacity":1,"price_cents":5,"numbered":false},` +
				`{"zone_id":"7","name":"A","capacity":2,"price_cents":4,"numbered":true},` +
				`{"zone_id":"7","name":"B","capacity":1,"price_cents":5,"numbered":false}]`,
		},
		{
			name:  "extremes",
			zones: []Zone{{Capacity: math.MaxInt64, Price: math.MinInt64}, {Capacity: math.MinInt64, Price: math.MaxInt64}},
			want: `[{"zone_id":"","name":"","capacity":9223372036854775807,"price_cents":-9223372036854775808,"numbered":false},` +
				`{"zone_id":"","name":"","capacity":-9223372036854775808,"price_cents":9223372036854775807,"numbered":false}]`,
		},
		{
			name:  "escapes",
			zones: []Zone{{ZoneID: `a"b\c`, Name: "tab\tnl\ncr\rbell\x07 ñ & <b> \u2028"}},
			want:  `[{"zone_id":"a\"b\\c","name":"tab\tnl\ncr\rbell\u0007 ñ & <b> ` + "\u2028" + `","capacity":0,"price_cents":0,"numbered":false}]`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendZonesJSON(nil, tt.zones)
			if string(b) != tt.want {
				t.Errorf("appendZones = %s, want %s", b, tt.want)
			}
			got, err := DecodeZonesJSON(b)
			if err != nil {
				t.Fatalf("DecodeZonesJSON(%s): %v", b, err)
			}
			if diff := cmp.Diff(tt.zones, got); diff != "" {
				t.Errorf("DecodeZonesJSON(%s) mismatch (-want +got):\n%s", b, diff)
			}
		})
	}
}

func TestDecodeZonesFallback(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []Zone
	}{
		{name: "spaces", give: ` [ { "zone_id" : "1", "name": "A", "capacity": 1, "price_cents": 2, "numbered": true } ] `,
			want: []Zone{{ZoneID: "1", Name: "A", Capacity: 1, Price: 2, Numbered: true}}},
		{name: "other key order", give: `[{"price_cents":2,"zone_id":"1"}]`, want: []Zone{{ZoneID: "1", Price: 2}}},
		{name: "unicode escape", give: `[{"zone_id":"\u00f1","name":"\ud83c\udfad"}]`, want: []Zone{{ZoneID: "ñ", Name: "🎭"}}},
		{name: "empty with spaces", give: `[ ]`},
		{name: "null", give: `null`},
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

func TestDecodeZonesErrorsCompact(t *testing.T) {
	for _, give := range []string{``, `[`, `[{"zone_id":"1"`, `{}`, `[{"capacity":1.5}]`, `[{"capacity":99999999999999999999}]`, `"x"`} {
		if got, err := DecodeZonesJSON([]byte(give)); err == nil {
			t.Errorf("DecodeZonesJSON(%s) = %v, nil; want an error", give, got)
		}
	}
}

// FuzzZones checks that what appendZones writes is valid JSON that encoding/json reads
// the same way, and that decodeZones gives the zones back, invalid UTF-8 replaced.
func FuzzZones(f *testing.F) {
	f.Add("1", "Platea", int64(100), int64(2000), true)
	f.Add(`a"\`, "\x00\xff\u2028", int64(-1), int64(math.MinInt64), false)
	f.Fuzz(func(t *testing.T, id, name string, capacity, price int64, numbered bool) {
		zones := []Zone{
			{ZoneID: id, Name: name, Capacity: capacity, Price: Money(price), Numbered: numbered},
			{ZoneID: name, Name: id, Capacity: price, Price: Money(capacity)},
		}
		b := AppendZonesJSON(nil, zones)
		var viaJSON []storedZone
		if err := json.Unmarshal(b, &viaJSON); err != nil {
			t.Fatalf("appendZones wrote invalid JSON %s: %v", b, err)
		}
		got, err := DecodeZonesJSON(b)
		if err != nil {
			t.Fatalf("DecodeZonesJSON(%s): %v", b, err)
		}
		want := make([]Zone, len(zones))
		for i, z := range zones {
			z.ZoneID, z.Name = validText(z.ZoneID), validText(z.Name) // checked against encoding/json by TestValidText
			want[i] = z
			if v := viaJSON[i]; v.ZoneID != z.ZoneID || v.Name != z.Name || v.Capacity != z.Capacity || v.PriceCents != int64(z.Price) || v.Numbered != z.Numbered {
				t.Errorf("encoding/json reads zone %d of %s as %+v, want %+v", i, b, v, z)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("DecodeZonesJSON(%s) mismatch (-want +got):\n%s", b, diff)
		}
	})
}
