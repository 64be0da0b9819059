//go:build bench

package bench

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// priceQuotes is how many distinct quotes (product × location × membership) the price
// load cycles through: all cached after the warm-up, like the seed's locustfile
// hammering a few products.
const priceQuotes = 200

// TestBenchPrice is `make bench-price`: the seed's locustfile as a benchmark. It loads
// POST /api/v1/price with cache hits (quotes warmed first) on a 10k-plan catalog, with
// wrk (peak throughput) and vegeta (latency at BENCH_RATE), beside a trivial handler that
// reads the same request bodies and writes back the same response bytes.
func TestBenchPrice(t *testing.T) {
	s, err := loadSettings()
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t, s)
	vegeta := vegetaBinary(t)
	tr := &trivialPrice{}
	triv := startTrivial(t, tr)
	const n = 10_000
	var rows []row
	for _, mode := range s.modes {
		t.Run(mode, func(t *testing.T) {
			start := time.Now()
			box, err := startMode(t, mode, bin, n)
			if err != nil {
				t.Skipf("services not reachable: %v", err)
			}
			c := simConfig(n)
			waitIngest(t, box.base, c.BasePlans*c.Plans, start, s.ingestTimeout)
			bodies, answers := warmQuotes(t, box.base)
			tr.serve(answers)
			rows = append(rows, measurePrice(t, s, vegeta, mode, box, triv, bodies)...)
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "POST /api/v1/price, %d distinct quotes, all cache hits; wrk: %d threads, %d connections, %s per run; vegeta: %d req/s; median of %d run(s).\n\n",
		priceQuotes, s.wrkThreads, s.wrkConns, s.duration, s.rate, s.repeat)
	b.WriteString("| mode | tool | boxoffice req/s | trivial req/s | ratio | boxoffice p50 | boxoffice p99 | trivial p50 | trivial p99 | p99 ratio | boxoffice CPU/req | trivial CPU/req | CPU ratio | errors (box/trivial) |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f | %.2f× | %s | %s | %s | %s | %.2f× | %s | %s | %.2f× | %d/%d |\n",
			r.mode, r.tool, r.box.reqs, r.trivial.reqs, ratioOf(r.box.reqs, r.trivial.reqs),
			ms(r.box.p50), ms(r.box.p99), ms(r.trivial.p50), ms(r.trivial.p99),
			ratioOf(float64(r.box.p99), float64(r.trivial.p99)),
			us(r.box.cpu), us(r.trivial.cpu), ratioOf(float64(r.box.cpu), float64(r.trivial.cpu)),
			r.box.errors, r.trivial.errors)
	}
	b.WriteString("\nLatencies in ms. CPU/req: the server process's CPU time per request, in µs; in distributed mode the API process's alone, without the Redis MGET each quote also costs.\n")
	fmt.Println()
	fmt.Print(b.String())
	if out := os.Getenv("BENCH_PRICE_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// warmQuotes picks priceQuotes quotes of the catalog's first events' products, asks for
// each until it comes from the cache, and returns the request bodies with the cached
// answers by body.
func warmQuotes(t *testing.T, base string) ([]string, map[string][]byte) {
	t.Helper()
	var search struct {
		Data struct {
			Events []struct {
				ID string `json:"id"`
			} `json:"events"`
		} `json:"data"`
	}
	getJSON(t, base+"/search", &search)
	var products []string
	for _, e := range search.Data.Events {
		var list struct {
			Products []struct {
				ProductID string `json:"product_id"`
			} `json:"products"`
		}
		getJSON(t, base+"/api/v1/events/"+e.ID+"/products", &list)
		for _, p := range list.Products {
			products = append(products, p.ProductID)
		}
		if len(products)*6 >= priceQuotes {
			break
		}
	}
	var bodies []string
	answers := map[string][]byte{}
	for i := 0; len(bodies) < priceQuotes; i++ {
		body := fmt.Sprintf(`{"product_id":%q,"user_location":%q,"is_prime_member":%t}`,
			products[i/6%len(products)], []string{"madrid", "barcelona", "sevilla"}[i%3], i/3%2 == 1)
		for range 2 {
			answers[body] = postPrice(t, base, body)
		}
		if !bytes.Contains(answers[body], []byte(`"source":"cache"`)) {
			t.Fatalf("the second quote of %s did not come from the cache: %s", body, answers[body])
		}
		bodies = append(bodies, body)
	}
	return bodies, answers
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := plainClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func postPrice(t *testing.T, base, body string) []byte {
	t.Helper()
	resp, err := plainClient.Post(base+"/api/v1/price", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v1/price %s: %s %s %v", body, resp.Status, b, err)
	}
	return b
}

// wrkPriceScript posts the bodies in turn.
const wrkPriceScript = `wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = { %s }
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, "/api/v1/price", nil, bodies[i %% #bodies + 1])
end
`

func measurePrice(t *testing.T, s settings, vegeta, mode string, box, triv server, bodies []string) []row {
	t.Helper()
	dir := t.TempDir()
	quoted := make([]string, len(bodies))
	for i, b := range bodies {
		quoted[i] = strconv.Quote(b)
	}
	script := filepath.Join(dir, "price.lua")
	if err := os.WriteFile(script, fmt.Appendf(nil, wrkPriceScript, strings.Join(quoted, ", ")), 0o644); err != nil {
		t.Fatal(err)
	}
	targets := func(base string) string {
		file := filepath.Join(dir, strings.NewReplacer(":", "_", "/", "_").Replace(base)+".jsonl")
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		for i := range max(len(bodies), 1000) {
			enc.Encode(map[string]any{
				"method": "POST", "url": base + "/api/v1/price",
				"body":   base64.StdEncoding.EncodeToString([]byte(bodies[i%len(bodies)])),
				"header": map[string][]string{"Content-Type": {"application/json"}},
			})
		}
		if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	servers := []server{box, triv}
	for _, srv := range servers {
		runWrk(t, s, srv.base, script, 2*time.Second)
	}
	var wrkRes, vegRes [2][]result
	for rep := range s.repeat {
		for i, srv := range servers {
			r := srv.load(func() result { return runWrk(t, s, srv.base, script, s.duration) })
			wrkRes[i] = append(wrkRes[i], r)
			t.Logf("%s price %s wrk #%d: %s", mode, srv.name, rep+1, r)
			pause()
		}
		for i, srv := range servers {
			file := targets(srv.base)
			r := srv.load(func() result { return runVegeta(t, s, vegeta, file, s.duration) })
			vegRes[i] = append(vegRes[i], r)
			t.Logf("%s price %s vegeta #%d: %s", mode, srv.name, rep+1, r)
			pause()
		}
	}
	return []row{
		{mode, "10k", "price", "wrk", median(wrkRes[0]), median(wrkRes[1])},
		{mode, "10k", "price", fmt.Sprintf("vegeta %d/s", s.rate), median(vegRes[0]), median(vegRes[1])},
	}
}

// trivialPrice is the price load's yardstick: it reads the request body, as any JSON
// POST handler must, and writes back boxoffice's answer to that body.
type trivialPrice struct {
	mu      sync.RWMutex
	answers map[string][]byte
}

func (tr *trivialPrice) serve(answers map[string][]byte) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.answers = answers
}

func (tr *trivialPrice) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
	tr.mu.RLock()
	answer := tr.answers[string(body)]
	tr.mu.RUnlock()
	h := w.Header()
	h["Content-Type"] = []string{"application/json; charset=utf-8"}
	h["Content-Length"] = []string{strconv.Itoa(len(answer))}
	w.Write(answer)
}
