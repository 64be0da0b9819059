package providersim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"boxoffice/catalog"
	"boxoffice/provider"
)

// The planList document as encoding/xml sees it: the tests check the simulator's
// output with it rather than with provider.Parse.
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

// decode reads a planList document into wire structs, failing the test if it is not
// well-formed.
func decode(t *testing.T, doc []byte) []provider.BasePlanXML {
	t.Helper()
	var l xmlPlanList
	if err := xml.Unmarshal(doc, &l); err != nil {
		t.Fatalf("decode planList: %v", err)
	}
	var bps []provider.BasePlanXML
	for _, xb := range l.BasePlans {
		bp := provider.BasePlanXML{ID: xb.ID, SellMode: xb.SellMode, OrganizerCompanyID: xb.OrganizerCompanyID, Title: xb.Title}
		for _, xp := range xb.Plans {
			p := provider.PlanXML{ID: xp.ID, Start: xp.Start, End: xp.End, SellFrom: xp.SellFrom, SellTo: xp.SellTo, SoldOut: xp.SoldOut}
			for _, xz := range xp.Zones {
				p.Zones = append(p.Zones, provider.ZoneXML(xz))
			}
			bp.Plans = append(bp.Plans, p)
		}
		bps = append(bps, bp)
	}
	return bps
}

// wellFormed returns the error of encoding/xml reading doc to its end.
func wellFormed(doc []byte) error {
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		if _, err := d.Token(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// toPlans converts wire base plans as a correct parser would, dropping plans whose
// dates do not parse.
func toPlans(t *testing.T, bps []provider.BasePlanXML, providerName string) []catalog.Plan {
	t.Helper()
	parse := func(s string) (time.Time, bool) {
		tm, err := time.Parse("2006-01-02T15:04:05", s)
		return tm, err == nil
	}
	var plans []catalog.Plan
	for _, bp := range bps {
		for _, p := range bp.Plans {
			start, ok1 := parse(p.Start)
			end, ok2 := parse(p.End)
			sellFrom, ok3 := parse(p.SellFrom)
			sellTo, ok4 := parse(p.SellTo)
			if !ok1 || !ok2 || !ok3 || !ok4 {
				continue
			}
			pl := catalog.Plan{
				ID:                 catalog.NewID(providerName, bp.ID, p.ID),
				Provider:           providerName,
				BasePlanID:         bp.ID,
				PlanID:             p.ID,
				Title:              bp.Title,
				OrganizerCompanyID: bp.OrganizerCompanyID,
				SellMode:           catalog.SellMode(bp.SellMode),
				StartsAt:           start,
				EndsAt:             end,
				SellFrom:           sellFrom,
				SellTo:             sellTo,
				SoldOut:            p.SoldOut,
			}
			for _, z := range p.Zones {
				price, err := catalog.ParseMoney(z.Price)
				if err != nil {
					t.Fatalf("plan %s/%s: zone price %q: %v", bp.ID, p.ID, z.Price, err)
				}
				var capacity int64
				if _, err := fmt.Sscan(z.Capacity, &capacity); err != nil {
					t.Fatalf("plan %s/%s: zone capacity %q: %v", bp.ID, p.ID, z.Capacity, err)
				}
				pl.Zones = append(pl.Zones, catalog.Zone{ZoneID: z.ID, Name: z.Name, Capacity: capacity, Price: price, Numbered: z.Numbered})
			}
			if err := pl.Validate(); err != nil {
				t.Errorf("plan %s/%s: %v", bp.ID, p.ID, err)
			}
			plans = append(plans, pl)
		}
	}
	return plans
}

// get makes one call to h and returns the recorded response.
func get(t *testing.T, h http.Handler, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, Path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func syntheticConfig(basePlans, plans, zones int) Config {
	cfg := DefaultConfig()
	cfg.Mode = Synthetic
	cfg.BasePlans, cfg.Plans, cfg.Zones = basePlans, plans, zones
	return cfg
}

// TestSyntheticMatchesCatalog checks that what the simulator streams is what its
// Catalog says, on the wire and as a parser reads it, call after call.
func TestSyntheticMatchesCatalog(t *testing.T) {
	cfg := syntheticConfig(300, 5, 3)
	cfg.InvalidDateRate = 0.02 // some bad dates in a small catalog
	sim := New(cfg)
	cat := sim.Catalog()
	for call := 1; call <= 4; call++ {
		t.Run(fmt.Sprintf("call %d", call), func(t *testing.T) {
			w := get(t, sim)
			if w.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", w.Code)
			}
			got := decode(t, w.Body.Bytes())

			var want []provider.BasePlanXML
			for b := range cfg.BasePlans {
				if bp, ok := cat.BasePlan(call, b); ok {
					want = append(want, bp)
				}
			}
			// reflect.DeepEqual first: cmp.Diff is slow on thousands of plans.
			if !reflect.DeepEqual(want, got) {
				t.Errorf("document differs from Catalog.BasePlan (-want +got):\n%s", cmp.Diff(want, got))
			}

			wantPlans := slices.Collect(cat.Plans(call, "sim"))
			if gotPlans := toPlans(t, got, "sim"); !reflect.DeepEqual(wantPlans, gotPlans) {
				t.Errorf("parsed plans differ from Catalog.Plans (-want +got):\n%s", cmp.Diff(wantPlans, gotPlans))
			}

			counts := map[PlanStatus]int{}
			for b := range cfg.BasePlans {
				for p := range cfg.Plans {
					_, st := cat.Plan(call, b, p, "sim")
					counts[st]++
				}
			}
			if counts[Valid] != len(wantPlans) {
				t.Errorf("Valid plans = %d, want %d", counts[Valid], len(wantPlans))
			}
			if counts[BadDates] == 0 || counts[Absent] == 0 {
				t.Errorf("statuses = %v, want some of each", counts)
			}
		})
	}
}

func TestSyntheticDeterministic(t *testing.T) {
	cfg := syntheticConfig(200, 4, 2)
	a, b := New(cfg), New(cfg)
	cfg.Seed = 2
	other := New(cfg)
	var previous []byte
	for call := 1; call <= 3; call++ {
		gotA, gotB, gotOther := get(t, a).Body.Bytes(), get(t, b).Body.Bytes(), get(t, other).Body.Bytes()
		if !bytes.Equal(gotA, gotB) {
			t.Errorf("call %d: two servers with seed 1 served different documents", call)
		}
		if bytes.Equal(gotA, gotOther) {
			t.Errorf("call %d: seeds 1 and 2 served the same document", call)
		}
		if bytes.Equal(gotA, previous) {
			t.Errorf("call %d: same document as call %d, want churn", call, call-1)
		}
		previous = gotA
	}
}

// TestSyntheticChurn measures each kind of churn between two consecutive calls over
// 20 000 plans and checks it is near its rate. The seed is fixed, so the counts are
// too; the bounds are wide enough for any seed.
func TestSyntheticChurn(t *testing.T) {
	cfg := syntheticConfig(2000, 10, 2)
	cat := NewCatalog(cfg)
	const call = 7
	var plans, absent, bad, priceChanged, timeChanged, comeBack int
	var bases, flipped int
	for b := range cfg.BasePlans {
		bases++
		before, after := cat.basePlanAt(call, b), cat.basePlanAt(call+1, b)
		if before.online != after.online {
			flipped++
		}
		for p := range cfg.Plans {
			plans++
			prev, prevSt := cat.Plan(call, b, p, "sim")
			next, nextSt := cat.Plan(call+1, b, p, "sim")
			switch nextSt {
			case Absent:
				absent++
				continue
			case BadDates:
				bad++
				continue
			}
			if prevSt == Absent {
				comeBack++
				continue
			}
			if !cmp.Equal(prev.Zones, next.Zones) {
				priceChanged++
			}
			if prevSt == Valid && (!next.StartsAt.Equal(prev.StartsAt) || !next.EndsAt.Equal(prev.EndsAt)) {
				timeChanged++
			}
		}
	}
	tests := []struct {
		name      string
		got, of   int
		rate      float64
		tolerance float64
	}{
		{name: "absent", got: absent, of: plans, rate: cfg.VanishRate, tolerance: 0.3},
		{name: "come back", got: comeBack, of: plans, rate: cfg.VanishRate * (1 - cfg.VanishRate), tolerance: 0.3},
		{name: "price changed", got: priceChanged, of: plans, rate: cfg.PriceChangeRate * (1 - cfg.VanishRate), tolerance: 0.3},
		{name: "time changed", got: timeChanged, of: plans, rate: cfg.TimeChangeRate * (1 - cfg.VanishRate), tolerance: 0.3},
		{name: "sell mode flipped", got: flipped, of: bases, rate: cfg.SellModeFlipRate, tolerance: 0.6},
		{name: "bad dates", got: bad, of: plans, rate: cfg.InvalidDateRate, tolerance: 0.9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.rate * float64(tt.of)
			if lo, hi := want*(1-tt.tolerance), want*(1+tt.tolerance); float64(tt.got) < lo || float64(tt.got) > hi {
				t.Errorf("%s: %d of %d, want %.0f±%.0f%%", tt.name, tt.got, tt.of, want, 100*tt.tolerance)
			}
		})
	}
}

func TestSyntheticNoChurn(t *testing.T) {
	cfg := syntheticConfig(50, 3, 2)
	cfg.VanishRate, cfg.PriceChangeRate, cfg.TimeChangeRate, cfg.SellModeFlipRate, cfg.InvalidDateRate = 0, 0, 0, 0, 0
	sim := New(cfg)
	first := get(t, sim)
	second := get(t, sim)
	if !bytes.Equal(first.Body.Bytes(), second.Body.Bytes()) {
		t.Errorf("without churn, calls 1 and 2 served different documents")
	}
	etag := first.Header().Get("ETag")
	if got := second.Header().Get("ETag"); got != etag {
		t.Errorf("call 2 ETag = %s, want %s", got, etag)
	}
	if got := get(t, sim, "If-None-Match", etag); got.Code != http.StatusNotModified {
		t.Errorf("conditional call 3 = %d, want 304", got.Code)
	}
	if got := len(decode(t, first.Body.Bytes())); got != cfg.BasePlans {
		t.Errorf("base plans = %d, want %d", got, cfg.BasePlans)
	}
}

// TestSyntheticAllChurn sets every churn rate to 1.
func TestSyntheticAllChurn(t *testing.T) {
	cfg := syntheticConfig(10, 3, 2)
	cfg.VanishRate = 1
	if got := decode(t, get(t, New(cfg)).Body.Bytes()); len(got) != 0 {
		t.Errorf("vanish rate 1: %d base plans, want 0", len(got))
	}

	cfg.VanishRate, cfg.InvalidDateRate = 0, 1
	cat := NewCatalog(cfg)
	if got := slices.Collect(cat.Plans(1, "sim")); len(got) != 0 {
		t.Errorf("invalid date rate 1: %d valid plans, want 0", len(got))
	}
	badDate := regexp.MustCompile(`^20\d\d-(02-(29|30)|(04|06|09|11)-31)T\d\d:\d\d:00$`)
	for b := range cfg.BasePlans {
		bp, _ := cat.BasePlan(1, b)
		for _, p := range bp.Plans {
			for _, d := range []string{p.Start, p.End, p.SellTo} {
				if !badDate.MatchString(d) {
					t.Errorf("plan %s/%s: date %q, want a day that does not exist", bp.ID, p.ID, d)
				}
				if _, err := time.Parse("2006-01-02T15:04:05", d); err == nil {
					t.Errorf("plan %s/%s: date %q parses", bp.ID, p.ID, d)
				}
			}
		}
	}

	cfg.InvalidDateRate, cfg.SellModeFlipRate = 0, 1
	cat = NewCatalog(cfg)
	for b := range cfg.BasePlans {
		if cat.basePlanAt(1, b).online == cat.basePlanAt(2, b).online {
			t.Errorf("flip rate 1: base plan %d kept its sell mode", b)
		}
	}
}

// TestSyntheticIdentity checks the provider's traps: plan ids repeat across base plans
// but not inside one, zone ids repeat inside plans, titles need escaping now and then.
func TestSyntheticIdentity(t *testing.T) {
	cfg := syntheticConfig(500, 8, 4)
	cfg.VanishRate = 0
	bps := decode(t, get(t, New(cfg)).Body.Bytes())
	baseIDs := map[string]bool{}
	planIDs := map[string]int{}
	var escaped, accents, dupZones, noOrganizer, offline int
	for _, bp := range bps {
		if baseIDs[bp.ID] {
			t.Errorf("base plan id %s repeats", bp.ID)
		}
		baseIDs[bp.ID] = true
		if strings.ContainsAny(bp.Title, `&<>"`) {
			escaped++
		}
		if strings.ContainsAny(bp.Title, "áéíóúñäÚ") {
			accents++
		}
		if bp.OrganizerCompanyID == "" {
			noOrganizer++
		}
		if bp.SellMode == "offline" {
			offline++
		}
		inBase := map[string]bool{}
		for _, p := range bp.Plans {
			if inBase[p.ID] {
				t.Errorf("plan id %s repeats inside base plan %s", p.ID, bp.ID)
			}
			inBase[p.ID] = true
			planIDs[p.ID]++
			zoneIDs := map[string]bool{}
			for _, z := range p.Zones {
				if zoneIDs[z.ID] {
					dupZones++
				}
				zoneIDs[z.ID] = true
			}
		}
	}
	if len(baseIDs) != cfg.BasePlans {
		t.Errorf("base plans = %d, want %d", len(baseIDs), cfg.BasePlans)
	}
	reused := 0
	for _, n := range planIDs {
		if n > 1 {
			reused++
		}
	}
	for name, n := range map[string]int{
		"plan ids in several base plans": reused,
		"titles with & < > or \"":        escaped,
		"titles with accents":            accents,
		"plans with a repeated zone id":  dupZones,
		"base plans without organizer":   noOrganizer,
		"offline base plans":             offline,
	} {
		if n == 0 {
			t.Errorf("%s: none, want some", name)
		}
	}
	if escaped > len(bps)/4 {
		t.Errorf("titles with & < > or \": %d of %d, want them occasional", escaped, len(bps))
	}
}

// TestSearchable checks Catalog.Searchable against the rule it implements: a plan is
// searchable once seen valid in an online base plan, with its latest valid values.
func TestSearchable(t *testing.T) {
	cfg := syntheticConfig(60, 4, 2)
	cfg.SellModeFlipRate, cfg.OfflineRate, cfg.VanishRate, cfg.InvalidDateRate = 0.5, 0.5, 0.3, 0.1
	cat := NewCatalog(cfg)
	calls := []int{1, 2, 3, 5, 8}
	got := map[catalog.ID]catalog.Plan{}
	for pl := range cat.Searchable(calls, "sim") {
		got[pl.ID] = pl
	}
	var searchable, hidden int
	for b := range cfg.BasePlans {
		for p := range cfg.Plans {
			var latest catalog.Plan
			everOnline := false
			for _, call := range calls {
				if pl, st := cat.Plan(call, b, p, "sim"); st == Valid {
					latest = pl
					everOnline = everOnline || pl.SellMode == catalog.Online
				}
			}
			id, _ := cat.Plan(1, b, p, "sim")
			g, ok := got[id.ID]
			if ok != everOnline {
				t.Errorf("plan %d/%d: searchable = %v, want %v", b, p, ok, everOnline)
				continue
			}
			if !ok {
				hidden++
				continue
			}
			searchable++
			latest.EverOnline = true
			if diff := cmp.Diff(latest, g); diff != "" {
				t.Errorf("plan %d/%d (-want +got):\n%s", b, p, diff)
			}
		}
	}
	if searchable == 0 || hidden == 0 {
		t.Errorf("searchable %d, hidden %d: want some of each", searchable, hidden)
	}
}

// discardResponse is a ResponseWriter that counts and drops the body, so the test
// measures only the handler's memory.
type discardResponse struct {
	header  http.Header
	code    int
	written int64
	flushes []int64 // bytes written at each Flush
}

func (d *discardResponse) Header() http.Header { return d.header }
func (d *discardResponse) WriteHeader(code int) {
	if d.code == 0 {
		d.code = code
	}
}

func (d *discardResponse) Write(p []byte) (int, error) {
	d.WriteHeader(http.StatusOK)
	d.written += int64(len(p))
	return len(p), nil
}

func (d *discardResponse) Flush() { d.flushes = append(d.flushes, d.written) }

// TestSyntheticMemory streams 200 000 plans and checks that the heap the runtime had
// to obtain while serving them is small next to the document: it is streamed, never
// built in memory.
func TestSyntheticMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams about 100 MB")
	}
	sim := New(syntheticConfig(20_000, 10, 3))
	get(t, New(syntheticConfig(10, 10, 3))) // warm up the pools and code paths
	w := &discardResponse{header: http.Header{}}
	r := httptest.NewRequest(http.MethodGet, Path, nil)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sim.ServeHTTP(w, r)
	runtime.ReadMemStats(&after)

	if w.code != http.StatusOK {
		t.Fatalf("status = %d, want 200", w.code)
	}
	grown := int64(after.HeapSys) - int64(before.HeapSys)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("body %d bytes, heap grew %d bytes, %d bytes allocated in %d objects",
		w.written, grown, allocated, after.Mallocs-before.Mallocs)
	if w.written < 50<<20 {
		t.Errorf("body = %d bytes, want at least 50 MiB", w.written)
	}
	if limit := w.written / 10; grown > limit {
		t.Errorf("heap grew %d bytes for a %d-byte body, want at most %d", grown, w.written, limit)
	}
	if limit := uint64(w.written) / 4; allocated > limit {
		t.Errorf("allocated %d bytes for a %d-byte body, want at most %d", allocated, w.written, limit)
	}
}

// TestSyntheticFlushes checks that a large document reaches the client in flushed
// pieces while it is generated.
func TestSyntheticFlushes(t *testing.T) {
	sim := New(syntheticConfig(2000, 10, 3))
	w := &discardResponse{header: http.Header{}}
	sim.ServeHTTP(w, httptest.NewRequest(http.MethodGet, Path, nil))
	if len(w.flushes) < 10 {
		t.Fatalf("flushes = %d for %d bytes, want at least 10", len(w.flushes), w.written)
	}
	if first := w.flushes[0]; first <= 0 || first > 64<<10 {
		t.Errorf("first flush after %d bytes, want it within the first 64 KiB", first)
	}
}

// BenchmarkSynthetic measures the generation and streaming of a synthetic document of
// 100 000 plans with 3 zones each.
func BenchmarkSynthetic(b *testing.B) {
	cfg := syntheticConfig(10_000, 10, 3)
	sim := New(cfg)
	r := httptest.NewRequest(http.MethodGet, Path, nil)
	var written int64
	b.ReportAllocs()
	for b.Loop() {
		w := &discardResponse{header: http.Header{}}
		sim.ServeHTTP(w, r)
		written += w.written
	}
	b.SetBytes(written / int64(b.N))
	b.ReportMetric(float64(cfg.BasePlans*cfg.Plans*b.N)/b.Elapsed().Seconds(), "plans/s")
}
