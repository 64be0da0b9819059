//go:build bench

package bench

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chartsDir is where the bench writes its charts: BENCH_CHARTS, by default the
// repository's docs/bench (the tests run in bench/), which docs/BENCHMARKS.md shows.
func chartsDir() string { return env("BENCH_CHARTS", filepath.Join("..", "docs", "bench")) }

// writeCharts writes each chart as name in chartsDir.
func writeCharts(t *testing.T, charts map[string][]byte) {
	t.Helper()
	dir := chartsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Error(err)
		return
	}
	for name, svg := range charts {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, svg, 0o644); err != nil {
			t.Error(err)
			continue
		}
		t.Logf("chart written: %s", file)
	}
}

// ratioChart draws the peak throughput (wrk) of boxoffice as a ratio to the trivial
// handler's: one group of bars per workload, one bar per mode and catalog.
func ratioChart(rows []row) barChart {
	c := barChart{
		Title:  "/search peak throughput (wrk) against the trivial handler",
		YLabel: "boxoffice req/s ÷ trivial req/s", Ref: 1, RefLabel: "as fast as the trivial handler",
	}
	at := map[[2]string]float64{}
	for _, r := range rows {
		if r.tool != "wrk" {
			continue
		}
		series := r.mode + " " + r.size
		if !slices.Contains(c.Groups, r.workload) {
			c.Groups = append(c.Groups, r.workload)
		}
		if !slices.Contains(c.Series, series) {
			c.Series = append(c.Series, series)
		}
		at[[2]string{series, r.workload}] = ratioOf(r.box.reqs, r.trivial.reqs)
	}
	c.Values = make([][]float64, len(c.Series))
	for s, series := range c.Series {
		for _, g := range c.Groups {
			v, ok := at[[2]string{series, g}]
			if !ok {
				v = math.NaN()
			}
			c.Values[s] = append(c.Values[s], v)
		}
	}
	return c
}

// ingestCharts draws, against the catalog's size, the time until every plan was served
// for each setup (log-log), and each process's peak resident memory in the embedded and
// the one-worker distributed setups (the highest of its kind when there are several).
func ingestCharts(rows []ingestRow) (served, rss lineChart) {
	served = lineChart{Title: "Cold ingest: time until every plan is served", XLabel: "plans in the catalog",
		YLabel: "seconds (log scale)", LogY: true, XTick: sizeTick}
	rss = lineChart{Title: "Cold ingest: peak resident memory per process", XLabel: "plans in the catalog",
		YLabel: "peak RSS, MiB", XTick: sizeTick}
	add := func(c *lineChart, name string, p point) {
		for i := range c.Lines {
			if c.Lines[i].Name == name {
				for j := range c.Lines[i].Points {
					if c.Lines[i].Points[j].X == p.X {
						c.Lines[i].Points[j].Y = max(c.Lines[i].Points[j].Y, p.Y)
						return
					}
				}
				c.Lines[i].Points = append(c.Lines[i].Points, p)
				return
			}
		}
		c.Lines = append(c.Lines, line{Name: name, Points: []point{p}})
	}
	for _, r := range rows {
		x := float64(r.plans)
		add(&served, r.mode, point{x, r.served.Seconds()})
		if strings.Contains(r.mode, "workers") {
			continue
		}
		for _, p := range r.procs {
			add(&rss, p.name+" ("+r.mode+")", point{x, float64(p.peak) / (1 << 20)})
		}
	}
	for _, c := range []*lineChart{&served, &rss} {
		for i := range c.Lines {
			slices.SortFunc(c.Lines[i].Points, func(a, b point) int { return cmp.Compare(a.X, b.X) })
		}
	}
	return served, rss
}

// ingestChartFiles are the ingest's charts by file name.
func ingestChartFiles(rows []ingestRow) map[string][]byte {
	served, rss := ingestCharts(rows)
	return map[string][]byte{"ingest-served.svg": served.SVG(), "ingest-rss.svg": rss.SVG()}
}

// TestCharts draws the charts of docs/BENCHMARKS.md again from its own tables, without
// measuring anything: the /search ratios from the table under "## Results", and the
// ingest figures from the table under chartedIngest. `make bench` draws the same
// charts from what it has just measured.
func TestCharts(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "BENCHMARKS.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := searchRows(tableAfter(string(doc), "## Results"))
	if err != nil {
		t.Fatalf("the table under ## Results: %v", err)
	}
	ingest, err := ingestRows(tableAfter(string(doc), chartedIngest))
	if err != nil {
		t.Fatalf("the table under %s: %v", chartedIngest, err)
	}
	if len(rows) == 0 || len(ingest) == 0 {
		t.Fatalf("found %d /search rows and %d ingest rows in docs/BENCHMARKS.md, want some of each", len(rows), len(ingest))
	}
	charts := ingestChartFiles(ingest)
	charts["search-ratio.svg"] = ratioChart(rows).SVG()
	writeCharts(t, charts)
}

// chartedIngest is the heading of the ingest table that the charts show.
const chartedIngest = "#### The whole table at `d97bf3c` on a quiet machine"

// tableAfter returns the cells of the first Markdown table after the line that starts
// with heading: its header row first, without the separator row.
func tableAfter(doc, heading string) [][]string {
	var table [][]string
	found := false
	for l := range strings.Lines(doc) {
		l = strings.TrimSpace(l)
		switch {
		case !found:
			found = strings.HasPrefix(l, heading)
		case strings.HasPrefix(l, "|"):
			cells := strings.Split(strings.Trim(l, "|"), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			if !strings.HasPrefix(cells[0], "---") {
				table = append(table, cells)
			}
		case len(table) > 0:
			return table
		}
	}
	return table
}

// columns maps a table's header names to their indexes, and fails when one of want
// is missing.
func columns(header []string, want ...string) (map[string]int, error) {
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	for _, w := range want {
		if _, ok := col[w]; !ok {
			return nil, fmt.Errorf("no column %q in %q", w, header)
		}
	}
	return col, nil
}

// searchRows reads the /search results table back into the rows that report wrote.
func searchRows(table [][]string) ([]row, error) {
	if len(table) == 0 {
		return nil, fmt.Errorf("no table")
	}
	col, err := columns(table[0], "mode", "plans", "workload", "tool", "boxoffice req/s", "trivial req/s")
	if err != nil {
		return nil, err
	}
	var rows []row
	for _, cells := range table[1:] {
		box, err1 := strconv.ParseFloat(cells[col["boxoffice req/s"]], 64)
		triv, err2 := strconv.ParseFloat(cells[col["trivial req/s"]], 64)
		if err := cmp.Or(err1, err2); err != nil {
			return nil, fmt.Errorf("row %q: %w", cells, err)
		}
		rows = append(rows, row{mode: cells[col["mode"]], size: cells[col["plans"]], workload: cells[col["workload"]],
			tool: cells[col["tool"]], box: result{reqs: box}, trivial: result{reqs: triv}})
	}
	return rows, nil
}

// ingestRows reads an ingest table back into the rows that ingestReport wrote: a row
// with a mode starts a setup and catalog, the rows after it without one add processes.
func ingestRows(table [][]string) ([]ingestRow, error) {
	if len(table) == 0 {
		return nil, fmt.Errorf("no table")
	}
	col, err := columns(table[0], "mode", "plans", "served after", "process", "peak RSS")
	if err != nil {
		return nil, err
	}
	var rows []ingestRow
	for _, cells := range table[1:] {
		if mode := cells[col["mode"]]; mode != "" {
			sizes, err := parseSizes(cells[col["plans"]])
			if err != nil || len(sizes) != 1 {
				return nil, fmt.Errorf("row %q: plans: %v", cells, err)
			}
			served, err := strconv.ParseFloat(strings.TrimSuffix(cells[col["served after"]], " s"), 64)
			if err != nil {
				return nil, fmt.Errorf("row %q: served after: %w", cells, err)
			}
			rows = append(rows, ingestRow{mode: mode, size: sizeName(sizes[0]), plans: sizes[0],
				served: time.Duration(served * float64(time.Second))})
		}
		if len(rows) == 0 {
			return nil, fmt.Errorf("row %q: a process before any mode", cells)
		}
		mib, err := strconv.ParseFloat(strings.TrimSuffix(cells[col["peak RSS"]], " MiB"), 64)
		if err != nil {
			return nil, fmt.Errorf("row %q: peak RSS: %w", cells, err)
		}
		r := &rows[len(rows)-1]
		r.procs = append(r.procs, procUsage{name: cells[col["process"]], peak: int64(mib * (1 << 20))})
	}
	return rows, nil
}
