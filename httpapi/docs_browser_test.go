package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// knownBlocked is the one load from elsewhere that the pages try, and the
// Content-Security-Policy blocks: ReDoc's menu always shows Redocly's logo from its CDN,
// and hides the image when it fails to load.
const knownBlocked = "https://cdn.redoc.ly/redoc/logo-mini.svg"

// browserTimeout bounds each page load in Chromium, start-up included.
const browserTimeout = 25 * time.Second

// TestDocsInBrowser loads /docs and /redoc in headless Chromium, with every origin but
// the test server's unreachable, and checks that the operations render, /search and
// pricing's: the
// pages work from the embedded files alone, under their Content-Security-Policy.
func TestDocsInBrowser(t *testing.T) {
	chromium := findChromium(t)
	spec, etag, err := openAPIJSON(openAPIYAML)
	if err != nil {
		t.Fatal(err)
	}
	docs := DocsHandler()
	mux := http.NewServeMux()
	for _, pattern := range []string{"GET /docs", "GET /docs/{$}", "GET /redoc", "GET /docs/assets/"} {
		mux.Handle(pattern, docs)
	}
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentTypeJSON)
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(spec))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tests := []struct {
		name string
		path string
		want []string // in the rendered DOM
	}{
		{
			name: "swagger ui",
			path: "/docs",
			want: []string{
				`class="opblock opblock-get`,
				`data-path="/search"`, "Lists the available events on a time range",
				// pricing, the whole API
				`data-path="/api/v1/price"`, "Prices a product for a user",
				`data-path="/api/v1/publish-market-event"`, "Records and publishes a market event",
			},
		},
		{
			name: "redoc",
			path: "/redoc",
			want: []string{`id="operation/searchEvents"`, "/search", "Lists the available events on a time range",
				`id="operation/quotePrice"`, "Prices a product for a user", `id="operation/getTask"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dom, console := dumpDOM(t, chromium, srv.URL+tt.path)
			for _, want := range tt.want {
				if !strings.Contains(dom, want) {
					t.Errorf("%s: rendered DOM lacks %q", tt.path, want)
				}
			}
			// A load from elsewhere, such as a web font or a badge, shows as a
			// Content-Security-Policy violation in the console.
			for line := range strings.Lines(console) {
				if strings.Contains(line, "Content Security Policy") && !strings.Contains(line, knownBlocked) {
					t.Errorf("%s: the page broke its Content-Security-Policy: %s", tt.path, line)
				}
			}
			if t.Failed() {
				t.Logf("DOM (%d bytes):\n%.4000s\nconsole:\n%s", len(dom), dom, console)
			}
		})
	}
}

// findChromium returns the path of a Chromium binary. Without one it skips the test, or
// under CI=true installs Debian's package when it can and fails when it cannot.
func findChromium(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome"}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "true" {
		t.Skip("chromium not installed (apt-get install -y chromium); the browser test needs it")
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		t.Fatal("chromium is required when CI=true: not installed, and apt-get is not available to root here")
	}
	t.Log("CI=true: installing chromium")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	install := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", "chromium")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	out, err := install()
	if err != nil { // perhaps an outdated package list
		if upd, uerr := exec.CommandContext(ctx, "apt-get", "update", "-qq").CombinedOutput(); uerr != nil {
			t.Fatalf("chromium is required when CI=true: apt-get update: %v\n%s", uerr, upd)
		}
		out, err = install()
	}
	if err != nil {
		t.Fatalf("chromium is required when CI=true: apt-get install chromium: %v\n%s", err, out)
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is required when CI=true: installed, yet %v", err)
	}
	return p
}

// dumpDOM loads url in headless Chromium and returns the DOM once the page has settled
// (ten seconds of virtual time, which stops while requests are pending), and the
// browser's console output. Every host but 127.0.0.1 fails to resolve, and any request
// that gets past that meets a proxy that refuses connections, so the page can reach the
// test server only.
func dumpDOM(t *testing.T, chromium, url string) (dom, console string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium,
		"--headless",
		"--no-sandbox",
		"--disable-gpu",
		"--disable-dev-shm-usage",
		"--disable-quic",
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-extensions",
		"--user-data-dir="+t.TempDir(),
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--proxy-server=http://127.0.0.1:9", // discard: nothing listens; loopback bypasses proxies
		"--enable-logging=stderr",
		"--log-level=0",
		"--virtual-time-budget=10000",
		"--dump-dom",
		url,
	)
	cmd.WaitDelay = 5 * time.Second // for the output of helper processes that outlive a killed browser
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v (after %v)\nstderr:\n%s", url, err, time.Since(start).Round(time.Millisecond), &stderr)
	}
	t.Logf("chromium %s: %v", url, time.Since(start).Round(time.Millisecond))
	var lines []string
	for line := range strings.Lines(stderr.String()) {
		if strings.Contains(line, ":CONSOLE") {
			lines = append(lines, line)
		}
	}
	return stdout.String(), strings.Join(lines, "")
}
