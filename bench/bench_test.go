//go:build bench

package bench

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// The targets (issue 4): throughput against the trivial handler, and p99 at a
// fixed rate.
const (
	hotTarget    = 0.6
	randomTarget = 0.4
	p99Target    = 5 * time.Millisecond
	p99Rate      = 10_000
	minRandom    = 200_000 // distinct random windows in a vegeta targets file, at least
)

// row is one line of the results table: one workload and tool, boxoffice beside the
// trivial handler.
type row struct {
	mode, size, workload, tool string
	box, trivial               result
}

// catalogNote is what the table's notes say about one catalog.
type catalogNote struct {
	mode, size string
	plans      int
	ingest     time.Duration
	w          workloads
	load       [2]string // /proc/loadavg before and after the load runs
}

// TestBench is `make bench`; see the package comment.
func TestBench(t *testing.T) {
	s, err := loadSettings()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Fatal("wrk is not installed: run scripts/bench.sh, which installs it")
	}
	bin := buildBinary(t, s)
	vegeta := vegetaBinary(t)
	tr := &trivial{}
	triv := startTrivial(t, tr)

	var rows []row
	var notes []catalogNote
	var skipped []string
	for _, mode := range s.modes {
		sizes := s.sizes
		if mode == "distributed" {
			sizes = nil
			for _, n := range s.sizes {
				for _, d := range s.distributedSizes {
					if n == d {
						sizes = append(sizes, n)
					}
				}
			}
		}
		for _, n := range sizes {
			name := mode + "/" + sizeName(n)
			t.Run(name, func(t *testing.T) {
				start := time.Now()
				box, err := startMode(t, mode, bin, n)
				if err != nil {
					skipped = append(skipped, fmt.Sprintf("%s: services not reachable (%v)", name, err))
					t.Skipf("services not reachable: %v", err)
				}
				c := simConfig(n)
				want := c.BasePlans * c.Plans
				ingest := waitIngest(t, box.base, want, start, s.ingestTimeout)
				t.Logf("%s: %d plans served %s after start", name, want, ingest.Round(100*time.Millisecond))
				w := calibrate(t, box.base)
				calibratePages(t, box.base, &w)
				tr.serve(merge(w.hot, w.pages), w.random)
				before := loadavg()
				rows = append(rows, measure(t, s, vegeta, mode, sizeName(want), box, triv, w)...)
				notes = append(notes, catalogNote{mode, sizeName(want), want, ingest, w, [2]string{before, loadavg()}})
			})
		}
	}
	table := report(s, rows, notes, skipped)
	fmt.Println()
	fmt.Print(table)
	if s.out != "" {
		if err := os.WriteFile(s.out, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
	if len(rows) > 0 {
		writeCharts(t, map[string][]byte{"search-ratio.svg": ratioChart(rows).SVG()})
	}
}

// measure loads boxoffice (box) and the trivial handler (triv), one after the other,
// for each workload and tool.
func measure(t *testing.T, s settings, vegeta, mode, size string, box, triv server, w workloads) []row {
	t.Helper()
	dir := t.TempDir()
	hotLua, randomLua := writeWrkScripts(t, dir, w, s.wrkThreads, s.gzip)
	pagesLua := filepath.Join(dir, "pages.lua")
	writeWrkList(t, pagesLua, w.pagePaths, s.gzip)
	requests := max(minRandom, int(float64(s.rate)*s.duration.Seconds()*1.1))
	random := randomPaths(rand.New(rand.NewPCG(3, 4)), requests, w.length)
	targets := func(base, name string, paths []string) string {
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".targets")
		writeTargets(t, file, base, paths, len(paths))
		return file
	}
	servers := []server{box, triv}
	var rows []row
	for _, wl := range []struct {
		name, lua string
		paths     []string
	}{
		{"hot", hotLua, w.hotPaths},
		{"random", randomLua, random},
		{pagesWorkload, pagesLua, w.pagePaths},
	} {
		// Warm both servers up: connections, caches, the Go runtime's heap.
		for _, srv := range servers {
			runWrk(t, s, srv.base, wl.lua, 2*time.Second)
		}
		var wrkRes, vegRes [2][]result
		for rep := range s.repeat {
			for i, srv := range servers {
				r := srv.load(func() result { return runWrk(t, s, srv.base, wl.lua, s.duration) })
				wrkRes[i] = append(wrkRes[i], r)
				t.Logf("%s %s %s %s wrk #%d: %s", mode, size, wl.name, srv.name, rep+1, r)
				pause()
			}
			for i, srv := range servers {
				file := targets(srv.base, wl.name+"-"+srv.name, wl.paths)
				r := srv.load(func() result { return runVegeta(t, s, vegeta, file, s.duration) })
				vegRes[i] = append(vegRes[i], r)
				t.Logf("%s %s %s %s vegeta #%d: %s", mode, size, wl.name, srv.name, rep+1, r)
				pause()
			}
		}
		rows = append(rows,
			row{mode, size, wl.name, "wrk", median(wrkRes[0]), median(wrkRes[1])},
			row{mode, size, wl.name, fmt.Sprintf("vegeta %d/s", s.rate), median(vegRes[0]), median(vegRes[1])})
	}
	return rows
}

// pagesWorkload names the paginated workload in the table.
var pagesWorkload = fmt.Sprintf("pages of %d", pageLimit)

// merge returns the responses of a and b in one map.
func merge(a, b map[string]variants) map[string]variants {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return m
}

// median returns the median of each figure of rs on its own.
func median(rs []result) result {
	pick := func(f func(r result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return result{
		reqs:     pick(func(r result) float64 { return r.reqs }),
		p50:      time.Duration(pick(func(r result) float64 { return float64(r.p50) })),
		p99:      time.Duration(pick(func(r result) float64 { return float64(r.p99) })),
		requests: int(pick(func(r result) float64 { return float64(r.requests) })),
		errors:   int(pick(func(r result) float64 { return float64(r.errors) })),
		cpu:      time.Duration(pick(func(r result) float64 { return float64(r.cpu) })),
	}
}

// loadavg returns the 1-, 5- and 15-minute load averages, or "?" off Linux.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// pause lets the previous run's connections close and its processes go idle.
func pause() {
	runtime.GC()
	time.Sleep(3 * time.Second)
}

// report writes the results as Markdown: the table, the targets, and notes on each
// catalog.
func report(s settings, rows []row, notes []catalogNote, skipped []string) string {
	var b strings.Builder
	encoding := "identity"
	if s.gzip {
		encoding = "gzip"
	}
	fmt.Fprintf(&b, "wrk: %d threads, %d connections, %s per run; vegeta: %d req/s for %s; both send Accept-Encoding: %s; each figure the median of %d run(s), alternating boxoffice and the trivial handler.\n\n",
		s.wrkThreads, s.wrkConns, s.duration, s.rate, s.duration, encoding, s.repeat)
	b.WriteString("| mode | plans | workload | tool | boxoffice req/s | trivial req/s | ratio | boxoffice p50 | boxoffice p99 | trivial p50 | trivial p99 | p99 ratio | boxoffice CPU/req | trivial CPU/req | CPU ratio | errors (box/trivial) | target |\n")
	b.WriteString("|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, r := range rows {
		ratio := ratioOf(r.box.reqs, r.trivial.reqs)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.0f | %.0f | %.2f× | %s | %s | %s | %s | %.2f× | %s | %s | %.2f× | %d/%d | %s |\n",
			r.mode, r.size, r.workload, r.tool, r.box.reqs, r.trivial.reqs, ratio,
			ms(r.box.p50), ms(r.box.p99), ms(r.trivial.p50), ms(r.trivial.p99), ratioOf(float64(r.box.p99), float64(r.trivial.p99)),
			us(r.box.cpu), us(r.trivial.cpu), ratioOf(float64(r.box.cpu), float64(r.trivial.cpu)),
			r.box.errors, r.trivial.errors, target(s, r, ratio))
	}
	b.WriteString("\nLatencies in ms. wrk rows: peak throughput, latencies at saturation. vegeta rows: throughput is successful responses per second at the fixed rate.\n")
	b.WriteString("CPU/req: the server process's CPU time (user + system, all threads) per request, in µs, the server time a request costs; the machine's noise moves it far less than the latencies. In distributed mode, the API process's.\n")
	b.WriteString("Targets (issue 4): hot ≥ 0.6× and random ≥ 0.4× the trivial handler's wrk throughput; p99 ≤ 5 ms at a fixed 10k req/s.\n\n")
	for _, n := range notes {
		fmt.Fprintf(&b, "- %s %s: %s: %d pages deep in the catalog, each the page after a first page of %d from a random start, asked by its cursor; %.0f B each on average, never gzipped.\n",
			n.mode, n.size, pagesWorkload, len(n.w.pagePaths), pageLimit, n.w.pageSize)
		fmt.Fprintf(&b, "- %s %s: %d plans served %.1f s after start; windows of %s; hot windows return %.1f plans (%.0f B, sent as %.0f B once warm) on average, random ones %.1f plans (%.0f B) on average (for those the trivial handler serves a %d B one, sent as %d B on its first use); load average %s before the runs, %s after.\n",
			n.mode, n.size, n.plans, n.ingest.Seconds(), n.w.length, n.w.hotPlans, n.w.hotSize, n.w.hotSent(), n.w.randomPlans, n.w.randomSize,
			len(n.w.random.plain.body), len(n.w.random.gzip.body), n.load[0], n.load[1])
	}
	for _, sk := range skipped {
		fmt.Fprintf(&b, "- skipped %s\n", sk)
	}
	return b.String()
}

// target says whether a row meets the target for it.
func target(s settings, r row, ratio float64) string {
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	switch {
	case strings.HasPrefix(r.tool, "vegeta"):
		if s.rate != p99Rate {
			return fmt.Sprintf("p99 ≤ 5 ms: n/a at %d/s", s.rate)
		}
		return "p99 ≤ 5 ms: " + met(r.box.p99 <= p99Target && r.box.errors == 0)
	case r.workload == "hot":
		return "≥ 0.6×: " + met(ratio >= hotTarget && r.box.errors == 0)
	case r.workload == pagesWorkload:
		return "none (issue 17: a page costs what a search of its size does)"
	default:
		return "≥ 0.4×: " + met(ratio >= randomTarget && r.box.errors == 0)
	}
}

func ratioOf(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// us formats a CPU time per request in µs, or "n/a" when unknown.
func us(d time.Duration) string {
	if d == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond))
}
