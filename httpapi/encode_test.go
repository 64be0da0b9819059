package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"boxoffice/catalog"
)

// newPlan returns an online plan of the test provider from start to end (time.DateTime
// layout, provider wall clock) with one zone per price.
func newPlan(t testing.TB, planID, title, start, end string, prices ...string) catalog.Plan {
	t.Helper()
	p := catalog.Plan{
		ID:         catalog.NewID("test", "base", planID),
		Provider:   "test",
		BasePlanID: "base",
		PlanID:     planID,
		Title:      title,
		SellMode:   catalog.Online,
		StartsAt:   mustTime(t, start),
		EndsAt:     mustTime(t, end),
		EverOnline: true,
	}
	for i, s := range prices {
		m, err := catalog.ParseMoney(s)
		if err != nil {
			t.Fatal(err)
		}
		p.Zones = append(p.Zones, catalog.Zone{ZoneID: string(rune('a' + i)), Name: "zone", Capacity: 10, Price: m})
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.DateTime, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestEncodeEvent(t *testing.T) {
	tests := []struct {
		name string
		give catalog.Plan
		want string
	}{
		{
			name: "zones",
			give: newPlan(t, "291", "Camela en concierto", "2021-06-30 21:00:00", "2021-06-30 22:00:00", "15.00", "30", "20.5"),
			want: `{"id":"` + catalog.NewID("test", "base", "291").String() + `","title":"Camela en concierto",` +
				`"start_date":"2021-06-30","start_time":"21:00:00","end_date":"2021-06-30","end_time":"22:00:00",` +
				`"min_price":15.00,"max_price":30.00}`,
		},
		{
			name: "no zones",
			give: newPlan(t, "322", "Pantomima Full", "2021-02-10 20:00:00", "2021-02-11 01:30:05"),
			want: `{"id":"` + catalog.NewID("test", "base", "322").String() + `","title":"Pantomima Full",` +
				`"start_date":"2021-02-10","start_time":"20:00:00","end_date":"2021-02-11","end_time":"01:30:05",` +
				`"min_price":null,"max_price":null}`,
		},
		{
			name: "escaped title, free and cents",
			give: newPlan(t, "1642", "Los \"Morancos\" <&> \u2028", "2021-07-31 20:00:00", "2021-07-31 21:00:00", "0", "0.05"),
			want: `{"id":"` + catalog.NewID("test", "base", "1642").String() + `","title":"Los \"Morancos\" \u003c\u0026\u003e \u2028",` +
				`"start_date":"2021-07-31","start_time":"20:00:00","end_date":"2021-07-31","end_time":"21:00:00",` +
				`"min_price":0.00,"max_price":0.05}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(EncodeEvent(tt.give))
			if got != tt.want {
				t.Errorf("EncodeEvent() = %s\nwant %s", got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("EncodeEvent() = %s, not valid JSON", got)
			}
		})
	}
}

func TestEncodeEventNonUTC(t *testing.T) {
	p := newPlan(t, "1", "x", "2021-06-30 21:00:00", "2021-06-30 22:00:00")
	madrid := time.FixedZone("CEST", 2*60*60)
	p.StartsAt, p.EndsAt = p.StartsAt.In(madrid), p.EndsAt.In(madrid) // the same instants

	var doc map[string]any
	if err := json.Unmarshal(EncodeEvent(p), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["start_time"] != "21:00:00" || doc["end_time"] != "22:00:00" {
		t.Errorf("EncodeEvent() times = %v, %v, want the UTC wall clock 21:00:00, 22:00:00", doc["start_time"], doc["end_time"])
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{"empty", ""},
		{"ascii", "Camela en concierto"},
		{"quotes and backslash", `say "hi" \ bye`},
		{"html", "<script>a && b</script>"},
		{"short escapes", "a\bb\fc\nd\re\tf"},
		{"other controls", "\x00\x01\x1f\x7f"},
		{"unicode", "Café Jazz ♫ 日本 🎭"},
		{"line and paragraph separators", "a\u2028b\u2029c"},
		{"invalid utf-8", "a\xffb\xc3(c\xed\xa0\x80d"},
		{"truncated rune at end", "abc\xe2\x82"},
		{"U+FFFD itself", "\ufffd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(appendString(nil, tt.give))
			want, err := json.Marshal(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("appendString(%q) = %s, want %s", tt.give, got, want)
			}
		})
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "<&>\"\\", "\x00\u2028\xff", "🎭"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString([]byte("prefix"), s)
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "prefix"+string(want) {
			t.Errorf("appendString(%q) = %s, want prefix%s", s, got, want)
		}
	})
}

func BenchmarkEncodeEvent(b *testing.B) {
	p := newPlan(b, "291", "Camela en concierto <en> Madrid", "2021-06-30 21:00:00", "2021-06-30 22:00:00", "15.00", "30.00")
	b.ReportAllocs()
	for b.Loop() {
		EncodeEvent(p)
	}
}

func TestEncodeEventCapacity(t *testing.T) {
	tests := []struct {
		name string
		give catalog.Plan
	}{
		{"zones", newPlan(t, "1", "Camela en concierto", "2021-06-30 21:00:00", "2021-06-30 22:00:00", "15.00", "1234567.5")},
		{"no zones", newPlan(t, "2", "Pantomima Full", "2021-06-30 21:00:00", "2021-06-30 22:00:00")},
		{"non-ASCII", newPlan(t, "3", "Café ♫ 日本", "2021-06-30 21:00:00", "2021-06-30 22:00:00", "1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EncodeEvent(tt.give)
			if len(got) != cap(got) {
				t.Errorf("EncodeEvent() len %d, cap %d, want them equal", len(got), cap(got))
			}
		})
	}
}
