package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// jsonPlan returns a plan with every field set, titled title.
func jsonPlan(title string) Plan {
	start := time.Date(2021, 7, 31, 20, 0, 0, 0, time.UTC)
	return Plan{ID: NewID("fever", "291", "1642"), Provider: "fever", BasePlanID: "291", PlanID: "1642",
		Title: title, OrganizerCompanyID: "1", SellMode: Online, StartsAt: start, EndsAt: start.Add(time.Hour),
		SellFrom: start.AddDate(0, -1, 0), SellTo: start.Add(-10 * time.Minute), SoldOut: true,
		Zones: []Zone{
			{ZoneID: "40", Name: "Platea", Capacity: 243, Price: 2000, Numbered: true},
			{ZoneID: "38", Name: "Gradas", Capacity: 0, Price: 1550},
		},
		Revision: 1_700_000_000_123_456_789, EverOnline: true, Version: 42}
}

// TestAppendJSON checks that AppendJSON writes what encoding/json writes for a Plan,
// byte for byte when no string needs encoding/json's extra escapes, and that
// encoding/json decodes it back to the plan in every case.
func TestAppendJSON(t *testing.T) {
	plans := map[string]Plan{"every field": jsonPlan("Los Morancos")}
	p := jsonPlan("Los Morancos")
	p.OrganizerCompanyID, p.EverOnline, p.Version, p.Zones = "", false, 0, nil
	plans["omitted fields, nil zones"] = p
	p = jsonPlan("Los Morancos")
	p.Zones = []Zone{}
	plans["no zones"] = p
	p = jsonPlan("Los Morancos")
	p.StartsAt = p.StartsAt.Add(123456789 * time.Nanosecond).In(time.FixedZone("CEST", 2*3600))
	p.Zones[0].Price = -5
	plans["nanoseconds, an offset, a negative price"] = p
	for name, title := range map[string]string{
		"quotes and backslashes": `say "hi" \ bye`,
		"control characters":     "a\nb\rc\td\x00e\x1ff\x7f",
		"html characters":        "<b>Tom & Jerry</b>",
		"unicode":                "Café ♫ 日本 \u2028\u2029",
		"invalid UTF-8":          "bad \xff\xfe byte",
	} {
		p := jsonPlan(title)
		p.Zones[1].Name = title
		plans[name] = p
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", "0", " ", `"`, `\`, "/", "\n", "\x01", "<", "&", "é", "♫", "\u2028", "\xff", "\xc3"}
	for i := range 200 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		p := jsonPlan(b.String())
		p.PlanID = strings.Repeat(b.String(), i%3)
		plans["random "+b.String()] = p
	}
	for name, p := range plans {
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatalf("%s: AppendJSON: %v", name, err)
		}
		if !bytes.HasPrefix(got, []byte("prefix")) {
			t.Fatalf("%s: AppendJSON lost what it appended to: %q", name, got)
		}
		got = got[len("prefix"):]
		// encoding/json also escapes '<', '>', '&', U+2028 and U+2029, which JSON allows raw.
		plain := true
		for _, esc := range []string{`\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`} {
			plain = plain && !strings.Contains(string(want), esc)
		}
		if plain && !bytes.Equal(got, want) {
			t.Errorf("%s:\nAppendJSON    %s\nencoding/json %s", name, got, want)
		}
		var fromGot, fromWant Plan
		if err := json.Unmarshal(got, &fromGot); err != nil {
			t.Fatalf("%s: %s does not decode: %v", name, got, err)
		}
		if err := json.Unmarshal(want, &fromWant); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(fromWant, fromGot); diff != "" {
			t.Errorf("%s: decoded (-encoding/json +AppendJSON):\n%s", name, diff)
		}
	}
}

func TestAppendJSONYearOutOfRange(t *testing.T) {
	p := jsonPlan("Far future")
	p.EndsAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := json.Marshal(p); err == nil {
		t.Fatal("encoding/json encodes the year 10000; AppendJSON's check is out of step with it")
	}
	if _, err := p.AppendJSON(nil); err == nil || !strings.Contains(err.Error(), "ends_at") {
		t.Errorf("AppendJSON of a plan ending in the year 10000 = %v, want an error naming ends_at", err)
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	p := jsonPlan("Los Morancos & amigos")
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = p.AppendJSON(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// writePlans returns the JSON array of plans that AppendJSON writes.
func writePlans(t testing.TB, plans []Plan) []byte {
	t.Helper()
	written := []byte{'['}
	for i := range plans {
		if i > 0 {
			written = append(written, ',')
		}
		var err error
		if written, err = plans[i].AppendJSON(written); err != nil {
			t.Fatal(err)
		}
	}
	return append(written, ']')
}

// TestDecodePlansJSON checks that DecodePlansJSON returns what encoding/json decodes,
// or fails where it fails, on the form AppendJSON writes and on what it does not write,
// and that its fast path, sequential or in halves, reads AppendJSON's form.
func TestDecodePlansJSON(t *testing.T) {
	plans := []Plan{jsonPlan(`Orquesta "La Única" \ acústico`), jsonPlan("Café ♫ 日本\n")}
	plans[1].OrganizerCompanyID, plans[1].EverOnline, plans[1].Version, plans[1].Zones = "", false, 0, nil
	written := writePlans(t, plans)
	for _, parallelMin := range []int{math.MaxInt, 0} {
		if got, ok := decodePlansFast(written, parallelMin); !ok {
			t.Errorf("the fast path (parallelMin %d) refuses AppendJSON's form: %s", parallelMin, written)
		} else if diff := cmp.Diff(plans, got); diff != "" {
			t.Errorf("fast path (parallelMin %d) (-want +got):\n%s", parallelMin, diff)
		}
	}
	if got, ok := decodeHalves(written[1:]); !ok { // its cut is after the first, longer plan
		t.Errorf("decodeHalves refuses AppendJSON's form: %s", written[1:])
	} else if diff := cmp.Diff(plans, got); diff != "" {
		t.Errorf("decodeHalves (-want +got):\n%s", diff)
	}
	one := string(written[1 : len(written)-1])
	one = one[:strings.Index(one, `},{"id"`)+1]
	tests := []struct {
		name string
		give string
	}{
		{"written", string(written)},
		{"spaced and reordered", `[ { "title" : "x", "id":"` + plans[0].ID.String() + `" , "zones" : [ {"price": 2.5, "numbered": false, "name": "a", "capacity": 3, "zone_id": "z"} ] } ]`},
		{"empty", `[]`},
		{"null", `null`},
		{"empty object", `[{}]`},
		{"no zones", `[{"zones":[]}]`},
		{"null zones", `[{"zones":null}]`},
		{"escaped string", `[{"title":"a\"b\u00e9\ud83d\ude00\ud800"}]`},
		{"bad escape", `[{"title":"a\qb"}]`},
		{"control character", "[{\"title\":\"a\tb\"}]"},
		{"unknown key", `[{"title":"a","extra":[1,{"b":null}]}]`},
		{"key of another case", `[{"Title":"a"}]`},
		{"duplicate key", `[{"title":"a","title":"b"}]`},
		{"null string", `[{"title":null}]`},
		{"null element", `[null]`},
		{"leading zero", `[{"revision":012}]`},
		{"fraction in an integer", `[{"revision":1.5}]`},
		{"exponent in an integer", `[{"revision":1e3}]`},
		{"int64 overflow", `[{"revision":9223372036854775808}]`},
		{"price with an exponent", `[{"zones":[{"zone_id":"a","name":"b","capacity":1,"price":2e1,"numbered":true}]}]`},
		{"price with three decimals", `[{"zones":[{"zone_id":"a","name":"b","capacity":1,"price":2.001,"numbered":true}]}]`},
		{"zone missing a key", `[{"zones":[{"zone_id":"a","name":"b","capacity":1,"price":2}]}]`},
		{"bad id", `[{"id":"not-a-uuid"}]`},
		{"bad time", `[{"starts_at":"2021-07-31 20:00:00"}]`},
		{"time with an offset", `[{"starts_at":"2021-07-31T20:00:00.5+02:00"}]`},
		{"invalid UTF-8", "[{\"title\":\"a\xffb\"}]"},
		{"trailing comma", `[{"title":"a"},]`},
		{"trailing data", `[{"title":"a"}] x`},
		{"two values", one + one},
		{"not an array", one},
		{"truncated", string(written[:len(written)/2])},
	}
	for _, tt := range tests {
		var want []Plan
		wantErr := json.Unmarshal([]byte(tt.give), &want)
		got, err := DecodePlansJSON([]byte(tt.give))
		if (err != nil) != (wantErr != nil) {
			t.Errorf("%s: DecodePlansJSON(%s) error %v, want %v", tt.name, tt.give, err, wantErr)
			continue
		}
		if wantErr != nil {
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: DecodePlansJSON(%s) (-encoding/json +got):\n%s", tt.name, tt.give, diff)
		}
		if halves, ok := decodePlansFast([]byte(tt.give), 0); ok {
			if diff := cmp.Diff(want, halves); diff != "" {
				t.Errorf("%s: decodePlansFast(%s) in halves (-encoding/json +got):\n%s", tt.name, tt.give, diff)
			}
		}
		if (want == nil) != (got == nil) {
			t.Errorf("%s: DecodePlansJSON(%s) nil %t, encoding/json nil %t", tt.name, tt.give, got == nil, want == nil)
		}
		for i := range want {
			if (want[i].Zones == nil) != (got[i].Zones == nil) {
				t.Errorf("%s: plan %d: zones nil %t, encoding/json's nil %t", tt.name, i, got[i].Zones == nil, want[i].Zones == nil)
			}
		}
	}
}

// FuzzDecodePlansJSON checks that whatever the fast path of DecodePlansJSON accepts,
// sequential or in halves, encoding/json decodes to the same plans.
func FuzzDecodePlansJSON(f *testing.F) {
	p := jsonPlan("Los Morancos")
	b, err := p.AppendJSON([]byte("["))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(append(b, ']')))
	short := jsonPlan("a")
	short.Zones = nil
	f.Add(string(writePlans(f, []Plan{p, short, p}))) // decodeHalves cuts it
	f.Add(`[{"revision":-0,"version":10,"sold_out":false,"zones":[]}]`)
	f.Add(`[{"title":"a\"b\u00e9\ud800","provider":"\\"}]`)
	f.Add(`[{"zones":[{"zone_id":"a","name":"b","capacity":1,"price":-2.5,"numbered":true}]}]`)
	f.Add(`[{"id":"` + p.ID.String() + `","zones":[]},{"id":"` + p.ID.String() + `","title":"},{\"id\":\""}]`)
	f.Fuzz(func(t *testing.T, s string) {
		var want []Plan
		wantErr := json.Unmarshal([]byte(s), &want)
		check := func(path string, got []Plan) {
			t.Helper()
			if wantErr != nil {
				t.Fatalf("%s accepts %q, encoding/json refuses it: %v", path, s, wantErr)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s(%q) (-encoding/json +fast):\n%s", path, s, diff)
			}
		}
		for _, parallelMin := range []int{math.MaxInt, 0} {
			if got, ok := decodePlansFast([]byte(s), parallelMin); ok {
				check(fmt.Sprintf("decodePlansFast(parallelMin %d)", parallelMin), got)
			}
		}
		if d := (zoneDecoder{b: []byte(s)}); d.lit('[') {
			if got, ok := decodeHalves(d.b); ok {
				check("decodeHalves", got)
			}
		}
	})
}

// TestDecodePlansJSONHalves checks that a batch decoded in halves is decoded as
// encoding/json decodes it, and refused where encoding/json refuses it, whichever half
// holds the fault.
func TestDecodePlansJSONHalves(t *testing.T) {
	plans := make([]Plan, 2000)
	for i := range plans {
		plans[i] = jsonPlan(fmt.Sprintf("Los Morancos %d, \"en directo\" }},{", i%7))
		plans[i].PlanID = strconv.Itoa(i)
		plans[i].Zones[0].Name = fmt.Sprintf("Platea %d", i%3)
		if i%5 == 0 {
			plans[i].Zones = plans[i].Zones[:i%2]
		}
	}
	written := writePlans(t, plans)
	if len(written) < parallelMin {
		t.Fatalf("the batch takes %d bytes, fewer than parallelMin %d", len(written), parallelMin)
	}
	if got, ok := decodeHalves(written[1:]); !ok {
		t.Error("decodeHalves refuses AppendJSON's form")
	} else if diff := cmp.Diff(plans, got); diff != "" {
		t.Errorf("decodeHalves (-want +got):\n%s", diff)
	}
	got, err := DecodePlansJSON(written)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(plans, got); diff != "" {
		t.Errorf("DecodePlansJSON (-want +got):\n%s", diff)
	}
	for _, at := range []float64{0.1, 0.5, 0.9} {
		i := int(at * float64(len(written)))
		i += bytes.Index(written[i:], []byte(`"capacity":`)) + len(`"capacity":`)
		bad := slices.Concat(written[:i], []byte("x"), written[i:])
		wantErr := json.Unmarshal(bad, new([]Plan))
		if wantErr == nil {
			t.Fatalf("encoding/json accepts %s", bad[i-20:i+20])
		}
		if _, err := DecodePlansJSON(bad); err == nil || err.Error() != wantErr.Error() {
			t.Errorf("DecodePlansJSON with a fault at %.0f%% = %v, want %v", 100*at, err, wantErr)
		}
	}
}

// TestDecodePlansJSONZonesApart checks that the zones of plans decoded together, which
// share their allocations, stay apart: appending to one plan's zones changes no other's.
func TestDecodePlansJSONZonesApart(t *testing.T) {
	plans := []Plan{jsonPlan("a"), jsonPlan("b"), jsonPlan("c")}
	got, err := DecodePlansJSON(writePlans(t, plans))
	if err != nil {
		t.Fatal(err)
	}
	_ = append(got[0].Zones, Zone{ZoneID: "added"})
	_ = append(got[1].Zones, Zone{ZoneID: "added"})
	if diff := cmp.Diff(plans, got); diff != "" {
		t.Errorf("after appending to the zones of the first two plans (-want +got):\n%s", diff)
	}
}

func BenchmarkDecodePlansJSON(b *testing.B) {
	p := jsonPlan("Los Morancos & amigos")
	body := []byte{'['}
	for i := range 5000 {
		if i > 0 {
			body = append(body, ',')
		}
		var err error
		if body, err = p.AppendJSON(body); err != nil {
			b.Fatal(err)
		}
	}
	body = append(body, ']')
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodePlansJSON(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var plans []Plan
			if err := json.Unmarshal(body, &plans); err != nil {
				b.Fatal(err)
			}
		}
	})
}
