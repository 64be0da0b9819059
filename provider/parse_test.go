package provider

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"boxoffice/catalog"
	"boxoffice/ingest"
)

const testProvider = "fever"

// fixture returns a file of testdata/.
func fixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// parseAll parses r and returns every emitted plan.
func parseAll(r io.Reader) ([]catalog.Plan, Stats, error) {
	var plans []catalog.Plan
	stats, err := Parse(r, testProvider, func(p catalog.Plan) error {
		plans = append(plans, p)
		return nil
	})
	return plans, stats, err
}

// mustParse parses a document that must parse without error.
func mustParse(t *testing.T, doc string) ([]catalog.Plan, Stats) {
	t.Helper()
	plans, stats, err := parseAll(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return plans, stats
}

// at returns a provider wall-clock time, "2021-06-30 21:00", as UTC.
func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// id parses a plan ID. The IDs in these tests come from Python's uuid.uuid5 with
// catalog.PlanNamespace and "fever/<base_plan_id>/<plan_id>".
func id(s string) catalog.ID {
	id, err := catalog.ParseID(s)
	if err != nil {
		panic(err)
	}
	return id
}

// summary is what the fixture tests check of each plan.
type summary struct {
	ID       string
	Plan     string // base_plan_id/plan_id
	SellMode catalog.SellMode
	Start    string
	End      string
	Min, Max string
	Zones    int
}

func summarize(plans []catalog.Plan) []summary {
	var out []summary
	for _, p := range plans {
		lo, hi, _ := p.PriceRange()
		out = append(out, summary{
			ID:       p.ID.String(),
			Plan:     p.BasePlanID + "/" + p.PlanID,
			SellMode: p.SellMode,
			Start:    p.StartsAt.Format(time.DateTime),
			End:      p.EndsAt.Format(time.DateTime),
			Min:      lo.String(),
			Max:      hi.String(),
			Zones:    len(p.Zones),
		})
	}
	return out
}

const (
	id291  = "7f108a7e-0291-57cf-9a8b-47036e0f7c3e" // 291/291
	id322  = "ef1d68f5-16f2-5bb2-85df-c87c8e2c38d1" // 322/1642
	id1643 = "000ac74f-f74c-5d99-8c5b-b16f96e60bd4" // 322/1643
	id1591 = "66f78fab-30a8-5458-8516-3e64c6835345" // 1591/1642
)

func TestParseFixtures(t *testing.T) {
	const reason444 = `plan 444/1642: %s: parsing time "2021-09-31T20:00:00": day out of range`
	tests := []struct {
		name      string
		give      string
		wantStats Stats
		want      []summary
	}{
		{
			name:      "planlist_1.xml",
			give:      "planlist_1.xml",
			wantStats: Stats{Format: "planList", Parsed: 4},
			want: []summary{
				{id291, "291/291", catalog.Online, "2021-06-30 21:00:00", "2021-06-30 22:00:00", "15.00", "30.00", 3},
				{id322, "322/1642", catalog.Online, "2021-02-10 20:00:00", "2021-02-10 21:30:00", "55.00", "55.00", 1},
				{id1643, "322/1643", catalog.Online, "2021-02-11 20:00:00", "2021-02-11 21:30:00", "55.00", "55.00", 1},
				{id1591, "1591/1642", catalog.Online, "2021-07-31 20:00:00", "2021-07-31 21:00:00", "65.00", "75.00", 2},
			},
		},
		{
			name:      "planlist_2_derived.xml",
			give:      "planlist_2_derived.xml",
			wantStats: Stats{Format: "planList", Parsed: 2, Skipped: 1, SkipReasons: []string{fmt.Sprintf(reason444, "plan_start_date")}},
			want: []summary{
				{id291, "291/291", catalog.Online, "2021-06-30 21:00:00", "2021-06-30 22:00:00", "15.00", "30.00", 3},
				{id1591, "1591/1642", catalog.Online, "2021-07-31 20:00:00", "2021-07-31 21:20:00", "65.00", "75.00", 2},
			},
		},
		{
			name:      "planlist_3_derived.xml",
			give:      "planlist_3_derived.xml",
			wantStats: Stats{Format: "planList", Parsed: 2, Skipped: 1, SkipReasons: []string{fmt.Sprintf(reason444, "plan_start_date")}},
			want: []summary{
				{id291, "291/291", catalog.Online, "2021-06-30 21:00:00", "2021-06-30 21:30:00", "15.00", "30.00", 3},
				{id1591, "1591/1642", catalog.Online, "2021-07-31 20:00:00", "2021-07-31 21:00:00", "65.00", "75.00", 2},
			},
		},
		{
			name:      "eventlist_1.xml",
			give:      "eventlist_1.xml",
			wantStats: Stats{Format: "eventList", Parsed: 3},
			want: []summary{
				{id291, "291/291", catalog.Online, "2021-06-30 21:00:00", "2021-06-30 22:00:00", "15.00", "30.00", 3},
				{id322, "322/1642", catalog.Online, "2021-02-10 20:00:00", "2021-02-10 21:30:00", "55.00", "55.00", 1},
				{id1591, "1591/1642", catalog.Online, "2021-07-31 20:00:00", "2021-07-31 21:00:00", "65.00", "75.00", 2},
			},
		},
		{
			name:      "eventlist_2.xml",
			give:      "eventlist_2.xml",
			wantStats: Stats{Format: "eventList", Parsed: 2, Skipped: 1, SkipReasons: []string{fmt.Sprintf(reason444, "event_start_date")}},
			want: []summary{
				{id291, "291/291", catalog.Online, "2021-06-30 21:00:00", "2021-06-30 22:00:00", "15.00", "30.00", 3},
				{id1591, "1591/1642", catalog.Online, "2021-07-31 20:00:00", "2021-07-31 21:20:00", "65.00", "75.00", 2},
			},
		},
		{
			name:      "eventlist_3.xml",
			give:      "eventlist_3.xml",
			wantStats: Stats{Format: "eventList", Parsed: 2, Skipped: 1, SkipReasons: []string{fmt.Sprintf(reason444, "event_start_date")}},
			want: []summary{
				{id291, "291/291", catalog.Online, "2021-06-30 21:00:00", "2021-06-30 21:30:00", "15.00", "30.00", 3},
				{id1591, "1591/1642", catalog.Online, "2021-07-31 20:00:00", "2021-07-31 21:00:00", "65.00", "75.00", 2},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plans, stats := mustParse(t, fixture(t, tt.give))
			if diff := cmp.Diff(tt.wantStats, stats); diff != "" {
				t.Errorf("Parse(%s) stats (-want +got):\n%s", tt.give, diff)
			}
			if diff := cmp.Diff(tt.want, summarize(plans)); diff != "" {
				t.Errorf("Parse(%s) plans (-want +got):\n%s", tt.give, diff)
			}
		})
	}
}

// TestParsePlans checks every field of response 1: reused plan ids get distinct IDs,
// the duplicate zone 186 is kept twice in document order, organizer_company_id is
// empty when absent, times are UTC wall clock.
func TestParsePlans(t *testing.T) {
	plans, _ := mustParse(t, fixture(t, "planlist_1.xml"))
	pantomima := func(planID string, id catalog.ID, day string, sellTo time.Time) catalog.Plan {
		return catalog.Plan{
			ID: id, Provider: "fever", BasePlanID: "322", PlanID: planID,
			Title: "Pantomima Full", OrganizerCompanyID: "2", SellMode: catalog.Online,
			StartsAt: at(day + " 20:00"), EndsAt: at(day + " 21:30"),
			SellFrom: at("2021-01-01 00:00"), SellTo: sellTo,
			Zones: []catalog.Zone{{ZoneID: "311", Name: "A42", Capacity: 2, Price: 5500, Numbered: true}},
		}
	}
	want := []catalog.Plan{
		{
			ID: id(id291), Provider: "fever", BasePlanID: "291", PlanID: "291",
			Title: "Camela en concierto", SellMode: catalog.Online,
			StartsAt: at("2021-06-30 21:00"), EndsAt: at("2021-06-30 22:00"),
			SellFrom: at("2020-07-01 00:00"), SellTo: at("2021-06-30 20:00"),
			Zones: []catalog.Zone{
				{ZoneID: "40", Name: "Platea", Capacity: 243, Price: 2000, Numbered: true},
				{ZoneID: "38", Name: "Grada 2", Capacity: 100, Price: 1500},
				{ZoneID: "30", Name: "A28", Capacity: 90, Price: 3000, Numbered: true},
			},
		},
		pantomima("1642", id(id322), "2021-02-10", at("2021-02-09 19:50")),
		pantomima("1643", id(id1643), "2021-02-11", at("2021-02-10 19:50")),
		{
			ID: id(id1591), Provider: "fever", BasePlanID: "1591", PlanID: "1642",
			Title: "Los Morancos", OrganizerCompanyID: "1", SellMode: catalog.Online,
			StartsAt: at("2021-07-31 20:00"), EndsAt: at("2021-07-31 21:00"),
			SellFrom: at("2021-06-26 00:00"), SellTo: at("2021-07-31 19:50"),
			Zones: []catalog.Zone{
				{ZoneID: "186", Name: "Amfiteatre", Capacity: 2, Price: 7500, Numbered: true},
				{ZoneID: "186", Name: "Amfiteatre", Capacity: 16, Price: 6500},
			},
		},
	}
	if diff := cmp.Diff(want, plans); diff != "" {
		t.Errorf("Parse(planlist_1.xml) (-want +got):\n%s", diff)
	}
	for _, p := range plans {
		if loc := p.StartsAt.Location(); loc != time.UTC {
			t.Errorf("plan %s/%s starts in %v, want UTC", p.BasePlanID, p.PlanID, loc)
		}
	}
}

// The legacy format gives the same plans as the current one; only the current
// response 1 has 322's second plan, 1643.
func TestParseLegacyMatchesCurrent(t *testing.T) {
	current, _ := mustParse(t, fixture(t, "planlist_1.xml"))
	legacy, _ := mustParse(t, fixture(t, "eventlist_1.xml"))
	var want []catalog.Plan
	for _, p := range current {
		if p.BasePlanID != "322" || p.PlanID != "1643" {
			want = append(want, p)
		}
	}
	if diff := cmp.Diff(want, legacy); diff != "" {
		t.Errorf("eventlist_1.xml differs from planlist_1.xml without 322/1643 (-want +got):\n%s", diff)
	}
}

// The fixtures in a stream of small or uneven reads give the same plans.
func TestParseReads(t *testing.T) {
	doc := fixture(t, "planlist_1.xml")
	want, _ := mustParse(t, doc)
	tests := []struct {
		name string
		give io.Reader
	}{
		{"one byte", iotest.OneByteReader(strings.NewReader(doc))},
		{"half", iotest.HalfReader(strings.NewReader(doc))},
		{"data with EOF", iotest.DataErrReader(strings.NewReader(doc))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := parseAll(tt.give)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

const (
	goodBase  = `base_plan_id="1" sell_mode="online" title="T"`
	goodPlan  = `plan_id="2" plan_start_date="2021-06-30T21:00:00" plan_end_date="2021-06-30T22:00:00"`
	goodZone  = `<zone zone_id="3" capacity="10" price="20.00"/>`
	startDate = `plan_start_date="2021-06-30T21:00:00"`
)

// planList returns a planList document with one base plan holding one plan.
func planList(base, plan, zones string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<planList><output><base_plan ` + base + `><plan ` + plan + `>` + zones + `</plan></base_plan></output></planList>`
}

func TestParseSkips(t *testing.T) {
	long := strings.Repeat("x", maxAttrLen+1)
	tests := []struct {
		name string
		give string
		want string
	}{
		{"impossible start", planList(goodBase, `plan_id="2" plan_start_date="2021-09-31T20:00:00" plan_end_date="2021-06-30T22:00:00"`, goodZone),
			`plan 1/2: plan_start_date: parsing time "2021-09-31T20:00:00": day out of range`},
		{"impossible end", planList(goodBase, startDate+` plan_id="2" plan_end_date="2021-13-01T00:00:00"`, goodZone),
			`plan 1/2: plan_end_date: parsing time "2021-13-01T00:00:00": month out of range`},
		{"end not a time", planList(goodBase, startDate+` plan_id="2" plan_end_date="2021-06-30 22:00:00"`, goodZone),
			`plan 1/2: plan_end_date: parsing time "2021-06-30 22:00:00" as "2006-01-02T15:04:05": cannot parse " 22:00:00" as "T"`},
		{"29 February of a common year", planList(goodBase, `plan_id="2" plan_start_date="2021-02-29T21:00:00" plan_end_date="2021-06-30T22:00:00"`, goodZone),
			`plan 1/2: plan_start_date: parsing time "2021-02-29T21:00:00": day out of range`},
		{"end before start", planList(goodBase, startDate+` plan_id="2" plan_end_date="2021-06-30T20:00:00"`, goodZone),
			`plan 1/2: end 2021-06-30 20:00:00 is before start 2021-06-30 21:00:00`},
		{"bad sell_from", planList(goodBase, goodPlan+` sell_from="2021-09-31T00:00:00"`, goodZone),
			`plan 1/2: sell_from: parsing time "2021-09-31T00:00:00": day out of range`},
		{"bad sell_to", planList(goodBase, goodPlan+` sell_to="tomorrow"`, goodZone),
			`plan 1/2: sell_to: parsing time "tomorrow" as "2006-01-02T15:04:05": cannot parse "tomorrow" as "2006"`},
		{"bad sold_out", planList(goodBase, goodPlan+` sold_out="yes"`, goodZone),
			`plan 1/2: sold_out: not a boolean: "yes"`},
		{"missing plan_id", planList(goodBase, startDate+` plan_end_date="2021-06-30T22:00:00"`, goodZone),
			`plan 1/?: missing plan_id`},
		{"empty plan_id", planList(goodBase, `plan_id="" `+startDate+` plan_end_date="2021-06-30T22:00:00"`, goodZone),
			`plan 1/?: missing plan_id`},
		{"missing start", planList(goodBase, `plan_id="2" plan_end_date="2021-06-30T22:00:00"`, goodZone),
			`plan 1/2: missing plan_start_date`},
		{"missing end", planList(goodBase, `plan_id="2" `+startDate, goodZone),
			`plan 1/2: missing plan_end_date`},
		{"missing base_plan_id", planList(`sell_mode="online" title="T"`, goodPlan, goodZone),
			`plan ?/2: missing base_plan_id`},
		{"missing sell_mode", planList(`base_plan_id="1" title="T"`, goodPlan, goodZone),
			`plan 1/2: missing sell_mode`},
		{"unknown sell_mode", planList(`base_plan_id="1" sell_mode="Online" title="T"`, goodPlan, goodZone),
			`plan 1/2: sell_mode: unknown value "Online"`},
		{"missing title", planList(`base_plan_id="1" sell_mode="online"`, goodPlan, goodZone),
			`plan 1/2: missing title`},
		{"title too long", planList(`base_plan_id="1" sell_mode="online" title="`+long+`"`, goodPlan, goodZone),
			`plan 1/2: title: longer than 4096 bytes`},
		{"plan_id too long", planList(goodBase, `plan_id="`+long+`" `+startDate+` plan_end_date="2021-06-30T22:00:00"`, goodZone),
			`plan 1/?: plan_id: longer than 4096 bytes`},
		{"zone name too long", planList(goodBase, goodPlan, `<zone zone_id="3" capacity="10" price="20.00" name="`+long+`"/>`),
			`plan 1/2: zone 3: name: longer than 4096 bytes`},
		{"price not a number", planList(goodBase, goodPlan, `<zone zone_id="3" capacity="10" price="abc"/>`),
			`plan 1/2: zone 3: price: not a price with at most two decimals: "abc"`},
		{"price with three decimals", planList(goodBase, goodPlan, `<zone zone_id="3" capacity="10" price="20.005"/>`),
			`plan 1/2: zone 3: price: not a price with at most two decimals: "20.005"`},
		{"negative price", planList(goodBase, goodPlan, `<zone zone_id="3" capacity="10" price="-1.00"/>`),
			`plan 1/2: zone 3: price: negative: -1.00`},
		{"capacity not an integer", planList(goodBase, goodPlan, `<zone zone_id="3" capacity="1.5" price="20.00"/>`),
			`plan 1/2: zone 3: capacity: not an integer: "1.5"`},
		{"negative capacity", planList(goodBase, goodPlan, `<zone zone_id="3" capacity="-1" price="20.00"/>`),
			`plan 1/2: zone 3: capacity: negative: -1`},
		{"bad numbered", planList(goodBase, goodPlan, `<zone zone_id="3" capacity="1" price="20.00" numbered="no"/>`),
			`plan 1/2: zone 3: numbered: not a boolean: "no"`},
		{"missing zone_id", planList(goodBase, goodPlan, goodZone+`<zone capacity="1" price="20.00"/>`),
			`plan 1/2: zone #2: missing zone_id`},
		{"missing capacity", planList(goodBase, goodPlan, `<zone zone_id="3" price="20.00"/>`),
			`plan 1/2: zone 3: missing capacity`},
		{"missing price", planList(goodBase, goodPlan, `<zone zone_id="3" capacity="1"/>`),
			`plan 1/2: zone 3: missing price`},
		{"first bad attribute wins", planList(goodBase, `plan_id="2" plan_start_date="x" plan_end_date="y"`, `<zone/>`),
			`plan 1/2: plan_start_date: parsing time "x" as "2006-01-02T15:04:05": cannot parse "x" as "2006"`},
		{"legacy impossible end", `<eventList><output><base_event base_event_id="7" sell_mode="offline" title="T">` +
			`<event event_id="8" event_start_date="2021-09-30T20:00:00" event_end_date="2021-09-31T21:00:00"/></base_event></output></eventList>`,
			`plan 7/8: event_end_date: parsing time "2021-09-31T21:00:00": day out of range`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plans, stats := mustParse(t, tt.give)
			if len(plans) != 0 {
				t.Errorf("Parse emitted %d plans, want none", len(plans))
			}
			want := Stats{Format: stats.Format, Skipped: 1, SkipReasons: []string{tt.want}}
			if diff := cmp.Diff(want, stats); diff != "" {
				t.Errorf("Parse stats (-want +got):\n%s", diff)
			}
		})
	}
}

// A bad base plan skips each of its plans; the next base plan is read as usual.
func TestParseBadBasePlan(t *testing.T) {
	doc := `<planList><output>
		<base_plan base_plan_id="1" sell_mode="sometimes" title="T">
			<plan ` + goodPlan + `/>
			<plan plan_id="3" plan_start_date="2021-06-30T21:00:00" plan_end_date="2021-06-30T22:00:00"/>
		</base_plan>
		<base_plan base_plan_id="9" sell_mode="online" title="T"><plan ` + goodPlan + `/></base_plan>
	</output></planList>`
	plans, stats := mustParse(t, doc)
	want := Stats{Format: "planList", Parsed: 1, Skipped: 2, SkipReasons: []string{
		`plan 1/2: sell_mode: unknown value "sometimes"`,
		`plan 1/3: sell_mode: unknown value "sometimes"`,
	}}
	if diff := cmp.Diff(want, stats); diff != "" {
		t.Errorf("Parse stats (-want +got):\n%s", diff)
	}
	if got := summarize(plans); len(got) != 1 || got[0].Plan != "9/2" {
		t.Errorf("Parse emitted %v, want plan 9/2", got)
	}
}

func TestParseTooManyZones(t *testing.T) {
	zones := strings.Repeat(goodZone, maxZones)
	_, stats := mustParse(t, planList(goodBase, goodPlan, zones))
	if stats.Parsed != 1 {
		t.Errorf("Parse of %d zones: stats %+v, want 1 parsed", maxZones, stats)
	}
	_, stats = mustParse(t, planList(goodBase, goodPlan, zones+goodZone))
	want := Stats{Format: "planList", Skipped: 1, SkipReasons: []string{"plan 1/2: more than 10000 zones"}}
	if diff := cmp.Diff(want, stats); diff != "" {
		t.Errorf("Parse of %d zones: stats (-want +got):\n%s", maxZones+1, diff)
	}
}

func TestParseSkipReasonsCapped(t *testing.T) {
	bad := `<plan plan_id="2" plan_start_date="2021-09-31T21:00:00" plan_end_date="2021-06-30T22:00:00"/>`
	doc := `<planList><output><base_plan ` + goodBase + `>` + strings.Repeat(bad, 50) + `<plan ` + goodPlan + `/></base_plan></output></planList>`
	_, stats := mustParse(t, doc)
	if stats.Parsed != 1 || stats.Skipped != 50 || len(stats.SkipReasons) != maxSkipReasons {
		t.Errorf("Parse: parsed %d, skipped %d, %d reasons; want 1, 50, %d",
			stats.Parsed, stats.Skipped, len(stats.SkipReasons), maxSkipReasons)
	}
}

func TestParseEntities(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{`Camela &amp; amigos`, `Camela & amigos`},
		{`Concierto en M&aacute;laga`, `Concierto en Málaga`},
		{`Caf&#233; &#x263A;`, `Café ☺`},
		{`&quot;Pantomima&quot; &lt;Full&gt; &apos;21`, `"Pantomima" <Full> '21`},
		{`&ntilde;&Ntilde;&euro;&nbsp;.`, "ñÑ€\u00a0."},
		{`Plain UTF-8: Ñandú`, `Plain UTF-8: Ñandú`},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			plans, _ := mustParse(t, planList(`base_plan_id="1" sell_mode="online" title="`+tt.give+`"`, goodPlan,
				`<zone zone_id="3" capacity="1" price="1" name="`+tt.give+`"/>`))
			if len(plans) != 1 {
				t.Fatalf("Parse emitted %d plans, want 1", len(plans))
			}
			if got := plans[0].Title; got != tt.want {
				t.Errorf("title %q = %q, want %q", tt.give, got, tt.want)
			}
			if got := plans[0].Zones[0].Name; got != tt.want {
				t.Errorf("zone name %q = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

// Optional attributes default to zero values, and a plan without zones is valid.
func TestParseOptional(t *testing.T) {
	plans, _ := mustParse(t, planList(goodBase, goodPlan, `<zone zone_id="3" capacity="0" price="7"/>`)+
		"\n"+`<!-- a comment after the root -->`)
	want := []catalog.Plan{{
		ID: catalog.NewID("fever", "1", "2"), Provider: "fever", BasePlanID: "1", PlanID: "2",
		Title: "T", SellMode: catalog.Online, StartsAt: at("2021-06-30 21:00"), EndsAt: at("2021-06-30 22:00"),
		Zones: []catalog.Zone{{ZoneID: "3", Capacity: 0, Price: 700}},
	}}
	if diff := cmp.Diff(want, plans); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}

	plans, _ = mustParse(t, planList(goodBase, goodPlan+` sold_out="1"`, ""))
	if len(plans) != 1 || plans[0].Zones == nil || len(plans[0].Zones) != 0 || !plans[0].SoldOut {
		t.Errorf("Parse of a sold out plan without zones = %+v, want one sold out plan with empty zones", plans)
	}
}

// Unknown elements, with everything inside them, and unknown attributes are ignored.
func TestParseIgnoresUnknown(t *testing.T) {
	doc := `<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE planList>
<planList xmlns="urn:example:plans" xmlns:x="urn:example:x" version="2.0" x:extra="1">
	<meta generated="2026-01-01T00:00:00"><plan plan_id="no"/></meta>
	<output cursor="abc">
		<base_plan ` + goodBase + ` category="music" x:title="ignored">
			<description>Some <b>bold</b> text <![CDATA[<plan plan_id="no"/>]]></description>
			<plan ` + goodPlan + ` currency="EUR" x:plan_id="no">
				<zone zone_id="3" capacity="10" price="20.00" section="north"><seat row="1"/></zone>
				<x:zone zone_id="no" capacity="1" price="1"/>
				<future_zone zone_id="no"/>
			</plan>
			<x:plan plan_id="no"/>
		</base_plan>
		<base_event base_event_id="legacy" sell_mode="online" title="T"><event event_id="no"/></base_event>
		<plan plan_id="orphan"/>
	</output>
	<output><zone zone_id="orphan"/></output>
</planList>`
	plans, stats := mustParse(t, doc)
	if diff := cmp.Diff(Stats{Format: "planList", Parsed: 1}, stats); diff != "" {
		t.Errorf("Parse stats (-want +got):\n%s", diff)
	}
	want := []summary{{catalog.NewID("fever", "1", "2").String(), "1/2", catalog.Online, "2021-06-30 21:00:00", "2021-06-30 22:00:00", "20.00", "20.00", 1}}
	if diff := cmp.Diff(want, summarize(plans)); diff != "" {
		t.Errorf("Parse plans (-want +got):\n%s", diff)
	}
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"empty", ``, `no root element`},
		{"white space", " \n\t", `no root element`},
		{"declaration only", `<?xml version="1.0"?>`, `no root element`},
		{"JSON", `{"data": []}`, `line 1: text outside the root element`},
		{"HTML error page", `<html><body>502 Bad Gateway</body></html>`, `line 1: root element <html> is not <planList> or <eventList>`},
		{"wrong root", "<?xml version=\"1.0\"?>\n<catalog><output/></catalog>", `line 2: root element <catalog> is not <planList> or <eventList>`},
		{"prefixed root", `<p:planList xmlns:p="urn:x"/>`, `line 1: root element <p:planList> is not <planList> or <eventList>`},
		{"plan closed by base_plan", strings.Replace(fixture(t, "planlist_1.xml"), "</plan>", "", 1),
			`line 10: element <plan> closed by </base_plan>`},
		{"unexpected end element", `</planList>`, `line 1: unexpected end element </planList>`},
		{"truncated in an element", `<planList><output><base_plan ` + goodBase + `>`, `line 1: unexpected EOF inside <base_plan>`},
		{"truncated in a tag", `<planList><output><base_plan base_plan_id="1`, `line 1: unexpected EOF`},
		{"second root", `<planList/><planList/>`, `line 1: element <planList> after the root element`},
		{"text after the root", "<planList/>\ntrailing", `line 2: text outside the root element`},
		{"unknown entity", planList(`base_plan_id="1" sell_mode="online" title="&bogus;"`, goodPlan, ""), `line 2: invalid character entity &bogus;`},
		{"bare ampersand", planList(`base_plan_id="1" sell_mode="online" title="A & B"`, goodPlan, ""), `line 2: invalid character entity & (no semicolon)`},
		{"unquoted attribute", `<planList version=1/>`, `line 1: unquoted or missing attribute value in element`},
		{"repeated attribute", planList(goodBase, goodPlan+` plan_id="3"`, ""), `line 2: attribute plan_id repeated in <plan>`},
		{"repeated unknown attribute", `<planList a="1" b="2" a="3"/>`, `line 1: attribute a repeated in <planList>`},
		{"unsupported encoding", `<?xml version="1.0" encoding="ISO-8859-1"?><planList/>`, `line 1: xml: encoding "ISO-8859-1" declared but Decoder.CharsetReader is nil`},
		{"invalid UTF-8", "<planList title=\"\xff\"/>", `line 1: invalid UTF-8`},
		{"nested too deep", `<planList>` + strings.Repeat(`<a>`, maxDepth), `line 1: elements nested more than 64 deep`},
		{"token too long", `<planList>` + strings.Repeat(`x`, maxTokenBytes+1) + `</planList>`, `line 1: token longer than 262144 bytes`},
		{"tag too long", `<planList a="` + strings.Repeat(`x`, maxTokenBytes) + `"/>`, `line 1: token longer than 262144 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseAll(strings.NewReader(tt.give))
			if !errors.Is(err, ingest.ErrMalformed) {
				t.Fatalf("Parse = %v, want ErrMalformed", err)
			}
			if got, want := err.Error(), "malformed provider document: "+tt.want; got != want {
				t.Errorf("Parse = %q, want %q", got, want)
			}
		})
	}
}

// Every cut of a fixture before its root element closes is malformed, wherever it
// falls: a body that ended cleanly but too early is a truncated document.
func TestParseTruncated(t *testing.T) {
	for _, name := range []string{"planlist_1.xml", "eventlist_2.xml"} {
		doc := strings.TrimRight(fixture(t, name), "\n")
		for cut := range len(doc) {
			_, _, err := parseAll(strings.NewReader(doc[:cut]))
			if !errors.Is(err, ingest.ErrMalformed) {
				t.Fatalf("Parse(%s cut at byte %d) = %v, want ErrMalformed", name, cut, err)
			}
		}
	}
}

// A reader that fails is not a malformed document: wherever the failure falls, Parse
// returns the reader's error, not ErrMalformed, so that the syncer retries.
func TestParseReaderError(t *testing.T) {
	doc := fixture(t, "planlist_1.xml")
	for _, readErr := range []error{errors.New("connection reset by peer"), io.ErrUnexpectedEOF} {
		for cut := range len(doc) + 1 {
			r := io.MultiReader(strings.NewReader(doc[:cut]), iotest.ErrReader(readErr))
			_, _, err := parseAll(r)
			if !errors.Is(err, readErr) || errors.Is(err, ingest.ErrMalformed) {
				t.Fatalf("Parse(cut at byte %d, then %q) = %v, want the reader's error, not ErrMalformed", cut, readErr, err)
			}
		}
	}
}

// A reader that keeps returning nothing fails instead of spinning.
func TestParseNoProgress(t *testing.T) {
	_, _, err := parseAll(emptyReader{})
	if !errors.Is(err, io.ErrNoProgress) || errors.Is(err, ingest.ErrMalformed) {
		t.Errorf("Parse(a reader without progress) = %v, want io.ErrNoProgress", err)
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestParseEmitError(t *testing.T) {
	errStop := errors.New("spool full")
	calls := 0
	stats, err := Parse(strings.NewReader(fixture(t, "planlist_1.xml")), testProvider, func(catalog.Plan) error {
		calls++
		if calls == 2 {
			return errStop
		}
		return nil
	})
	if err != errStop {
		t.Errorf("Parse = %v, want emit's error as is", err)
	}
	if calls != 2 || stats.Parsed != 1 {
		t.Errorf("Parse called emit %d times and parsed %d, want 2 and 1", calls, stats.Parsed)
	}
}

// The BOM that some servers put before the declaration is allowed.
func TestParseByteOrderMark(t *testing.T) {
	_, stats := mustParse(t, "\uFEFF"+fixture(t, "planlist_1.xml"))
	if stats.Parsed != 4 {
		t.Errorf("Parse after a BOM parsed %d plans, want 4", stats.Parsed)
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		give    string
		want    time.Time
		wantErr string
	}{
		{give: "2021-06-30T21:00:00", want: time.Date(2021, 6, 30, 21, 0, 0, 0, time.UTC)},
		{give: "2024-02-29T23:59:59", want: time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)},
		{give: "2000-02-29T00:00:00", want: time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC)},
		{give: "2021-06-30T21:00:00.5", want: time.Date(2021, 6, 30, 21, 0, 0, 5e8, time.UTC)},
		{give: "2021-09-31T20:00:00", wantErr: `parsing time "2021-09-31T20:00:00": day out of range`},
		{give: "1900-02-29T00:00:00", wantErr: `parsing time "1900-02-29T00:00:00": day out of range`},
		{give: "2021-00-10T00:00:00", wantErr: `parsing time "2021-00-10T00:00:00": month out of range`},
		{give: "2021-06-30T24:00:00", wantErr: `parsing time "2021-06-30T24:00:00": hour out of range`},
		{give: "2021-06-30T21:00:00Z", wantErr: `parsing time "2021-06-30T21:00:00Z": extra text: "Z"`},
		{give: "2021-06-3xT21:00:00", wantErr: `parsing time "2021-06-3xT21:00:00" as "2006-01-02T15:04:05": cannot parse "3xT21:00:00" as "02"`},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := parseTime(tt.give)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if !got.Equal(tt.want) || got.Location() != time.UTC || gotErr != tt.wantErr {
				t.Errorf("parseTime(%q) = %v, %q, want %v, %q", tt.give, got, gotErr, tt.want, tt.wantErr)
			}
		})
	}
}

// largeDocument returns a planList document of n plans, five to a base plan, with
// four zones each: about 600 bytes a plan, like the provider's.
func largeDocument(n int) []byte {
	const (
		basePlan = `    <base_plan base_plan_id="%d" sell_mode="online" organizer_company_id="1" title="Los Morancos &amp; amigos">` + "\n"
		plan     = `      <plan plan_start_date="2021-07-31T20:00:00" plan_end_date="2021-07-31T21:00:00" plan_id="%d" sell_from="2021-06-26T00:00:00" sell_to="2021-07-31T19:50:00" sold_out="false">` + "\n"
		zone     = `        <zone zone_id="%d" capacity="16" price="65.00" name="Amfiteatre" numbered="false" />` + "\n"
	)
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<planList version="1.0">` + "\n  <output>\n")
	for i := range n {
		if i%5 == 0 {
			if i > 0 {
				b.WriteString("    </base_plan>\n")
			}
			fmt.Fprintf(&b, basePlan, i/5)
		}
		fmt.Fprintf(&b, plan, i)
		for z := range 4 {
			fmt.Fprintf(&b, zone, 100+z)
		}
		b.WriteString("      </plan>\n")
	}
	b.WriteString("    </base_plan>\n  </output>\n</planList>\n")
	return b.Bytes()
}

func BenchmarkParse(b *testing.B) { benchmarkParse(b, Parse) }

// BenchmarkParseReference is BenchmarkParse on the parser on encoding/xml, the one
// Parse replaced, for comparison on the same machine at the same time.
func BenchmarkParseReference(b *testing.B) { benchmarkParse(b, parseReference) }

func benchmarkParse(b *testing.B, parse ParserFunc) {
	const plans = 20_000
	doc := largeDocument(plans)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		stats, err := parse(bytes.NewReader(doc), testProvider, func(catalog.Plan) error { return nil })
		if err != nil || stats.Parsed != plans {
			b.Fatalf("Parse = %+v, %v; want %d plans", stats, err, plans)
		}
	}
	b.ReportMetric(float64(plans)*float64(b.N)/b.Elapsed().Seconds(), "plans/s")
}
