package provider_test

import (
	"io"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"

	"boxoffice/catalog"
	"boxoffice/provider"
)

// TestParseMemoryIsConstant parses a document far larger than the heap it may use, in
// XML and in JSON: the document streams through a pipe and is never whole in memory, and the heap, sampled
// while parsing, must stay a small fraction of its size.
func TestParseMemoryIsConstant(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 100 MB document")
	}
	for _, tt := range []struct {
		format    string
		parse     provider.ParserFunc
		basePlans int
	}{
		{provider.FormatPlanList, provider.Parse, 20_000}, // 200k plans, about 75 MB
		{provider.FormatJSON, provider.ParseJSON, 4_000},  // 40k plans, about 16 MB: JSON's tokens cost more time
	} {
		t.Run(tt.format, func(t *testing.T) { testParseMemory(t, tt.format, tt.parse, tt.basePlans) })
	}
}

func testParseMemory(t *testing.T, format string, parse provider.ParserFunc, basePlans int) {
	const plansPer = 10
	r, w := io.Pipe()
	written := make(chan int64, 1)
	go func() {
		cw := &countingWriter{w: w}
		pw, err := provider.NewFormatWriter(cw, format)
		if err != nil {
			w.CloseWithError(err)
			return
		}
		for b := range basePlans {
			bp := provider.BasePlanXML{ID: strconv.Itoa(b), SellMode: "online", Title: "Concierto número " + strconv.Itoa(b)}
			for p := range plansPer {
				bp.Plans = append(bp.Plans, provider.PlanXML{
					ID: strconv.Itoa(p), Start: "2021-06-30T21:00:00", End: "2021-06-30T22:00:00",
					SellFrom: "2020-07-01T00:00:00", SellTo: "2021-06-30T20:00:00",
					Zones: []provider.ZoneXML{
						{ID: "40", Capacity: "243", Price: "20.00", Name: "Platea", Numbered: true},
						{ID: "38", Capacity: "100", Price: "15.00", Name: "Grada 2"},
					},
				})
			}
			if err := pw.WriteBasePlan(bp); err != nil {
				w.CloseWithError(err)
				return
			}
		}
		w.CloseWithError(pw.Close())
		written <- cw.n
	}()

	if format == provider.FormatJSON {
		// Collect often, so that the heap measures what the parser keeps rather than the
		// garbage a lazier collector would let pile up on a document this small.
		defer debug.SetGCPercent(debug.SetGCPercent(10))
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	n := 0
	stats, err := parse(r, "fever", func(catalog.Plan) error {
		if n++; n%10_000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc-min(base, ms.HeapAlloc))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	size := <-written
	if stats.Parsed != basePlans*plansPer {
		t.Fatalf("parsed %d plans, want %d", stats.Parsed, basePlans*plansPer)
	}
	if limit := uint64(size / 8); peak > limit {
		t.Errorf("heap grew by up to %d bytes parsing a %d-byte document, want under %d", peak, size, limit)
	}
	t.Logf("document %d MB, heap growth at most %d MB", size>>20, peak>>20)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
