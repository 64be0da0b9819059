//go:build bench

package bench

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"boxoffice/providersim"
)

// TestBenchRestart measures an API process starting on a stored catalog, as after a
// deploy or a crash: in distributed mode, one worker, api and ingest process ingest the
// synthetic catalog of BENCH_RESTART_SIZE plans (default 1m); then the ingest and api
// processes stop, and an api process of each binary of BENCH_RESTART_BINS (default the
// one built) starts in turn on the stored catalog, timed from its start until its
// search index holds every plan, with its peak resident memory (VmHWM: the load's
// peak) and its resident memory then, beside the bytes of JSON it serves (the
// Content-Length of a /search of the whole catalog). It is not part of `make bench`:
// BENCH_RUN='^TestBenchRestart$' ./scripts/bench.sh runs it.
func TestBenchRestart(t *testing.T) {
	s, err := loadSettings()
	if err != nil {
		t.Fatal(err)
	}
	sizes, err := parseSizes(env("BENCH_RESTART_SIZE", "1m"))
	if err != nil || len(sizes) != 1 {
		t.Fatalf("BENCH_RESTART_SIZE: want one size, such as 1m: %q (%v)", os.Getenv("BENCH_RESTART_SIZE"), err)
	}
	bins := []string{buildBinary(t, s)}
	if v := os.Getenv("BENCH_RESTART_BINS"); v != "" {
		bins = strings.Split(v, ",")
	}
	primary, replica, redisURL, brokerURL, err := distributedServices()
	if err != nil {
		t.Skipf("services not reachable: %v", err)
	}
	// The roles start from bin; each binary measured is copied there in turn.
	bin := filepath.Join(t.TempDir(), "boxoffice")
	install := func(from string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin+".new", b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(bin+".new", bin); err != nil {
			t.Fatal(err)
		}
	}
	install(bins[0])
	c := simConfig(sizes[0])
	want := c.BasePlans * c.Plans
	provider := providersim.New(c)
	t.Cleanup(func() { provider.Close() })
	_, startRole := startRolesOn(t, bin, provider, nil, []string{"worker"}, primary, replica, redisURL, brokerURL)
	start := time.Now()
	api, stopAPI := startRole("api")
	_, stopIngest := startRole("ingest")
	served := waitIndexed(t, api.base, want, start, s.ingestTimeout)
	t.Logf("%d plans ingested and served %.1f s after start", want, served.Seconds())
	stopIngest()
	stopAPI()

	var b strings.Builder
	b.WriteString("| api binary | plans | JSON served | served after start | peak RSS | RSS once served | peak ÷ JSON | load average before, after |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|---|\n")
	mib := func(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
	for _, from := range bins {
		install(from)
		before := loadavg()
		start := time.Now()
		api, stop := startRole("api")
		served := waitIndexed(t, api.base, want, start, s.ingestTimeout)
		peak, rss := memory(api.pid)
		size := searchBytes(t, api.base)
		stop()
		t.Logf("%s: served %.1f s after start, peak RSS %s, %s of JSON", from, served.Seconds(), mib(peak), mib(size))
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f s | %s | %s | %.2f× | %s; %s |\n", filepath.Base(from), sizeName(want), mib(size),
			served.Seconds(), mib(peak), mib(rss), float64(peak)/float64(size), before, loadavg())
	}
	fmt.Println()
	fmt.Print(b.String())
}

// searchBytes returns the length of base's /search of the whole catalog, as its
// Content-Length states it, reading none of the body.
func searchBytes(t *testing.T, base string) int64 {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/search", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength <= 0 {
		t.Fatalf("GET %s/search: %s, Content-Length %d; want 200 and a length", base, resp.Status, resp.ContentLength)
	}
	return resp.ContentLength
}
