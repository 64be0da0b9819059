package provider

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"boxoffice/catalog"
	"boxoffice/ingest"
)

var update = flag.Bool("update", false, "rewrite the JSON samples in testdata/ from the planList ones")

// jsonSamples are the JSON samples, each the content of a planList sample.
var jsonSamples = map[string]string{
	"planlist_1.json":         "planlist_1.xml",
	"planlist_2_derived.json": "planlist_2_derived.xml",
	"planlist_3_derived.json": "planlist_3_derived.xml",
}

// parseJSONAll parses r as JSON and returns every emitted plan.
func parseJSONAll(r io.Reader) ([]catalog.Plan, Stats, error) {
	var plans []catalog.Plan
	stats, err := ParseJSON(r, testProvider, func(p catalog.Plan) error {
		plans = append(plans, p)
		return nil
	})
	return plans, stats, err
}

// TestJSONSamples checks that the JSON samples are what the Writer makes of the
// planList samples (-update rewrites them), and that ParseJSON reads from each exactly
// the plans, counts and skip reasons that Parse reads from its planList original.
func TestJSONSamples(t *testing.T) {
	for name, xmlName := range jsonSamples {
		t.Run(name, func(t *testing.T) {
			xmlDoc := fixture(t, xmlName)
			var buf bytes.Buffer
			w, err := NewFormatWriter(&buf, FormatJSON)
			if err != nil {
				t.Fatal(err)
			}
			for _, bp := range decodePlanList(t, []byte(xmlDoc)) {
				if err := w.WriteBasePlan(bp); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := fixture(t, name); got != buf.String() {
				t.Errorf("testdata/%s differs from the Writer's JSON of %s; run go test ./provider -update", name, xmlName)
			}
			want, wantStats := mustParse(t, xmlDoc)
			plans, stats, err := parseJSONAll(strings.NewReader(fixture(t, name)))
			if err != nil {
				t.Fatalf("ParseJSON(%s) = %v", name, err)
			}
			wantStats.Format = FormatJSON
			if diff := cmp.Diff(wantStats, stats); diff != "" {
				t.Errorf("ParseJSON(%s) stats (-want +got):\n%s", name, diff)
			}
			if diff := cmp.Diff(want, plans); diff != "" {
				t.Errorf("ParseJSON(%s) plans differ from Parse(%s) (-want +got):\n%s", name, xmlName, diff)
			}
		})
	}
}

// The documented example, with numbers, strings, booleans, nulls and unknown fields.
func TestParseJSONValues(t *testing.T) {
	doc := `{"version": "1.0", "generated": {"by": ["x", {"y": null}]}, "base_plans": [
		{"base_plan_id": 291, "sell_mode": "online", "title": "Camela", "organizer_company_id": null, "extra": [1, 2], "plans": [
			{"plan_id": "291", "plan_start_date": "2021-06-30T21:00:00", "plan_end_date": "2021-06-30T22:00:00",
			 "sell_from": "", "sold_out": "1", "zones": [
				{"zone_id": 40, "capacity": 243, "price": 20.5, "name": "Platea", "numbered": true},
				{"zone_id": "38", "capacity": "100", "": [""], "price": "15.00", "numbered": "false", "seats": {"a": 1}}
			], "more": "ignored"}
		], "after": true}
	]}`
	plans, stats, err := parseJSONAll(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("ParseJSON = %v", err)
	}
	want := []catalog.Plan{{
		ID: catalog.NewID("fever", "291", "291"), Provider: "fever", BasePlanID: "291", PlanID: "291",
		Title: "Camela", SellMode: catalog.Online, SoldOut: true,
		StartsAt: at("2021-06-30 21:00"), EndsAt: at("2021-06-30 22:00"),
		Zones: []catalog.Zone{
			{ZoneID: "40", Name: "Platea", Capacity: 243, Price: 2050, Numbered: true},
			{ZoneID: "38", Capacity: 100, Price: 1500},
		},
	}}
	if diff := cmp.Diff(want, plans); diff != "" {
		t.Errorf("ParseJSON plans (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Stats{Format: FormatJSON, Parsed: 1}, stats); diff != "" {
		t.Errorf("ParseJSON stats (-want +got):\n%s", diff)
	}
}

// jsonDoc builds a document of one base plan with one plan: base and plan are their
// fields, without braces, zones the plan's zones array content.
func jsonDoc(base, plan, zones string) string {
	return `{"base_plans": [{` + base + `, "plans": [{` + plan + `, "zones": [` + zones + `]}]}]}`
}

const (
	jsonBase = `"base_plan_id": "1", "sell_mode": "online", "title": "T"`
	jsonPlan = `"plan_id": "2", "plan_start_date": "2021-06-30T21:00:00", "plan_end_date": "2021-06-30T22:00:00"`
	jsonZone = `{"zone_id": "3", "capacity": 10, "price": 20.00}`
)

func TestParseJSONSkips(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"impossible start", jsonDoc(jsonBase, `"plan_id": "2", "plan_start_date": "2021-09-31T20:00:00", "plan_end_date": "2021-06-30T22:00:00"`, jsonZone),
			`plan 1/2: plan_start_date: parsing time "2021-09-31T20:00:00": day out of range`},
		{"date as a number", jsonDoc(jsonBase, `"plan_id": "2", "plan_start_date": 20210630, "plan_end_date": "2021-06-30T22:00:00"`, jsonZone),
			`plan 1/2: plan_start_date: not a string: 20210630`},
		{"title as an object", jsonDoc(`"base_plan_id": "1", "sell_mode": "online", "title": {"es": "T"}`, jsonPlan, jsonZone),
			`plan 1/2: title: not a string`},
		{"sell_mode as a boolean", jsonDoc(`"base_plan_id": "1", "sell_mode": true, "title": "T"`, jsonPlan, jsonZone),
			`plan 1/2: sell_mode: not a string: true`},
		{"missing title", jsonDoc(`"base_plan_id": "1", "sell_mode": "online", "title": null`, jsonPlan, jsonZone),
			`plan 1/2: missing title`},
		{"missing plan_id", jsonDoc(jsonBase, `"plan_start_date": "2021-06-30T21:00:00", "plan_end_date": "2021-06-30T22:00:00"`, jsonZone),
			`plan 1/?: missing plan_id`},
		{"capacity a fraction", jsonDoc(jsonBase, jsonPlan, `{"zone_id": "3", "capacity": 1.5, "price": 20}`),
			`plan 1/2: zone 3: capacity: not an integer: "1.5"`},
		{"capacity in exponent form", jsonDoc(jsonBase, jsonPlan, `{"zone_id": "3", "capacity": 1e3, "price": 20}`),
			`plan 1/2: zone 3: capacity: not an integer: "1e3"`},
		{"price with three decimals", jsonDoc(jsonBase, jsonPlan, `{"zone_id": "3", "capacity": 1, "price": 20.005}`),
			`plan 1/2: zone 3: price: not a price with at most two decimals: "20.005"`},
		{"negative price", jsonDoc(jsonBase, jsonPlan, `{"zone_id": "3", "capacity": 1, "price": -1}`),
			`plan 1/2: zone 3: price: negative: -1.00`},
		{"missing price", jsonDoc(jsonBase, jsonPlan, `{"zone_id": "3", "capacity": 1}`),
			`plan 1/2: zone 3: missing price`},
		{"numbered a number", jsonDoc(jsonBase, jsonPlan, `{"zone_id": "3", "capacity": 1, "price": 1, "numbered": 1}`),
			`plan 1/2: zone #1: numbered: not a string: 1`},
		{"zone an array", jsonDoc(jsonBase, jsonPlan, jsonZone+`, {"zone_id": ["3"], "capacity": 1, "price": 1}`),
			`plan 1/2: zone #2: zone_id: not a string`},
		{"end before start", jsonDoc(jsonBase, `"plan_id": "2", "plan_start_date": "2021-06-30T21:00:00", "plan_end_date": "2021-06-30T20:00:00"`, jsonZone),
			`plan 1/2: end 2021-06-30 20:00:00 is before start 2021-06-30 21:00:00`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plans, stats, err := parseJSONAll(strings.NewReader(tt.give))
			if err != nil {
				t.Fatalf("ParseJSON = %v", err)
			}
			if len(plans) != 0 {
				t.Errorf("ParseJSON emitted %d plans, want none", len(plans))
			}
			want := Stats{Format: FormatJSON, Skipped: 1, SkipReasons: []string{tt.want}}
			if diff := cmp.Diff(want, stats); diff != "" {
				t.Errorf("ParseJSON stats (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseJSONMalformed(t *testing.T) {
	long := strings.Repeat("x", maxTokenBytes+1)
	tests := []struct {
		name string
		give string
		want string
	}{
		{"empty", ``, `empty document`},
		{"white space", " \n\t", `empty document`},
		{"an array", `[]`, `offset 1: the document is not a JSON object`},
		{"XML", `<planList/>`, `offset 0: invalid character '<' looking for beginning of value`},
		{"error object", `{"error": "try later"}`, `offset 22: no "base_plans" array`},
		{"base_plans an object", `{"base_plans": {}}`, `offset 16: "base_plans" is not an array`},
		{"base_plans null", `{"base_plans": null}`, `offset 19: "base_plans" is not an array`},
		{"base_plans repeated", `{"base_plans": [], "base_plans": []}`, `offset 31: "base_plans" repeated`},
		{"base plan a string", `{"base_plans": ["x"]}`, `offset 19: a base plan is not an object`},
		{"plans not an array", `{"base_plans": [{` + jsonBase + `, "plans": 3}]}`, `offset 85: "plans" is not an array`},
		{"field after plans", `{"base_plans": [{"base_plan_id": "1", "plans": [], "title": "T"}]}`, `offset 58: field "title" of a base plan after "plans"`},
		{"field after zones", jsonDoc(jsonBase, `"zones": [], "plan_id": "2"`, jsonZone), `field "plan_id" of a plan after "zones"`},
		{"plans repeated", `{"base_plans": [{"plans": [], "plans": []}]}`, `offset 37: field "plans" of a base plan after "plans"`},
		{"field repeated", jsonDoc(jsonBase, jsonPlan+`, "plan_id": "3"`, jsonZone), `field "plan_id" repeated in a plan`},
		{"null field repeated", jsonDoc(`"title": null, "title": "T"`, jsonPlan, jsonZone), `field "title" repeated in a base plan`},
		{"truncated", `{"base_plans": [{"base_plan_id": "1"`, `offset 36: unexpected end of the document`},
		{"truncated in a string", `{"base_plans": [{"base_plan_id": "1`, `unexpected end of the document`},
		{"trailing comma", `{"base_plans": [],}`, `offset 18: invalid character '}' looking for beginning of object key string`},
		{"second document", `{"base_plans": []} {}`, `offset 20: data after the document`},
		{"garbage after", `{"base_plans": []} x`, `offset 19: invalid character 'x' looking for beginning of value`},
		{"nested too deep", `{"x": ` + strings.Repeat(`[`, maxDepth), `objects and arrays nested more than 64 deep`},
		{"token too long", `{"x": "` + long + `", "base_plans": []}`, `token longer than 262144 bytes`},
		{"key too long", `{"` + long + `": 1, "base_plans": []}`, `token longer than 262144 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseJSONAll(strings.NewReader(tt.give))
			if !errors.Is(err, ingest.ErrMalformed) {
				t.Fatalf("ParseJSON = %v, want ErrMalformed", err)
			}
			if got := err.Error(); !strings.HasPrefix(got, "malformed provider document: ") || !strings.HasSuffix(got, tt.want) {
				t.Errorf("ParseJSON = %q, want malformed provider document: …%s", got, tt.want)
			}
		})
	}
}

// Every cut of a JSON sample before its end is malformed, wherever it falls.
func TestParseJSONTruncated(t *testing.T) {
	doc := strings.TrimRight(fixture(t, "planlist_1.json"), "\n")
	for cut := range len(doc) {
		_, _, err := parseJSONAll(strings.NewReader(doc[:cut]))
		if !errors.Is(err, ingest.ErrMalformed) {
			t.Fatalf("ParseJSON(cut at byte %d) = %v, want ErrMalformed", cut, err)
		}
	}
}

// A reader that fails is not a malformed document, wherever the failure falls.
func TestParseJSONReaderError(t *testing.T) {
	doc := fixture(t, "planlist_1.json")
	readErr := errors.New("connection reset by peer")
	for cut := range len(doc) + 1 {
		r := io.MultiReader(strings.NewReader(doc[:cut]), iotest.ErrReader(readErr))
		_, _, err := parseJSONAll(r)
		if !errors.Is(err, readErr) || errors.Is(err, ingest.ErrMalformed) {
			t.Fatalf("ParseJSON(cut at byte %d, then %q) = %v, want the reader's error, not ErrMalformed", cut, readErr, err)
		}
	}
	if _, _, err := parseJSONAll(emptyReader{}); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("ParseJSON(a reader without progress) = %v, want io.ErrNoProgress", err)
	}
}

// Small and uneven reads give the same answer as one read.
func TestParseJSONReads(t *testing.T) {
	doc := fixture(t, "planlist_2_derived.json")
	want, wantStats, err := parseJSONAll(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(strings.NewReader(doc)),
		"half":     iotest.HalfReader(strings.NewReader(doc)),
	} {
		plans, stats, err := parseJSONAll(r)
		if err != nil || !cmp.Equal(want, plans) || !cmp.Equal(wantStats, stats) {
			t.Errorf("ParseJSON in %s reads = %d plans, %+v, %v; want %d plans, %+v", name, len(plans), stats, err, len(want), wantStats)
		}
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		give        string
		want        string // Stats.Format of the document, or the malformed error's end
	}{
		{"XML as XML", "application/xml", fixture(t, "planlist_1.xml"), "planList"},
		{"legacy XML unlabelled", "", fixture(t, "eventlist_1.xml"), "eventList"},
		{"JSON as JSON", "application/json; charset=utf-8", fixture(t, "planlist_1.json"), "json"},
		{"JSON as text/plain", "text/plain", fixture(t, "planlist_1.json"), "json"},
		{"JSON labelled XML", "application/xml", fixture(t, "planlist_1.json"), "json"},
		{"XML labelled JSON", "application/json", fixture(t, "planlist_1.xml"), "planList"},
		{"XML after a BOM and spaces", "", "\uFEFF \n" + fixture(t, "planlist_1.xml"), "planList"},
		{"JSON after spaces", "", "\n\n  " + fixture(t, "planlist_1.json"), "json"},
		{"JSON array labelled JSON", "application/problem+json", `["x"]`, "offset 1: the document is not a JSON object"},
		{"text labelled XML", "text/xml", "oops", "line 1: text outside the root element"},
		{"text unlabelled", "text/plain", "oops", `Content-Type "text/plain" and a document that starts with 'o': neither XML nor JSON`},
		{"empty", "application/json", "", "empty document"},
		{"white space only", "", "   ", "empty document"},
		{"too much white space", "", strings.Repeat(" ", maxLeadingSpace) + "<planList/>", "more than 4096 bytes of white space before the document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tt.give), readBufferSize)
			p, err := Detect(tt.contentType, br)
			var stats Stats
			if err == nil {
				stats, err = p.Parse(br, testProvider, func(catalog.Plan) error { return nil })
			}
			switch {
			case err == nil && stats.Format != tt.want:
				t.Errorf("detected %s, want %s", stats.Format, tt.want)
			case err != nil && (!errors.Is(err, ingest.ErrMalformed) || !strings.HasSuffix(err.Error(), tt.want)):
				t.Errorf("Detect and Parse = %v, want a malformed document: …%s", err, tt.want)
			}
		})
	}
}

func TestCheckFormat(t *testing.T) {
	for _, name := range append(Formats(), "") {
		if err := CheckFormat(name); err != nil {
			t.Errorf("CheckFormat(%q) = %v", name, err)
		}
	}
	err := CheckFormat("yaml")
	if err == nil || err.Error() != `unknown format "yaml" (want auto, planList, eventList, json)` {
		t.Errorf("CheckFormat(yaml) = %v", err)
	}
}

// A Client of a named format reads every document as that format, whatever the
// response says, and asks for it.
func TestFetchNamedFormat(t *testing.T) {
	tests := []struct {
		format, doc, wantAccept, wantErr string
		wantParsed                       int
	}{
		{FormatJSON, "planlist_1.json", "application/json", "", 4},
		{FormatPlanList, "planlist_1.xml", "application/xml", "", 4},
		{FormatEventList, "eventlist_1.xml", "application/xml", "", 3},
		{FormatPlanList, "eventlist_1.xml", "application/xml", "root element <eventList> is not <planList>", 0},
		{FormatEventList, "planlist_1.json", "application/xml", "text outside the root element", 0},
		{FormatJSON, "planlist_1.xml", "application/json", "invalid character '<' looking for beginning of value", 0},
	}
	for _, tt := range tests {
		t.Run(tt.format+" "+tt.doc, func(t *testing.T) {
			var accept string
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				accept = r.Header.Get("Accept")
				w.Header().Set("Content-Type", "application/octet-stream")
				io.WriteString(w, fixture(t, tt.doc))
			})
			c := NewClient(srv.URL, testTimeout, testProvider, WithHTTPClient(srv.Client()), WithFormat(tt.format))
			f, err := c.Fetch(t.Context(), ingest.Validators{}, func(catalog.Plan) error { return nil })
			switch {
			case tt.wantErr == "" && (err != nil || f.Parsed != tt.wantParsed):
				t.Errorf("Fetch = %+v, %v; want %d plans", f, err, tt.wantParsed)
			case tt.wantErr != "" && (!errors.Is(err, ingest.ErrMalformed) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Fetch = %v, want a malformed document: …%s", err, tt.wantErr)
			}
			if accept != tt.wantAccept {
				t.Errorf("Accept %q, want %q", accept, tt.wantAccept)
			}
		})
	}
	c := NewClient("http://127.0.0.1:1/", testTimeout, testProvider, WithFormat("yaml"))
	if _, err := c.Fetch(t.Context(), ingest.Validators{}, func(catalog.Plan) error { return nil }); err == nil || !strings.Contains(err.Error(), `unknown format "yaml"`) {
		t.Errorf("Fetch with format yaml = %v, want an error naming it", err)
	}
}

// A Client sends its configured headers, and refuses the ones it sets itself without
// showing their values.
func TestFetchHeaders(t *testing.T) {
	var got http.Header
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		io.WriteString(w, "<planList/>")
	})
	c := NewClient(srv.URL, testTimeout, testProvider, WithHTTPClient(srv.Client()),
		WithHeader("X-Api-Key", "k1"), WithHeader("Authorization", "Bearer t"))
	if _, err := c.Fetch(t.Context(), ingest.Validators{}, func(catalog.Plan) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got.Get("X-Api-Key") != "k1" || got.Get("Authorization") != "Bearer t" {
		t.Errorf("server got headers %v, want X-Api-Key and Authorization", got)
	}
	c = NewClient(srv.URL, testTimeout, testProvider, WithHTTPClient(srv.Client()), WithHeader("Accept", "secret/x"))
	_, err := c.Fetch(t.Context(), ingest.Validators{}, func(catalog.Plan) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "header Accept: set by boxoffice itself") || strings.Contains(err.Error(), "secret") {
		t.Errorf("Fetch with its own Accept header = %v, want a refusal that hides the value", err)
	}
}
