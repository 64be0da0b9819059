package httpapi

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestDocsHandler(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		path        string
		wantStatus  int
		wantType    string
		wantCaching string
	}{
		{"swagger ui", "GET", "/docs", 200, "text/html; charset=utf-8", "no-cache"},
		{"swagger ui with slash", "GET", "/docs/", 200, "text/html; charset=utf-8", "no-cache"},
		{"redoc", "GET", "/redoc", 200, "text/html; charset=utf-8", "no-cache"},
		{"head", "HEAD", "/redoc", 200, "text/html; charset=utf-8", "no-cache"},
		{"our script", "GET", "/docs/assets/swagger-init.js", 200, "text/javascript; charset=utf-8", "no-cache"},
		{"our styles", "GET", "/docs/assets/docs.css", 200, "text/css; charset=utf-8", "no-cache"},
		{"swagger ui bundle", "GET", "/docs/assets/swagger-ui-dist-5.35.0/swagger-ui-bundle.js", 200, "text/javascript; charset=utf-8", cacheImmutable},
		{"swagger ui styles", "GET", "/docs/assets/swagger-ui-dist-5.35.0/swagger-ui.css", 200, "text/css; charset=utf-8", cacheImmutable},
		{"redoc bundle", "GET", "/docs/assets/redoc-2.5.4/redoc.standalone.js", 200, "text/javascript; charset=utf-8", cacheImmutable},
		{"licence", "GET", "/docs/assets/redoc-2.5.4/LICENSE", 200, "text/plain; charset=utf-8", cacheImmutable},
		{"unknown asset", "GET", "/docs/assets/nope.js", 404, contentTypeJSON, "no-store"},
		{"checksums are not served", "GET", "/docs/assets.sha256", 404, contentTypeJSON, "no-store"},
		{"other method", "POST", "/docs", 405, contentTypeJSON, "no-store"},
	}
	h := DocsHandler()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("%s %s: status %d, want %d; body %s", tt.method, tt.path, rec.Code, tt.wantStatus, rec.Body)
			}
			hd := rec.Header()
			if got := hd.Get("Content-Type"); got != tt.wantType {
				t.Errorf("%s %s: Content-Type = %q, want %q", tt.method, tt.path, got, tt.wantType)
			}
			if got := hd.Get("Cache-Control"); got != tt.wantCaching {
				t.Errorf("%s %s: Cache-Control = %q, want %q", tt.method, tt.path, got, tt.wantCaching)
			}
			if got := hd.Get("Content-Security-Policy"); got != docsCSP {
				t.Errorf("%s %s: Content-Security-Policy = %q, want %q", tt.method, tt.path, got, docsCSP)
			}
			if tt.wantStatus == 200 && hd.Get("ETag") == "" {
				t.Errorf("%s %s: no ETag", tt.method, tt.path)
			}
		})
	}
}

func TestDocsCSPAllowsNoOtherOrigin(t *testing.T) {
	for directive := range strings.SplitSeq(docsCSP, ";") {
		for _, source := range strings.Fields(directive)[1:] {
			switch source {
			case "'self'", "'none'", "'unsafe-inline'", "data:", "blob:":
			default:
				t.Errorf("Content-Security-Policy directive %q allows %s", strings.TrimSpace(directive), source)
			}
		}
	}
	if !strings.HasPrefix(docsCSP, "default-src 'none';") {
		t.Errorf("Content-Security-Policy = %q, want it to start with default-src 'none'", docsCSP)
	}
}

func TestDocsGzipAndRevalidation(t *testing.T) {
	const path = "/docs/assets/swagger-ui-dist-5.35.0/swagger-ui-bundle.js"
	h := DocsHandler()
	get := func(header, value string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if header != "" {
			r.Header.Set(header, value)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}

	plain := get("", "")
	zipped := get("Accept-Encoding", "gzip, deflate, br")
	if got := zipped.Header().Get("Content-Encoding"); got != "gzip" {
		t.Fatalf("Accept-Encoding gzip: Content-Encoding = %q, want gzip", got)
	}
	if got := plain.Header().Get("Content-Encoding"); got != "" {
		t.Errorf("no Accept-Encoding: Content-Encoding = %q, want none", got)
	}
	if got := zipped.Header().Get("Vary"); got != "Accept-Encoding" {
		t.Errorf("Vary = %q, want Accept-Encoding", got)
	}
	if zipped.Body.Len() >= plain.Body.Len()/2 {
		t.Errorf("gzipped body is %d bytes, want under half of %d", zipped.Body.Len(), plain.Body.Len())
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unzipped, plain.Body.Bytes()) {
		t.Error("gzipped body does not decompress to the plain one")
	}
	plainTag, zippedTag := plain.Header().Get("ETag"), zipped.Header().Get("ETag")
	if plainTag == zippedTag {
		t.Errorf("plain and gzipped bodies share the ETag %s", plainTag)
	}
	if got := get("If-None-Match", plainTag).Code; got != http.StatusNotModified {
		t.Errorf("If-None-Match %s: status %d, want 304", plainTag, got)
	}
}

// TestDocsAssetsMatchChecksums checks the vendored third-party files against the sums
// that scripts/docs-assets.sh committed: none is changed, missing or unlisted.
func TestDocsAssetsMatchChecksums(t *testing.T) {
	f, err := os.Open("docs/assets.sha256")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	listed := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("docs/assets.sha256: malformed line %q", sc.Text())
		}
		listed[name] = sum
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	assets, err := fs.Sub(docsFS, "docs/assets")
	if err != nil {
		t.Fatal(err)
	}
	vendored := 0
	err = fs.WalkDir(assets, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(name, "/") { // our own files sit at the top
			return err
		}
		vendored++
		body, err := fs.ReadFile(assets, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		switch want, ok := listed[name]; {
		case !ok:
			t.Errorf("docs/assets/%s is not in docs/assets.sha256: vendor it with scripts/docs-assets.sh", name)
		case hex.EncodeToString(sum[:]) != want:
			t.Errorf("docs/assets/%s: sha256 %x, want %s", name, sum, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if vendored != len(listed) {
		t.Errorf("%d vendored files embedded, %d listed in docs/assets.sha256", vendored, len(listed))
	}
}

// TestDocsPagesLoadServedFiles checks that every file the pages load is served, and
// that they load nothing from elsewhere.
func TestDocsPagesLoadServedFiles(t *testing.T) {
	ref := regexp.MustCompile(`(?:src|href)="([^"]*)"`)
	h := DocsHandler()
	for _, page := range []string{"/docs", "/redoc"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, page, nil))
		matches := ref.FindAllStringSubmatch(rec.Body.String(), -1)
		if len(matches) == 0 {
			t.Fatalf("%s loads nothing", page)
		}
		for _, m := range matches {
			url := m[1]
			switch {
			case url == "/docs" || url == "/redoc" || url == "/openapi.json": // links to the API
			case strings.HasPrefix(url, docsAssetsPrefix):
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
				if rec.Code != http.StatusOK {
					t.Errorf("%s loads %s: status %d, want 200", page, url, rec.Code)
				}
			default:
				t.Errorf("%s refers to %s, outside the docs", page, url)
			}
		}
	}
}
