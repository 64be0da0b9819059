package httpapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestConsoleHandler checks the console's responses through the whole API: types,
// caching, the security headers of the edge and the console's own policy, and JSON
// errors for what it does not serve.
func TestConsoleHandler(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantType   string
		wantCSP    string
	}{
		{"page", "GET", "/", 200, "text/html; charset=utf-8", consoleCSP},
		{"head", "HEAD", "/", 200, "text/html; charset=utf-8", consoleCSP},
		{"script", "GET", "/console/console.js", 200, "text/javascript; charset=utf-8", consoleCSP},
		{"styles", "GET", "/console/console.css", 200, "text/css; charset=utf-8", consoleCSP},
		{"page by its file name", "GET", "/console/index.html", 404, contentTypeJSON, consoleCSP},
		{"unknown file", "GET", "/console/nope.js", 404, contentTypeJSON, consoleCSP},
		{"the directory", "GET", "/console/", 404, contentTypeJSON, consoleCSP},
		{"unknown path", "GET", "/console.js", 404, contentTypeJSON, apiCSP[0]},
		{"other method", "DELETE", "/", 405, contentTypeJSON, apiCSP[0]},
	}
	h := newTestHandler(t, testPlans(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(h, tt.method, tt.path)
			if rec.Code != tt.wantStatus {
				t.Fatalf("%s %s: status %d, want %d; body %s", tt.method, tt.path, rec.Code, tt.wantStatus, rec.Body)
			}
			hd := rec.Header()
			want := map[string]string{
				"Content-Type":            tt.wantType,
				"Content-Security-Policy": tt.wantCSP,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"Cache-Control":           "no-store",
			}
			if tt.wantStatus == 200 {
				want["Cache-Control"] = "no-cache"
				if hd.Get("ETag") == "" {
					t.Errorf("%s %s: no ETag", tt.method, tt.path)
				}
			}
			for name, value := range want {
				if got := hd.Get(name); got != value {
					t.Errorf("%s %s: %s = %q, want %q", tt.method, tt.path, name, got, value)
				}
			}
			if tt.method == "HEAD" && rec.Body.Len() != 0 {
				t.Errorf("HEAD %s: %d bytes of body, want none", tt.path, rec.Body.Len())
			}
		})
	}
}

// TestConsoleRevalidation checks that a client revalidating the page with its ETag gets
// a 304, and a changed one the page.
func TestConsoleRevalidation(t *testing.T) {
	h := newTestHandler(t, testPlans(t))
	first := serve(h, http.MethodGet, "/")
	etag := first.Header().Get("ETag")
	if !strings.HasPrefix(etag, `"`) {
		t.Fatalf("ETag = %q, want a strong one", etag)
	}
	for tag, want := range map[string]int{etag: http.StatusNotModified, `"other"`: http.StatusOK} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("If-None-Match", tag)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("If-None-Match %s: status %d, want %d", tag, rec.Code, want)
		}
	}
}

func TestConsoleCSPAllowsNoOtherOrigin(t *testing.T) {
	for directive := range strings.SplitSeq(consoleCSP, ";") {
		fields := strings.Fields(directive)
		for _, source := range fields[1:] {
			if source != "'self'" && source != "'none'" {
				t.Errorf("Content-Security-Policy directive %q allows %s", strings.TrimSpace(directive), source)
			}
		}
	}
	for _, want := range []string{"default-src 'none';", "script-src 'self';", "style-src 'self';", "frame-ancestors 'none'"} {
		if !strings.Contains(consoleCSP, want) {
			t.Errorf("Content-Security-Policy = %q, want it to contain %q", consoleCSP, want)
		}
	}
}

// TestConsoleScriptParsesNoHTML guards the console's escaping: its script never hands a
// string to the HTML parser or to the script compiler, so data can only become text.
func TestConsoleScriptParsesNoHTML(t *testing.T) {
	script, err := consoleFS.ReadFile("console/console.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "createContextualFragment",
		"DOMParser", "eval(", "Function(", "setTimeout(\"", "srcdoc"} {
		if bytes.Contains(script, []byte(sink)) {
			t.Errorf("console.js uses %s", sink)
		}
	}
}

// TestConsolePageLoadsServedFiles checks that every file the page loads is served, that
// its links go to the API's pages, and that it refers to nothing elsewhere.
func TestConsolePageLoadsServedFiles(t *testing.T) {
	ref := regexp.MustCompile(`(?:src|href|action)="([^"]*)"`)
	h := newTestHandler(t, testPlans(t))
	rec := serve(h, http.MethodGet, "/")
	matches := ref.FindAllStringSubmatch(rec.Body.String(), -1)
	if len(matches) < 6 {
		t.Fatalf("the page refers to %d URLs, want its script, its styles, its form and the API's pages", len(matches))
	}
	for _, m := range matches {
		url := m[1]
		switch url {
		case "/": // the search form
			continue
		case "/docs", "/redoc", "/metrics", "/openapi.json", "/console/console.js", "/console/console.css":
		default:
			t.Errorf("the page refers to %s, outside the API", url)
			continue
		}
		if rec := serve(h, http.MethodGet, url); rec.Code != http.StatusOK {
			t.Errorf("the page refers to %s: status %d, want 200", url, rec.Code)
		}
	}
}
