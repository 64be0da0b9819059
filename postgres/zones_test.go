package postgres

import (
	"context"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"boxoffice/catalog"
	"boxoffice/testenv"
)

func TestDecodeZones(t *testing.T) {
	platea := catalog.Zone{ZoneID: "1", Name: "Platea", Capacity: 100, Price: 2000, Numbered: true}
	tests := []struct {
		name string
		give string
		want []catalog.Zone
	}{
		{name: "none", give: `[]`},
		{name: "none, spaced", give: ` [ ] `},
		{name: "as written", give: `[{"zone_id":"1","name":"Platea","capacity":100,"price_cents":2000,"numbered":true}]`,
			want: []catalog.Zone{platea}},
		{name: "as jsonb returns it", give: `[{"name": "Platea", "zone_id": "1", "capacity": 100, "numbered": true, "price_cents": 2000}]`,
			want: []catalog.Zone{platea}},
		{name: "order and duplicates kept",
			give: `[{"name": "B", "zone_id": "2", "capacity": 0, "numbered": false, "price_cents": 0}, ` +
				`{"name": "Platea", "zone_id": "1", "capacity": 100, "numbered": true, "price_cents": 2000}, ` +
				`{"name": "Platea", "zone_id": "1", "capacity": 100, "numbered": true, "price_cents": 2000}]`,
			want: []catalog.Zone{{ZoneID: "2", Name: "B"}, platea, platea}},
		{name: "extremes", give: `[{"name": "", "zone_id": "", "capacity": 9223372036854775807, "numbered": false, "price_cents": -9223372036854775808}]`,
			want: []catalog.Zone{{Capacity: math.MaxInt64, Price: math.MinInt64}}},
		{name: "escapes, by encoding/json", give: `[{"name": "Grada \"Norte\"\n\\ sur \u00f1", "zone_id": "7", "capacity": 3, "numbered": false, "price_cents": 1}]`,
			want: []catalog.Zone{{ZoneID: "7", Name: "Grada \"Norte\"\n\\ sur ñ", Capacity: 3, Price: 1}}},
		{name: "non-ASCII", give: `[{"name": "日本 Ñandú", "zone_id": "ñ", "capacity": 1, "numbered": true, "price_cents": 5}]`,
			want: []catalog.Zone{{ZoneID: "ñ", Name: "日本 Ñandú", Capacity: 1, Price: 5, Numbered: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeZones([]byte(tt.give))
			if err != nil {
				t.Fatalf("decodeZones(%s): %v", tt.give, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decodeZones(%s) mismatch (-want +got):\n%s", tt.give, diff)
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
		if got, err := decodeZones([]byte(give)); err == nil {
			t.Errorf("decodeZones(%s) = %v, nil; want an error", give, got)
		}
	}
}

func TestZonesRoundTrip(t *testing.T) {
	tests := [][]catalog.Zone{
		nil,
		{{ZoneID: "1", Name: "Platea", Capacity: 100, Price: 2000, Numbered: true}},
		{{ZoneID: "a\tb", Name: "\"quoted\" \\ \x01", Capacity: 1 << 40, Price: 1 << 50}, {}},
	}
	for _, zones := range tests {
		b := appendZones(nil, zones)
		got, err := decodeZones(b)
		if err != nil {
			t.Fatalf("decodeZones(%s): %v", b, err)
		}
		if diff := cmp.Diff(zones, got); diff != "" {
			t.Errorf("decodeZones(appendZones(%v)) mismatch (-want +got):\n%s", zones, diff)
		}
	}
}

// TestJSONBTakesFastPath checks that what jsonb makes of appendZones's output, as the
// server returns it, decodes without encoding/json.
func TestJSONBTakesFastPath(t *testing.T) {
	conn, err := pgx.Connect(t.Context(), testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	zones := []catalog.Zone{
		{ZoneID: "1", Name: "Platea", Capacity: 100, Price: 2000, Numbered: true},
		{ZoneID: "1", Name: "Platea (sin numerar)", Capacity: 0, Price: 1999},
		{ZoneID: "日本", Name: "Ñandú", Capacity: 1 << 40, Price: 1 << 50},
	}
	var got []byte
	if err := conn.QueryRow(t.Context(), `SELECT $1::jsonb`, appendZones(nil, zones)).Scan(&got); err != nil {
		t.Fatal(err)
	}
	decoded, ok := decodeZonesFast(got)
	if !ok {
		t.Fatalf("decodeZonesFast(%s) not ok, want the fast path", got)
	}
	if diff := cmp.Diff(zones, decoded); diff != "" {
		t.Errorf("decodeZonesFast(%s) mismatch (-want +got):\n%s", got, diff)
	}
}
