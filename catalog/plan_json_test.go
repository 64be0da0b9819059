package catalog

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
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
