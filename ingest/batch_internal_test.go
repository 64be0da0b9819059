package ingest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"boxoffice/catalog"
)

// TestDecodeBatchFast checks that decodeBatchFast decodes what encoding/json decodes
// from the bodies it accepts, accepts the body a sync publishes, and leaves to
// encoding/json those whose plans are not its last key.
func TestDecodeBatchFast(t *testing.T) {
	start := time.Date(2021, 7, 31, 20, 0, 0, 0, time.UTC)
	p := catalog.Plan{ID: catalog.NewID("fever", "291", "1642"), Provider: "fever", BasePlanID: "291", PlanID: "1642",
		Title: "Los Morancos", SellMode: catalog.Online, StartsAt: start, EndsAt: start.Add(time.Hour),
		SellFrom: start.AddDate(0, -1, 0), SellTo: start, Zones: []catalog.Zone{{ZoneID: "1", Name: "Platea", Capacity: 3, Price: 2050}},
		Revision: 7}
	enc, err := p.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	plans := "[" + string(enc) + "," + string(enc) + "]"
	sp := &spool{sync: syncHeader{provider: "fever", syncID: "s1", revision: 7}, batches: 2}
	published, err := sp.body(1, Validators{ETag: `"x,\"plans\":[1]"`}, []byte(plans))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give string
		fast bool // decodeBatchFast accepts it
	}{
		{"published", string(published), true},
		{"spaced", `{"schema":1 , "seq":2,"plans":[` + string(enc) + "] } \n", true},
		{"plans null before", `{"schema":1,"plans":null,"plans":` + plans + `}`, true},
		{"plans not last", `{"schema":1,"plans":` + plans + `,"seq":1}`, false},
		{"plans nested first", `{"validators":{"etag":"a","plans":[1]},"plans":` + plans + `}`, false},
		{"plans twice", `{"schema":1,"plans":[],"plans":` + plans + `}`, false},
		{"plans of another case before", `{"schema":1,"Plans":` + plans + `,"plans":[]}`, false},
		{"trailing data", `{"schema":1,"plans":` + plans + `}x`, false},
		{"no plans", `{"schema":1}`, false},
		{"plans escaped", `{"schema":1,"plans":[{"title":"a\u0041"}]}`, true},
	}
	for _, tt := range tests {
		var want Batch
		wantErr := json.Unmarshal([]byte(tt.give), &want)
		got, ok := decodeBatchFast([]byte(tt.give))
		if ok != tt.fast {
			t.Errorf("%s: decodeBatchFast(%s) ok = %t, want %t", tt.name, tt.give, ok, tt.fast)
		}
		if !ok {
			continue
		}
		if wantErr != nil {
			t.Errorf("%s: decodeBatchFast accepts %s, encoding/json refuses it: %v", tt.name, tt.give, wantErr)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: decodeBatchFast(%s) (-encoding/json +got):\n%s", tt.name, tt.give, diff)
		}
		if strings.Contains(tt.name, "published") && len(got.Plans) != 2 {
			t.Errorf("published body decoded %d plans, want 2", len(got.Plans))
		}
	}
}
