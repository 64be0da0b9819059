package provider

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"slices"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"boxoffice/catalog"
	"boxoffice/ingest"
)

// FuzzParse checks that Parse never panics, emits only valid plans with their proper
// IDs, counts consistently, fails on an in-memory document only with ErrMalformed, and
// gives the same answer however the input is split into reads; and that it gives the
// answer of the parser on encoding/xml (parseReference): the same plans, the same
// counts and the same error, message included. Seeds: the fixtures, and
// testdata/fuzz/FuzzParse (small variants, truncations, entities, and the XML that
// the scanner reads by hand: CDATA, comments, processing instructions, directives,
// either quote, character references, line ends, prefixes).
func FuzzParse(f *testing.F) {
	for _, name := range []string{"planlist_1.xml", "planlist_2_derived.xml", "eventlist_3.xml"} {
		f.Add([]byte(fixture(f, name)))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkParse(t, doc, parseAll, "planList", "eventList")
		checkReference(t, doc)
	})
}

// checkReference checks that Parse answers doc as parseReference does.
func checkReference(t *testing.T, doc []byte) {
	plans, stats, err := parseAll(bytes.NewReader(doc))
	var want []catalog.Plan
	wantStats, wantErr := parseReference(bytes.NewReader(doc), testProvider, func(p catalog.Plan) error {
		want = append(want, p)
		return nil
	})
	if !reflect.DeepEqual(want, plans) {
		t.Errorf("plans differ from encoding/xml's (-reference +scanner):\n%s", cmp.Diff(want, plans))
	}
	if !reflect.DeepEqual(wantStats, stats) {
		t.Errorf("stats differ from encoding/xml's (-reference +scanner):\n%s", cmp.Diff(wantStats, stats))
	}
	if errString(err) != errString(wantErr) {
		t.Errorf("Parse = %v, encoding/xml's parser = %v", err, wantErr)
	}
}

// checkParse parses doc with parse, whole and in small reads, and checks what every
// Parser promises: only valid plans with their proper IDs, consistent counts, only
// ErrMalformed on an in-memory document, one of formats on success, and the same
// answer however the input is split into reads.
func checkParse(t *testing.T, doc []byte, parse func(io.Reader) ([]catalog.Plan, Stats, error), formats ...string) {
	plans, stats, err := parse(bytes.NewReader(doc))
	for _, p := range plans {
		if verr := p.Validate(); verr != nil {
			t.Errorf("emitted plan %s/%s is invalid: %v", p.BasePlanID, p.PlanID, verr)
		}
		if want := catalog.NewID(testProvider, p.BasePlanID, p.PlanID); p.ID != want || p.Provider != testProvider {
			t.Errorf("emitted plan %s/%s has ID %s and provider %q, want %s and %q", p.BasePlanID, p.PlanID, p.ID, p.Provider, want, testProvider)
		}
		if p.Title == "" || p.Zones == nil || len(p.Zones) > maxZones {
			t.Errorf("emitted plan %s/%s has title %q and %d zones (nil: %t)", p.BasePlanID, p.PlanID, p.Title, len(p.Zones), p.Zones == nil)
		}
	}
	if stats.Parsed != len(plans) {
		t.Errorf("stats.Parsed = %d, want %d emitted plans", stats.Parsed, len(plans))
	}
	if got, want := len(stats.SkipReasons), min(stats.Skipped, maxSkipReasons); got != want {
		t.Errorf("%d skip reasons for %d skipped plans, want %d", got, stats.Skipped, want)
	}
	if err != nil && !errors.Is(err, ingest.ErrMalformed) {
		t.Errorf("Parse = %v, want nil or ErrMalformed", err)
	}
	if err == nil && !slices.Contains(formats, stats.Format) {
		t.Errorf("Parse succeeded with format %q, want one of %q", stats.Format, formats)
	}

	// reflect.DeepEqual first: cmp.Diff on every input slows the fuzzer down.
	plans2, stats2, err2 := parse(iotest.HalfReader(bytes.NewReader(doc)))
	if !reflect.DeepEqual(plans, plans2) {
		t.Errorf("plans differ in small reads (-whole +small):\n%s", cmp.Diff(plans, plans2))
	}
	if !reflect.DeepEqual(stats, stats2) {
		t.Errorf("stats differ in small reads (-whole +small):\n%s", cmp.Diff(stats, stats2))
	}
	if errString(err) != errString(err2) {
		t.Errorf("Parse = %v in one read, %v in small reads", err, err2)
	}
}

// FuzzParseTime checks that the fast path of parseTime agrees with time.Parse.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2021-06-30T21:00:00", "2021-09-31T20:00:00", "2024-02-29T12:00:00", "2100-02-29T00:00:00", "2021-06-30T21:00:00.123", "0000-01-01T00:00:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTime(s)
		want, wantErr := time.Parse(timeLayout, s)
		if !got.Equal(want) || got.Location() != want.Location() || errString(err) != errString(wantErr) {
			t.Errorf("parseTime(%q) = %v, %v; time.Parse gives %v, %v", s, got, err, want, wantErr)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzParseJSON checks ParseJSON as FuzzParse checks Parse: no panic, only valid plans
// with their proper IDs, consistent counts, only ErrMalformed on an in-memory
// document, and the same answer however the input is split into reads. Seeds: the
// JSON samples, and testdata/fuzz/FuzzParseJSON (types, order, nesting, truncations).
func FuzzParseJSON(f *testing.F) {
	for name := range jsonSamples {
		f.Add([]byte(fixture(f, name)))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkParse(t, doc, parseJSONAll, FormatJSON)
	})
}
