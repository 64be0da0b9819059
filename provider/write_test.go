package provider

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The planList document as encoding/xml sees it, to read the samples and to check
// what the Writer wrote without depending on Parse.
type xmlPlanList struct {
	XMLName   xml.Name      `xml:"planList"`
	BasePlans []xmlBasePlan `xml:"output>base_plan"`
}

type xmlBasePlan struct {
	ID                 string    `xml:"base_plan_id,attr"`
	SellMode           string    `xml:"sell_mode,attr"`
	OrganizerCompanyID string    `xml:"organizer_company_id,attr"`
	Title              string    `xml:"title,attr"`
	Plans              []xmlPlan `xml:"plan"`
}

type xmlPlan struct {
	ID       string    `xml:"plan_id,attr"`
	Start    string    `xml:"plan_start_date,attr"`
	End      string    `xml:"plan_end_date,attr"`
	SellFrom string    `xml:"sell_from,attr"`
	SellTo   string    `xml:"sell_to,attr"`
	SoldOut  bool      `xml:"sold_out,attr"`
	Zones    []xmlZone `xml:"zone"`
}

type xmlZone struct {
	ID       string `xml:"zone_id,attr"`
	Capacity string `xml:"capacity,attr"`
	Price    string `xml:"price,attr"`
	Name     string `xml:"name,attr"`
	Numbered bool   `xml:"numbered,attr"`
}

// decodePlanList reads a planList document into wire structs.
func decodePlanList(t *testing.T, doc []byte) []BasePlanXML {
	t.Helper()
	var l xmlPlanList
	if err := xml.Unmarshal(doc, &l); err != nil {
		t.Fatalf("decode planList: %v\n%s", err, doc)
	}
	var bps []BasePlanXML
	for _, xb := range l.BasePlans {
		bp := BasePlanXML{ID: xb.ID, SellMode: xb.SellMode, OrganizerCompanyID: xb.OrganizerCompanyID, Title: xb.Title}
		for _, xp := range xb.Plans {
			p := PlanXML{ID: xp.ID, Start: xp.Start, End: xp.End, SellFrom: xp.SellFrom, SellTo: xp.SellTo, SoldOut: xp.SoldOut}
			for _, xz := range xp.Zones {
				p.Zones = append(p.Zones, ZoneXML(xz))
			}
			bp.Plans = append(bp.Plans, p)
		}
		bps = append(bps, bp)
	}
	return bps
}

func writeAll(t *testing.T, bps []BasePlanXML) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, bp := range bps {
		if err := w.WriteBasePlan(bp); err != nil {
			t.Fatalf("WriteBasePlan(%s) = %v", bp.ID, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	return buf.Bytes()
}

// TestWriteSamples writes the content of the provider's samples and gets the samples
// back byte for byte, but for the final newline that only some of them have.
func TestWriteSamples(t *testing.T) {
	tests := []struct {
		name string
		file string
	}{
		{name: "response 1", file: "planlist_1.xml"},
		{name: "response 2 derived", file: "planlist_2_derived.xml"},
		{name: "response 3 derived", file: "planlist_3_derived.xml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got := writeAll(t, decodePlanList(t, want))
			if !bytes.HasSuffix(got, []byte("\n")) {
				t.Errorf("document does not end with a newline")
			}
			if diff := cmp.Diff(strings.TrimRight(string(want), "\n"), strings.TrimRight(string(got), "\n")); diff != "" {
				t.Errorf("written %s differs (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

func TestWriteEscaping(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "plain", give: "Camela en concierto", want: "Camela en concierto"},
		{name: "accents", give: "Niña Pastori en el Café", want: "Niña Pastori en el Café"},
		{name: "ampersand", give: "Café & Co", want: "Café &amp; Co"},
		{name: "markup", give: `<b>"Gira" 2021</b>`, want: "&lt;b&gt;&quot;Gira&quot; 2021&lt;/b&gt;"},
		{name: "apostrophe", give: "L'Auditori", want: "L'Auditori"},
		{name: "entity lookalike", give: "&amp;", want: "&amp;amp;"},
		{name: "whitespace", give: "a\tb\nc\rd", want: "a&#x9;b&#xA;c&#xD;d"},
		{name: "control", give: "a\x01b", want: "a\uFFFDb"},
		{name: "invalid utf-8", give: "a\xffb\xc3", want: "a\uFFFDb\uFFFD"},
		{name: "noncharacter", give: "a\uFFFEb", want: "a\uFFFDb"},
		{name: "astral", give: "🎸 rock", want: "🎸 rock"},
		{name: "empty", give: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(appendAttrValue(nil, tt.give))
			if got != tt.want {
				t.Errorf("appendAttrValue(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

// TestWriteRoundTrip writes values that need escaping in every attribute and reads
// them back with encoding/xml.
func TestWriteRoundTrip(t *testing.T) {
	want := []BasePlanXML{
		{
			ID: "1&2", SellMode: "online", OrganizerCompanyID: `"7"`, Title: "Café & Co <en directo>\tx\ny",
			Plans: []PlanXML{
				{
					ID: "<1642>", Start: "2021-09-31T20:00:00", End: "not a date", SellFrom: "&", SellTo: "'", SoldOut: true,
					Zones: []ZoneXML{
						{ID: "186", Capacity: "-1", Price: "1e3", Name: "Zona Niños & Familias", Numbered: true},
						{ID: "186", Capacity: "", Price: "", Name: ""},
					},
				},
				{ID: "1643", Start: "2021-02-11T20:00:00", End: "2021-02-11T21:30:00"},
			},
		},
		{ID: "444", SellMode: "offline", Title: "Tributo a Juanito Valderrama"},
	}
	got := decodePlanList(t, writeAll(t, want))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
}

func TestWriteEmptyDocument(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	want := `<?xml version="1.0" encoding="UTF-8"?>
<planList xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.0" xsi:noNamespaceSchemaLocation="planList.xsd">
   <output>
   </output>
</planList>
`
	if got := buf.String(); got != want {
		t.Errorf("empty document = %q, want %q", got, want)
	}
	if got := decodePlanList(t, buf.Bytes()); len(got) != 0 {
		t.Errorf("empty document has %d base plans, want 0", len(got))
	}
}

func TestWriteAfterClose(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := w.WriteBasePlan(BasePlanXML{ID: "1"}); err == nil {
		t.Errorf("WriteBasePlan after Close = nil, want an error")
	}
}

type failingWriter struct {
	err    error
	writes int
}

func (f *failingWriter) Write(p []byte) (int, error) {
	f.writes++
	return 0, f.err
}

func TestWriteErrorSticks(t *testing.T) {
	fw := &failingWriter{err: errors.New("connection reset")}
	w := NewWriter(fw)
	if err := w.WriteBasePlan(BasePlanXML{ID: "1"}); err != nil {
		t.Fatalf("WriteBasePlan buffered = %v, want nil", err)
	}
	if err := w.Flush(); !errors.Is(err, fw.err) {
		t.Fatalf("Flush() = %v, want %v", err, fw.err)
	}
	if err := w.WriteBasePlan(BasePlanXML{ID: "2"}); !errors.Is(err, fw.err) {
		t.Errorf("WriteBasePlan after failure = %v, want %v", err, fw.err)
	}
	if err := w.Close(); !errors.Is(err, fw.err) {
		t.Errorf("Close after failure = %v, want %v", err, fw.err)
	}
	if fw.writes != 1 {
		t.Errorf("underlying writes = %d, want 1", fw.writes)
	}
}

type countingWriter struct {
	writes, bytes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	c.bytes += len(p)
	return len(p), nil
}

// TestWriteBuffers checks that the Writer passes its bytes on in large chunks.
func TestWriteBuffers(t *testing.T) {
	cw := &countingWriter{}
	w := NewWriter(cw)
	bp := benchBasePlan()
	for range 1000 {
		if err := w.WriteBasePlan(bp); err != nil {
			t.Fatal(err)
		}
	}
	if cw.writes == 0 {
		t.Errorf("nothing written before Close, want chunks of %d bytes", writerChunk)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if limit := cw.bytes/writerChunk + 1; cw.writes > limit {
		t.Errorf("underlying writes = %d for %d bytes, want at most %d", cw.writes, cw.bytes, limit)
	}
}

func benchBasePlan() BasePlanXML {
	bp := BasePlanXML{ID: "100042", SellMode: "online", OrganizerCompanyID: "7", Title: "Café & Co en concierto"}
	for i := range 10 {
		p := PlanXML{ID: "1642", Start: "2021-06-30T21:00:00", End: "2021-06-30T22:00:00", SellFrom: "2020-07-01T00:00:00", SellTo: "2021-06-30T20:50:00"}
		for range 3 {
			p.Zones = append(p.Zones, ZoneXML{ID: "40", Capacity: "243", Price: "20.00", Name: "Platea", Numbered: i%2 == 0})
		}
		bp.Plans = append(bp.Plans, p)
	}
	return bp
}

// BenchmarkWriteBasePlan writes base plans of 10 plans with 3 zones each.
func BenchmarkWriteBasePlan(b *testing.B) {
	bp := benchBasePlan()
	cw := &countingWriter{}
	w := NewWriter(cw)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WriteBasePlan(bp); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(cw.bytes / max(b.N, 1)))
	b.ReportMetric(float64(10*b.N)/b.Elapsed().Seconds(), "plans/s")
}
