package postgres

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"boxoffice/catalog"
	"boxoffice/testenv"
)

// TestJSONBRoundTrip checks that what jsonb makes of the zones storage form (keys
// reordered, spaces added) decodes back to the same zones.
func TestJSONBRoundTrip(t *testing.T) {
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
	if err := conn.QueryRow(t.Context(), `SELECT $1::jsonb`, catalog.AppendZonesJSON(nil, zones)).Scan(&got); err != nil {
		t.Fatal(err)
	}
	decoded, err := catalog.DecodeZonesJSON(got)
	if err != nil {
		t.Fatalf("DecodeZonesJSON(%s) = %v", got, err)
	}
	if diff := cmp.Diff(zones, decoded); diff != "" {
		t.Errorf("DecodeZonesJSON(%s) mismatch (-want +got):\n%s", got, diff)
	}
}
