//go:build bench

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// result is one load run against one server.
type result struct {
	reqs     float64       // requests per second (vegeta: successful responses per second)
	p50, p99 time.Duration // latency percentiles
	requests int           // requests sent
	errors   int           // non-2xx responses and socket errors
	cpu      time.Duration // the server process's CPU time per request; 0 when unknown
}

// String is the run as the test logs it.
func (r result) String() string {
	return fmt.Sprintf("%.0f req/s, p50 %s, p99 %s, %d errors, CPU %s µs/req", r.reqs, r.p50, r.p99, r.errors, us(r.cpu))
}

// server is one of the two servers a run loads: boxoffice's API, or the trivial handler.
type server struct {
	name, base string
	pid        int    // the process serving base, whose CPU time a run reads
	dataDir    string // embedded: its DATA_DIR
	schema     string // distributed: its PostgreSQL schema
}

// load runs f, a load run against srv, and adds the CPU time srv's process spent per
// request: user and system time, all threads, read from the kernel before and after.
// It is the server time a request costs, whatever the load tool costs on the same
// cores, and what else the machine is doing moves it far less than latency. In
// distributed mode it is the API process's alone; on the search path it calls nothing
// else.
func (srv server) load(f func() result) result {
	before, ok := cpuTime(srv.pid)
	r := f()
	if after, ok2 := cpuTime(srv.pid); ok && ok2 && r.requests > 0 {
		r.cpu = (after - before) / time.Duration(r.requests)
	}
	return r
}

// wrkRandomScript builds a distinct window per request: request k of thread tid starts
// (k·threads + tid)·61 s into the catalog, so no two requests of a run share a query.
const wrkRandomScript = `%s
local created = 0
function setup(thread)
  thread:set("tid", created)
  created = created + 1
end
local n = 0
request = function()
  n = n + 1
  local s = %d + ((n * %d + tid) * 61) %% %d
  return wrk.format(nil, "/search?starts_at=" .. os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ", s) ..
    "&ends_at=" .. os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ", s + %d))
end
`

// wrkHotScript cycles through a fixed list of queries.
const wrkHotScript = `%s
local paths = { %s }
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, paths[i %% #paths + 1])
end
`

// writeWrkScripts writes the hot and random Lua scripts for w into dir.
func writeWrkScripts(t *testing.T, dir string, w workloads, threads int, gzip bool) (hot, random string) {
	t.Helper()
	header := wrkHeader(gzip)
	hot, random = filepath.Join(dir, "hot.lua"), filepath.Join(dir, "random.lua")
	span := int64(catalogEnd.Sub(catalogStart) / time.Second)
	writeWrkList(t, hot, w.hotPaths, gzip)
	script := fmt.Appendf(nil, wrkRandomScript, header, catalogStart.Unix(), threads, span, int64(w.length/time.Second))
	if err := os.WriteFile(random, script, 0o644); err != nil {
		t.Fatal(err)
	}
	return hot, random
}

// wrkHeader is the Lua line that sets a script's Accept-Encoding.
func wrkHeader(gzip bool) string {
	if gzip {
		return `wrk.headers["Accept-Encoding"] = "gzip"`
	}
	return "-- no Accept-Encoding"
}

// writeWrkList writes to file a Lua script that cycles through paths.
func writeWrkList(t *testing.T, file string, paths []string, gzip bool) {
	t.Helper()
	quoted := make([]string, len(paths))
	for i, p := range paths {
		quoted[i] = strconv.Quote(p)
	}
	if err := os.WriteFile(file, fmt.Appendf(nil, wrkHotScript, wrkHeader(gzip), strings.Join(quoted, ", ")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runWrk loads base with wrk for d, requests built by script.
func runWrk(t *testing.T, s settings, base, script string, d time.Duration) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d+time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", "--latency",
		"-t"+strconv.Itoa(s.wrkThreads), "-c"+strconv.Itoa(s.wrkConns),
		"-d"+strconv.Itoa(int(d/time.Second))+"s", "--timeout", "5s", "-s", script, base).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	r, err := parseWrk(out)
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	return r
}

var (
	wrkRate      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkRequests  = regexp.MustCompile(`(\d+) requests in`)
	wrkNon2xx    = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket    = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkPercentil = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

// parseWrk reads wrk's --latency report.
func parseWrk(out []byte) (result, error) {
	var r result
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in the report")
	}
	r.reqs, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := wrkRequests.FindSubmatch(out); m != nil {
		r.requests, _ = strconv.Atoi(string(m[1]))
	}
	if m := wrkNon2xx.FindSubmatch(out); m != nil {
		n, _ := strconv.Atoi(string(m[1]))
		r.errors += n
	}
	if m := wrkSocket.FindSubmatch(out); m != nil {
		for _, g := range m[1:] {
			n, _ := strconv.Atoi(string(g))
			r.errors += n
		}
	}
	for _, m := range wrkPercentil.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(m[3])]
		d := time.Duration(v * float64(unit))
		if string(m[1]) == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	return r, nil
}

// vegetaBinary returns the path of the vegeta the module declares as a tool, built
// once, so the load runs without `go tool`'s wrapper in between.
func vegetaBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "tool", "-n", "vegeta").Output()
	if err != nil {
		t.Fatalf("go tool -n vegeta: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// writeTargets writes vegeta targets for base: paths cycled until n lines.
func writeTargets(t *testing.T, file, base string, paths []string, n int) {
	t.Helper()
	var b bytes.Buffer
	for i := range max(n, len(paths)) {
		b.WriteString("GET " + base + paths[i%len(paths)] + "\n")
	}
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runVegeta attacks the targets in file at s.rate for d and reports the latencies.
func runVegeta(t *testing.T, s settings, vegeta, file string, d time.Duration) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d+2*time.Minute)
	defer cancel()
	bin := file + ".bin"
	// Without the header, vegeta's Go client would add one and decompress: set it
	// either way, so both tools get the bytes as sent.
	encoding := "identity"
	if s.gzip {
		encoding = "gzip"
	}
	format := "http" // one "GET url" per line; a .jsonl file holds JSON targets, with bodies
	if strings.HasSuffix(file, ".jsonl") {
		format = "json"
	}
	attack := exec.CommandContext(ctx, vegeta, "attack", "-targets="+file, "-format="+format, "-rate="+strconv.Itoa(s.rate)+"/s",
		"-duration="+d.String(), "-timeout=5s", "-header=Accept-Encoding: "+encoding,
		// Bounded, so a stall cannot spiral into thousands of connections and run the
		// box out of ephemeral ports; a stall still shows in the latencies.
		"-max-workers=1000", "-max-connections=1000",
		// Read and discard the bodies instead of keeping each in the results file:
		// archiving 10k bodies a second cost vegeta more CPU than the server used,
		// on the cores the server shares with it.
		"-max-body=0", "-output="+bin)
	if out, err := attack.CombinedOutput(); err != nil {
		t.Fatalf("vegeta attack: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, vegeta, "report", "-type=json", bin).Output()
	if err != nil {
		t.Fatalf("vegeta report: %v", err)
	}
	os.Remove(bin)
	var rep struct {
		Latencies struct {
			P50 time.Duration `json:"50th"`
			P99 time.Duration `json:"99th"`
		} `json:"latencies"`
		Requests    int            `json:"requests"`
		Throughput  float64        `json:"throughput"`
		StatusCodes map[string]int `json:"status_codes"`
		Errors      []string       `json:"errors"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("vegeta report: %v\n%s", err, out)
	}
	r := result{reqs: rep.Throughput, p50: rep.Latencies.P50, p99: rep.Latencies.P99, requests: rep.Requests}
	for code, n := range rep.StatusCodes {
		if code != "200" {
			r.errors += n
		}
	}
	if len(rep.Errors) > 0 {
		t.Logf("vegeta errors: %q", rep.Errors[:min(3, len(rep.Errors))])
	}
	return r
}
