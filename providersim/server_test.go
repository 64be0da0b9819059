package providersim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRouting(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		want   int
	}{
		{name: "events", method: http.MethodGet, path: "/api/events", want: http.StatusOK},
		{name: "events with query", method: http.MethodGet, path: "/api/events?page=2", want: http.StatusOK},
		{name: "root", method: http.MethodGet, path: "/", want: http.StatusNotFound},
		{name: "trailing slash", method: http.MethodGet, path: "/api/events/", want: http.StatusNotFound},
		{name: "post", method: http.MethodPost, path: "/api/events", want: http.StatusMethodNotAllowed},
		{name: "head", method: http.MethodHead, path: "/api/events", want: http.StatusMethodNotAllowed},
	}
	sim := New(Config{})
	calls := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			sim.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			if w.Code != tt.want {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, w.Code, tt.want)
			}
			if tt.want == http.StatusMethodNotAllowed {
				if got := w.Header().Get("Allow"); got != http.MethodGet {
					t.Errorf("Allow = %q, want GET", got)
				}
			}
			if tt.want == http.StatusOK {
				calls++
			}
			if got := sim.Requests(); got != calls {
				t.Errorf("Requests() = %d, want %d", got, calls)
			}
		})
	}
}

func TestRotate(t *testing.T) {
	sim := New(Config{Mode: Rotate})
	etags := map[string]int{}
	for call, want := range []int{1, 2, 3, 1, 2} {
		call++
		w := get(t, sim)
		if w.Code != http.StatusOK {
			t.Fatalf("call %d: status = %d, want 200", call, w.Code)
		}
		if got := w.Body.Bytes(); !bytes.Equal(got, sim.samples[want-1].body) {
			t.Errorf("call %d: body is not sample %d:\n%s", call, want, got)
		}
		h := w.Header()
		if got := h.Get("Content-Type"); got != "application/xml" {
			t.Errorf("call %d: Content-Type = %q, want application/xml", call, got)
		}
		if got := h.Get(CallHeader); got != strconv.Itoa(call) {
			t.Errorf("call %d: %s = %q, want %d", call, CallHeader, got, call)
		}
		if got := h.Get("Content-Length"); got != strconv.Itoa(w.Body.Len()) {
			t.Errorf("call %d: Content-Length = %q, want %d", call, got, w.Body.Len())
		}
		etag := h.Get("ETag")
		if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 10 {
			t.Errorf("call %d: ETag = %q, want a strong entity tag", call, etag)
		}
		if sample, ok := etags[etag]; ok && sample != want {
			t.Errorf("call %d: sample %d has the ETag of sample %d", call, want, sample)
		}
		etags[etag] = want
	}
	if len(etags) != 3 {
		t.Errorf("distinct ETags = %d, want 3", len(etags))
	}
}

// TestSamplesAreTheFixtures keeps the embedded copies equal to provider/testdata.
func TestSamplesAreTheFixtures(t *testing.T) {
	for format, ff := range formatFiles {
		sim := New(Config{Format: format})
		for i, name := range ff.samples {
			want, err := os.ReadFile(filepath.Join("..", "provider", "testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sim.samples[i].body, want) {
				t.Errorf("samples/%s differs from provider/testdata/%s", name, name)
			}
		}
	}
}

func TestConditionalGet(t *testing.T) {
	sim := New(Config{Mode: Rotate})
	first := get(t, sim)
	etag1 := first.Header().Get("ETag")
	if got := get(t, sim, "If-None-Match", etag1); got.Code != http.StatusOK {
		t.Errorf("call 2 with sample 1's ETag = %d, want 200", got.Code)
	}
	get(t, sim) // call 3
	got := get(t, sim, "If-None-Match", `"other", W/`+etag1)
	if got.Code != http.StatusNotModified {
		t.Fatalf("call 4 (sample 1 again) with its ETag = %d, want 304", got.Code)
	}
	if got.Body.Len() != 0 {
		t.Errorf("304 body = %q, want none", got.Body)
	}
	if e := got.Header().Get("ETag"); e != etag1 {
		t.Errorf("304 ETag = %q, want %q", e, etag1)
	}

	cfg := syntheticConfig(20, 2, 1) // churns
	syn := New(cfg)
	etag := get(t, syn).Header().Get("ETag")
	if got := get(t, syn, "If-None-Match", etag); got.Code != http.StatusOK {
		t.Errorf("synthetic with churn, call 2 with call 1's ETag = %d, want 200", got.Code)
	}
}

func TestETagListed(t *testing.T) {
	const etag = `"abc"`
	tests := []struct {
		name   string
		header string
		want   bool
	}{
		{name: "absent", header: "", want: false},
		{name: "same", header: `"abc"`, want: true},
		{name: "other", header: `"abd"`, want: false},
		{name: "weak", header: `W/"abc"`, want: true},
		{name: "in a list", header: `"x", "y",W/"abc"`, want: true},
		{name: "comma inside a tag", header: `"a,b", "abc"`, want: true},
		{name: "star", header: "*", want: true},
		{name: "unquoted", header: "abc", want: false},
		{name: "unterminated", header: `"abc`, want: false},
		{name: "prefix", header: `"ab"`, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := etagListed(tt.header, etag); got != tt.want {
				t.Errorf("etagListed(%q, %q) = %v, want %v", tt.header, etag, got, tt.want)
			}
		})
	}
}

func TestSequence(t *testing.T) {
	cfg := syntheticConfig(30, 2, 2)
	cfg.Mode = Sequence
	cfg.Sequence = "1,2,malformed,500,truncated:3,synthetic,503,slow:3,2"
	cfg.SlowDelay = time.Nanosecond
	sim := New(cfg)
	tests := []struct {
		call   int
		status int
		body   string // "sample N", "malformed", "truncated", "synthetic" or "" for an error
	}{
		{call: 1, status: 200, body: "sample 1"},
		{call: 2, status: 200, body: "sample 2"},
		{call: 3, status: 200, body: "malformed"},
		{call: 4, status: 500},
		{call: 5, status: 200, body: "truncated"},
		{call: 6, status: 200, body: "synthetic"},
		{call: 7, status: 503},
		{call: 8, status: 200, body: "sample 3"},
		{call: 9, status: 200, body: "sample 2"},
		{call: 10, status: 200, body: "sample 2"},
		{call: 11, status: 200, body: "sample 2"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("call %d", tt.call), func(t *testing.T) {
			w := get(t, sim)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d", w.Code, tt.status)
			}
			if got := describe(sim, w.Body.Bytes()); got != tt.body && tt.body != "" {
				t.Errorf("body is %s, want %s", got, tt.body)
			}
		})
	}
}

// describe names a document the simulator served.
func describe(sim *Server, body []byte) string {
	for i, smp := range sim.samples {
		if bytes.Equal(body, smp.body) {
			return fmt.Sprintf("sample %d", i+1)
		}
	}
	err := wellFormed(body)
	switch {
	case err == nil && bytes.Contains(body, []byte(`base_plan_id="100000"`)):
		return "synthetic"
	case err == nil:
		return "another well-formed document"
	case strings.Contains(err.Error(), "unexpected EOF"):
		return "truncated"
	case strings.Contains(err.Error(), "closed by"):
		return "malformed"
	}
	return "broken: " + err.Error()
}

// TestFaults sets each fault rate to 1 and checks that every call gets the fault, in
// each mode.
func TestFaults(t *testing.T) {
	tests := []struct {
		name  string
		mode  Mode
		fault string
	}{
		{name: "rotate errors", mode: Rotate, fault: "error"},
		{name: "rotate malformed", mode: Rotate, fault: "malformed"},
		{name: "rotate truncated", mode: Rotate, fault: "truncated"},
		{name: "synthetic errors", mode: Synthetic, fault: "error"},
		{name: "synthetic malformed", mode: Synthetic, fault: "malformed"},
		{name: "synthetic truncated", mode: Synthetic, fault: "truncated"},
		{name: "sequence errors", mode: Sequence, fault: "error"},
		{name: "sequence malformed", mode: Sequence, fault: "malformed"},
		{name: "sequence truncated", mode: Sequence, fault: "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := syntheticConfig(40, 2, 2)
			cfg.Mode, cfg.Sequence = tt.mode, "2,synthetic,404"
			switch tt.fault {
			case "error":
				cfg.ErrorRate = 1
			case "malformed":
				cfg.MalformedRate = 1
			case "truncated":
				cfg.TruncateRate = 1
			}
			sim := New(cfg)
			statuses := map[int]int{}
			for call := 1; call <= 6; call++ {
				w := get(t, sim)
				statuses[w.Code]++
				if tt.fault == "error" {
					if w.Code != 500 && w.Code != 503 {
						t.Errorf("call %d: status = %d, want 500 or 503", call, w.Code)
					}
					continue
				}
				if w.Code != http.StatusOK {
					t.Fatalf("call %d: status = %d, want 200", call, w.Code)
				}
				if got := describe(sim, w.Body.Bytes()); got != tt.fault {
					t.Errorf("call %d: body is %s, want %s", call, got, tt.fault)
				}
				if etag := w.Header().Get("ETag"); etag != "" {
					t.Errorf("call %d: spoilt document has ETag %s, want none", call, etag)
				}
			}
			if tt.fault == "error" && (statuses[500] == 0 || statuses[503] == 0) {
				t.Errorf("statuses = %v, want both 500 and 503", statuses)
			}
		})
	}
}

// TestFaultsDeterministic checks that faults depend on the seed and the call only, and
// come at about their rates.
func TestFaultsDeterministic(t *testing.T) {
	cfg := Config{Seed: 7, ErrorRate: 0.2, MalformedRate: 0.1, TruncateRate: 0.1, HangRate: 0.1}
	a, b := New(cfg), New(cfg)
	cfg.Seed = 8
	other := New(cfg)
	kinds := map[StepKind]int{}
	differ := false
	const calls = 2000
	for call := 1; call <= calls; call++ {
		st := a.Step(call)
		if got := b.Step(call); got != st {
			t.Fatalf("call %d: Step = %v and %v for the same seed", call, st, got)
		}
		differ = differ || other.Step(call) != st
		kinds[st.Kind]++
	}
	if !differ {
		t.Errorf("seeds 7 and 8 give the same faults")
	}
	want := map[StepKind]float64{StepServe: 0.5, StepStatus: 0.2, StepMalformed: 0.1, StepTruncated: 0.1, StepHang: 0.1}
	for kind, rate := range want {
		if got := float64(kinds[kind]) / calls; got < rate*0.7 || got > rate*1.3 {
			t.Errorf("%s: %.3f of calls, want about %.2f", kind, got, rate)
		}
	}
}

// serveCounted starts sim on a test server that reports when a handler starts and
// when it returns.
func serveCounted(t *testing.T, sim *Server) (srv *httptest.Server, started, done chan struct{}) {
	t.Helper()
	started, done = make(chan struct{}, 10), make(chan struct{}, 10)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		started <- struct{}{}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, started, done
}

// waitDone waits for a handler to return. The timeout only turns a leaked handler
// into a clear failure rather than a test binary timeout.
func waitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("handler still running after the client went away")
	}
}

// TestWaitsEndWithTheClient checks that latency, slow steps and hangs end when the
// client goes away, however long they would wait.
func TestWaitsEndWithTheClient(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "latency", cfg: Config{Latency: time.Hour}},
		{name: "slow", cfg: Config{Mode: Sequence, Sequence: "slow", SlowDelay: time.Hour}},
		{name: "hang sample", cfg: Config{Mode: Sequence, Sequence: "hang:2"}},
		{name: "hang synthetic", cfg: Config{Mode: Sequence, Sequence: "hang:synthetic", BasePlans: 5000, Plans: 10, Zones: 3}},
		{name: "hang fault", cfg: Config{HangRate: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := New(tt.cfg)
			srv, started, done := serveCounted(t, sim)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+Path, nil)
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				resp *http.Response
				err  error
			}
			results := make(chan result, 1)
			go func() {
				resp, err := srv.Client().Do(req)
				results <- result{resp, err}
			}()
			<-started
			step := sim.Step(1)
			if step.Kind == StepHang {
				// Headers and part of the body arrive, then nothing.
				res := <-results
				if res.err != nil {
					t.Fatalf("GET = %v, want the headers of a hanging answer", res.err)
				}
				defer res.resp.Body.Close()
				if res.resp.StatusCode != http.StatusOK {
					t.Fatalf("status = %d, want 200", res.resp.StatusCode)
				}
				buf := make([]byte, 100)
				if _, err := io.ReadFull(res.resp.Body, buf); err != nil {
					t.Fatalf("read the first bytes: %v", err)
				}
				if !bytes.HasPrefix(buf, []byte("<?xml")) {
					t.Errorf("first bytes = %q, want a planList document", buf)
				}
			}
			cancel()
			waitDone(t, done)
			if step.Kind != StepHang {
				if res := <-results; res.err == nil {
					res.resp.Body.Close()
					t.Errorf("GET = %d, want an error after cancelling", res.resp.StatusCode)
				}
			}
		})
	}
}

// TestCloseEndsHangs checks that Close releases a hanging call, so that a server
// shutting down is not held up, and that its client sees the body cut short.
func TestCloseEndsHangs(t *testing.T) {
	sim := New(Config{Mode: Sequence, Sequence: "hang:1,slow:2", SlowDelay: time.Hour})
	srv, _, done := serveCounted(t, sim)
	resp, err := srv.Client().Get(srv.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := sim.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	waitDone(t, done)
	body, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read hanging body after Close = %v, want %v", err, io.ErrUnexpectedEOF)
	}
	if want := sim.samples[0].body[:sim.samples[0].cut]; !bytes.Equal(body, want) {
		t.Errorf("hanging body = %q, want %q", body, want)
	}

	// After Close, a slow step does not wait: it answers 503.
	resp2, err := srv.Client().Get(srv.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("slow step after Close = %d, want 503", resp2.StatusCode)
	}
}

// TestAbort checks that an abort step cuts the connection in the middle of the body.
func TestAbort(t *testing.T) {
	tests := []struct {
		name     string
		sequence string
	}{
		{name: "sample", sequence: "abort:3"},
		{name: "synthetic", sequence: "abort:synthetic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := syntheticConfig(3000, 10, 3)
			cfg.Mode, cfg.Sequence = Sequence, tt.sequence
			srv, _, done := serveCounted(t, New(cfg))
			resp, err := srv.Client().Get(srv.URL + Path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("read body = %v, want %v", err, io.ErrUnexpectedEOF)
			}
			if len(body) == 0 || !bytes.HasPrefix(body, []byte("<?xml")) {
				t.Errorf("body starts %q, want part of a document", body[:min(len(body), 40)])
			}
			waitDone(t, done)
		})
	}
}

// TestSpoiltSamples checks the malformed and truncated forms of each sample.
func TestSpoiltSamples(t *testing.T) {
	sim := New(Config{})
	for i, smp := range sim.samples {
		t.Run(strconv.Itoa(i+1), func(t *testing.T) {
			if err := wellFormed(smp.body); err != nil {
				t.Errorf("sample is not well-formed: %v", err)
			}
			err := wellFormed(smp.malformed)
			if err == nil || !strings.Contains(err.Error(), "element <plan> closed by </base_plan>") {
				t.Errorf("malformed sample: %v, want a mismatched tag", err)
			}
			if diff := cmp.Diff(len(smp.body)+len("base_"), len(smp.malformed)); diff != "" {
				t.Errorf("malformed length (-want +got):\n%s", diff)
			}
			cut := smp.body[:smp.cut]
			if err := wellFormed(cut); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
				t.Errorf("truncated sample: %v, want unexpected EOF", err)
			}
			if smp.cut < len(smp.body)/2 || cut[len(cut)-3] != '<' {
				t.Errorf("truncated sample ends %q at %d of %d, want a cut inside a tag past the middle", cut[len(cut)-10:], smp.cut, len(smp.body))
			}
		})
	}
}
