//go:build bench

package bench

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// limiterTarget is the target for the rate limiter's cost: hot-window
// throughput with limiting on (far above the load) at most 5 % below limiting off.
const limiterTarget = 0.95

// limiterOn is the environment of the server with rate limiting on, far above what
// the load asks: every request takes the limiter's path and none is refused.
var limiterOn = []string{"RATE_LIMIT_PER_SECOND=1000000000", "RATE_LIMIT_BURST=1000000", "MAX_IN_FLIGHT=100000"}

// TestBenchLimiter is part of `make bench`: the cost of the HTTP edge's rate limiter on
// the read path. It starts two embedded servers on the same 10k-plan catalog, one with
// rate limiting off and one with it on, and loads their hot windows with wrk,
// alternating between them, BENCH_REPEAT times each; the table shows the medians and
// the ratio on/off. Both run on the machine's two cores with wrk, so each figure is
// only as steady as the machine.
func TestBenchLimiter(t *testing.T) {
	s, err := loadSettings()
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t, s)
	const n = 10_000
	start := time.Now()
	var off, on server
	var wg sync.WaitGroup
	off = startEmbedded(t, bin, n)
	on = startEmbedded(t, bin, n, limiterOn...)
	on.name, off.name = "limiter on", "limiter off"
	c := simConfig(n)
	for _, srv := range []server{off, on} {
		wg.Go(func() { waitIngest(t, srv.base, c.BasePlans*c.Plans, start, s.ingestTimeout) })
	}
	wg.Wait()
	w := calibrate(t, off.base)
	calibrate(t, on.base) // the same windows, warm in its caches too
	hotLua, _ := writeWrkScripts(t, t.TempDir(), w, s.wrkThreads, s.gzip)
	servers := []server{off, on}
	for _, srv := range servers {
		runWrk(t, s, srv.base, hotLua, 2*time.Second)
	}
	var res [2][]result
	for rep := range s.repeat {
		for i, srv := range servers {
			r := srv.load(func() result { return runWrk(t, s, srv.base, hotLua, s.duration) })
			res[i] = append(res[i], r)
			t.Logf("hot %s wrk #%d: %s", srv.name, rep+1, r)
			pause()
		}
	}
	offR, onR := median(res[0]), median(res[1])
	ratio := ratioOf(onR.reqs, offR.reqs)
	met := "met"
	if ratio < limiterTarget || onR.errors > 0 {
		met = "**not met**"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Rate limiter on (%s) against off, 10k plans, hot windows; wrk: %d threads, %d connections, %s per run; median of %d run(s), alternating.\n\n",
		strings.Join(limiterOn[:2], ", "), s.wrkThreads, s.wrkConns, s.duration, s.repeat)
	b.WriteString("| limiter | req/s | p50 | p99 | CPU/req | errors |\n|---|--:|--:|--:|--:|--:|\n")
	for _, r := range []struct {
		name string
		r    result
	}{{"off", offR}, {"on", onR}} {
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %d |\n", r.name, r.r.reqs, ms(r.r.p50), ms(r.r.p99), us(r.r.cpu), r.r.errors)
	}
	fmt.Fprintf(&b, "\nThroughput on/off: %.3f× (target ≥ %.2f×: %s); CPU per request on/off: %.3f×.\n",
		ratio, limiterTarget, met, ratioOf(float64(onR.cpu), float64(offR.cpu)))
	fmt.Println()
	fmt.Print(b.String())
	if out := os.Getenv("BENCH_LIMITER_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}
