//go:build bench

package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"boxoffice/providersim"
)

// soakEnv is the environment of every process of the soak: syncs every 10 s (the
// simulator churns between them), rate limits on but far above the load (so the
// limiter, and in distributed mode its reports to Redis, run all along), keys for the
// write endpoints.
var soakEnv = []string{
	"SYNC_INTERVAL_SECONDS=10", "API_KEYS=" + benchAPIKey,
	"RATE_LIMIT_PER_SECOND=1000000", "RATE_LIMIT_BURST=1000000",
	"RATE_LIMIT_WRITES_PER_SECOND=1000000", "RATE_LIMIT_WRITES_BURST=1000000",
}

// soakSim is the soak's provider: 10k plans, with the simulator's default churn
// (plans vanish, prices, times and sell modes change, a few dates are invalid).
func soakSim() providersim.Config {
	c := providersim.DefaultConfig()
	c.Mode, c.Seed, c.BasePlans, c.Plans, c.Zones = providersim.Synthetic, simSeed, 100, 100, 2
	return c
}

// usage is a process's resources at one moment, from its /metrics.
type usage struct {
	goroutines, fds, rss float64
}

func (u usage) String() string {
	return fmt.Sprintf("%.0f goroutines, %.0f fds, %.1f MiB RSS", u.goroutines, u.fds, u.rss/(1<<20))
}

// TestSoak is `make soak`: SOAK_DURATION (default 10m) of mixed traffic at SOAK_RATE
// requests a second (default 200) on each mode of BENCH_MODES: searches (hot and random
// windows), price quotes, market events (which trigger recalculations) and other
// reads, while the provider churns and syncs run every 10 s. It reports each process's
// goroutines, open file descriptors and resident memory at the start (after a
// warm-up) and at the end, and fails when goroutines or descriptors more than doubled
// (plus 50): those only grow without bound through a leak. Memory is reported, not
// judged: the heap breathes with the garbage collector.
func TestSoak(t *testing.T) {
	s, err := loadSettings()
	if err != nil {
		t.Fatal(err)
	}
	duration, err := time.ParseDuration(env("SOAK_DURATION", "10m"))
	if err != nil || duration < 10*time.Second {
		t.Fatalf("SOAK_DURATION: want a duration of at least 10s: %q", os.Getenv("SOAK_DURATION"))
	}
	rate, err := strconv.Atoi(env("SOAK_RATE", "200"))
	if err != nil || rate <= 0 {
		t.Fatalf("SOAK_RATE: want a positive number: %q", os.Getenv("SOAK_RATE"))
	}
	bin := buildBinary(t, s)
	var report strings.Builder
	fmt.Fprintf(&report, "Soak: %s of mixed traffic at %d requests/s per mode (searches 70 %%, quotes 20 %%, market events 5 %%, other reads 5 %%), syncs with churn every 10 s, 10k plans.\n\n", duration, rate)
	report.WriteString("| mode | process | start | end | verdict |\n|---|---|---|---|---|\n")
	var counts []string
	for _, mode := range s.modes {
		t.Run(mode, func(t *testing.T) {
			start := time.Now()
			var procs []server
			if mode == "embedded" {
				procs = []server{startSoakEmbedded(t, bin)}
			} else {
				primary, replica, redisURL, brokerURL, err := distributedServices()
				if err != nil {
					t.Skipf("services not reachable: %v", err)
				}
				procs = startRoles(t, bin, soakSim(), soakEnv, []string{"worker", "api", "ingest", "listener"}, primary, replica, redisURL, brokerURL)
			}
			api := procs[0]
			if mode != "embedded" {
				api = procs[1]
			}
			waitServing(t, api.base, start, s.ingestTimeout)
			products := soakProducts(t, api.base)
			warm := min(30*time.Second, duration/5)
			st := newSoakTraffic(api.base, products)
			stop := st.run(rate)
			time.Sleep(warm)
			before := make([]usage, len(procs))
			for i, p := range procs {
				before[i] = sample(t, p.base)
				t.Logf("%s %s start: %s", mode, p.name, before[i])
			}
			for end := time.Now().Add(duration - warm); time.Now().Before(end); {
				time.Sleep(min(time.Minute, time.Until(end)))
				for _, p := range procs {
					t.Logf("%s %s at %s: %s", mode, p.name, time.Since(start).Round(time.Second), sample(t, p.base))
				}
			}
			stop()
			time.Sleep(3 * time.Second) // let the last requests and their connections end
			for i, p := range procs {
				after := sample(t, p.base)
				verdict := "stable"
				if after.goroutines > 2*before[i].goroutines+50 || after.fds > 2*before[i].fds+50 {
					verdict = "**grew**"
					t.Errorf("%s %s: from %s to %s", mode, p.name, before[i], after)
				}
				fmt.Fprintf(&report, "| %s | %s | %s | %s | %s |\n", mode, p.name, before[i], after, verdict)
			}
			counts = append(counts, fmt.Sprintf("- %s: %s", mode, st.counts()))
		})
	}
	report.WriteString("\nResponses by class:\n")
	report.WriteString(strings.Join(counts, "\n") + "\n")
	fmt.Println()
	fmt.Print(report.String())
	if out := os.Getenv("SOAK_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(report.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// startSoakEmbedded starts `boxoffice run` with the soak's simulator built in.
func startSoakEmbedded(t *testing.T, bin string) server {
	t.Helper()
	c := soakSim()
	addr := freeAddr(t)
	args := []string{"run", "--http-addr=" + addr, "--data-dir=" + t.TempDir(), "--env-file=/dev/null",
		"--sim-mode=synthetic", "--sim-seed=" + strconv.FormatUint(c.Seed, 10),
		"--sim-base-plans=" + strconv.Itoa(c.BasePlans), "--sim-plans=" + strconv.Itoa(c.Plans),
		"--sim-zones=" + strconv.Itoa(c.Zones)}
	pid := startProc(t, bin, "run", append(baseEnv(), soakEnv...), args...)
	return server{name: "run", base: "http://" + addr, pid: pid}
}

// waitServing waits until base serves plans (the first sync applied).
func waitServing(t *testing.T, base string, start time.Time, timeout time.Duration) {
	t.Helper()
	for {
		if n, err := countPlans(t.Context(), base); err == nil && n > 0 {
			t.Logf("%d plans served %s after start", n, time.Since(start).Round(100*time.Millisecond))
			return
		}
		if time.Since(start) > timeout {
			t.Fatalf("no plans served after %s", timeout)
		}
		time.Sleep(time.Second)
	}
}

// soakProducts returns product ids of the first events the catalog serves.
func soakProducts(t *testing.T, base string) []string {
	t.Helper()
	var events struct {
		Data struct {
			Events []struct{ ID string } `json:"events"`
		} `json:"data"`
	}
	getJSON(t, base+searchPath(catalogStart, 30*24*time.Hour), &events)
	var ids []string
	for _, e := range events.Data.Events[:min(50, len(events.Data.Events))] {
		var listing struct {
			Products []struct {
				ProductID string `json:"product_id"`
			} `json:"products"`
		}
		getJSON(t, base+"/api/v1/events/"+e.ID+"/products", &listing)
		for _, p := range listing.Products {
			ids = append(ids, p.ProductID)
		}
	}
	if len(ids) == 0 {
		t.Fatal("no products to quote")
	}
	return ids
}

// sample reads a process's goroutines, open descriptors and resident memory from its
// /metrics (the Go and process collectors).
func sample(t *testing.T, base string) usage {
	t.Helper()
	resp, err := plainClient.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET %s/metrics: %v", base, err)
	}
	defer resp.Body.Close()
	var u usage
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			u.goroutines = f
		case "process_open_fds":
			u.fds = f
		case "process_resident_memory_bytes":
			u.rss = f
		}
	}
	return u
}

// soakTraffic is the soak's load on one API: requests of each class at a fixed total
// rate, counted by class and outcome.
type soakTraffic struct {
	base     string
	products []string
	client   *http.Client
	mu       sync.Mutex // guards outcomes
	outcomes map[string]int
}

func newSoakTraffic(base string, products []string) *soakTraffic {
	return &soakTraffic{base: base, products: products, outcomes: map[string]int{},
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// run sends rate requests a second from 8 goroutines until the returned stop is called.
func (st *soakTraffic) run(rate int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	const workers = 8
	var seq atomic.Int64
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			tick := time.NewTicker(time.Duration(workers) * time.Second / time.Duration(rate))
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				st.one(rng, seq.Add(1))
			}
		})
	}
	return func() { close(done); wg.Wait() }
}

// one sends one request of a class drawn by the mix.
func (st *soakTraffic) one(rng *rand.Rand, n int64) {
	var class string
	var req *http.Request
	switch p := rng.IntN(100); {
	case p < 35: // a hot window
		class = "search"
		req, _ = http.NewRequest(http.MethodGet, st.base+searchPath(hotStarts[rng.IntN(len(hotStarts))], 7*24*time.Hour), nil)
	case p < 70: // a random window
		class = "search"
		from := catalogStart.Add(time.Duration(rng.Int64N(int64(catalogEnd.Sub(catalogStart)))))
		req, _ = http.NewRequest(http.MethodGet, st.base+searchPath(from.Truncate(time.Second), 24*time.Hour), nil)
	case p < 90:
		class = "quote"
		body, _ := json.Marshal(map[string]any{"product_id": st.products[rng.IntN(len(st.products))],
			"user_location": []string{"madrid", "sevilla", "bilbao", "ibiza"}[rng.IntN(4)], "is_prime_member": rng.IntN(2) == 0})
		req, _ = http.NewRequest(http.MethodPost, st.base+"/api/v1/price", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	case p < 95:
		class = "market event"
		body := fmt.Sprintf(`{"location":"madrid","multiplier":%.2f}`, 0.8+rng.Float64()*0.6)
		req, _ = http.NewRequest(http.MethodPost, st.base+"/api/v1/publish-market-event", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+benchAPIKey)
	default:
		class = "other read"
		req, _ = http.NewRequest(http.MethodGet, st.base+"/api/v1/tasks/"+fmt.Sprintf("00000000-0000-4000-8000-%012d", n%1000), nil)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	outcome := "error"
	resp, err := st.client.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		outcome = strconv.Itoa(resp.StatusCode)
	}
	st.mu.Lock()
	st.outcomes[class+" "+outcome]++
	st.mu.Unlock()
}

// counts lists the outcomes by class, sorted.
func (st *soakTraffic) counts() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var parts []string
	for k, v := range st.outcomes {
		parts = append(parts, fmt.Sprintf("%s: %d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
