package httpapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// docsFS holds the browsable API docs: the Swagger UI and ReDoc pages, our scripts and
// styles for them in assets/, and the pinned third-party bundles in
// assets/<package>-<version>/, vendored by scripts/docs-assets.sh and checked against
// docs/assets.sha256.
//
//go:embed docs/swagger.html docs/redoc.html docs/assets
var docsFS embed.FS

// docsAssetsPrefix is where DocsHandler serves the files of docs/assets.
const docsAssetsPrefix = "/docs/assets/"

// docsCSP is the Content-Security-Policy of every docs response: everything from this
// origin only, never another. Inline styles stay allowed because both UIs set them from
// script (ReDoc through styled-components); inline scripts do not, which is why the
// pages load their set-up from files. ReDoc runs its search index in a worker made from
// a blob: URL.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Cache-Control values of the docs. A versioned third-party file never changes under
// its URL: a new version is a new directory. The pages and our own files change with a
// release, so clients revalidate them by ETag.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// docsMinGzip is the size under which a docs file is served uncompressed.
const docsMinGzip = 1 << 10

// docsFile is one file DocsHandler serves, read and hashed once.
type docsFile struct {
	body         []byte
	contentType  string
	etag         string // strong, of body
	cacheControl string

	gzipOnce sync.Once // guards gzipBody, made on the first request that accepts gzip
	gzipBody []byte    // nil when compressing does not pay
}

// DocsHandler serves the browsable API docs from files embedded in the binary; no page
// loads anything from another origin. Both UIs render the OpenAPI document that the API
// serves at /openapi.json. Mount it on these patterns (GET also answers HEAD):
//
//	GET /docs              Swagger UI
//	GET /docs/{$}          Swagger UI
//	GET /redoc             ReDoc
//	GET /docs/assets/      the pages' scripts and styles
//
// Versioned third-party files (/docs/assets/<package>-<version>/…) are cacheable for a
// year as immutable; the pages and the other files carry a strong ETag and are
// revalidated. Large files are gzipped for clients that accept it. Every response has a
// Content-Security-Policy that allows this origin only. An unknown file is a 404, and a
// method other than GET or HEAD a 405, in the API's error format.
//
// It panics if the embedded files are missing, a build mistake the tests catch.
func DocsHandler() http.Handler {
	files, err := loadDocs(docsFS)
	if err != nil {
		panic(fmt.Sprintf("httpapi: embedded docs: %v", err))
	}
	return files
}

// staticFiles serves files from memory by request path, each response under one
// Content-Security-Policy: the docs' (DocsHandler) and the console's (ConsoleHandler).
type staticFiles struct {
	csp   string
	files map[string]*docsFile
}

// loadDocs reads the docs tree of fsys: the two pages under their routes and every file
// of docs/assets under docsAssetsPrefix.
func loadDocs(fsys fs.FS) (staticFiles, error) {
	files := map[string]*docsFile{}
	pages := map[string]string{"/docs": "docs/swagger.html", "/docs/": "docs/swagger.html", "/redoc": "docs/redoc.html"}
	for route, name := range pages {
		f, err := readDocsFile(fsys, name, cacheRevalidate)
		if err != nil {
			return staticFiles{}, err
		}
		files[route] = f
	}
	err := fs.WalkDir(fsys, "docs/assets", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(name, "docs/assets/")
		cc := cacheRevalidate
		if strings.Contains(rel, "/") { // in a <package>-<version> directory
			cc = cacheImmutable
		}
		f, err := readDocsFile(fsys, name, cc)
		if err != nil {
			return err
		}
		files[docsAssetsPrefix+rel] = f
		return nil
	})
	if err != nil {
		return staticFiles{}, err
	}
	return staticFiles{csp: docsCSP, files: files}, nil
}

// readDocsFile reads the file name of fsys, served with cacheControl.
func readDocsFile(fsys fs.FS, name, cacheControl string) (*docsFile, error) {
	body, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	return &docsFile{
		body:         body,
		contentType:  docsContentType(name),
		etag:         `"` + hex.EncodeToString(sum[:16]) + `"`,
		cacheControl: cacheControl,
	}, nil
}

// docsContentType is the Content-Type of the docs file name, by its extension; licence
// and notice files are plain text.
func docsContentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".json":
		return contentTypeJSON
	default:
		return "text/plain; charset=utf-8"
	}
}

// ServeHTTP answers GET and HEAD with the file at the request's path.
func (s staticFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", s.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	f := s.files[r.URL.Path]
	switch {
	case f == nil:
		writeDocsError(w, http.StatusNotFound, "not_found", "not found: "+r.URL.Path)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		hd.Set("Allow", "GET, HEAD")
		writeDocsError(w, http.StatusMethodNotAllowed, "method_not_allowed",
			"method not allowed: "+r.Method+" "+r.URL.Path+"; allowed: GET, HEAD")
		return
	}
	body, etag := f.body, f.etag
	if len(f.body) >= docsMinGzip {
		hd.Set("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			if gz := f.gzipped(); gz != nil {
				body, etag = gz, strings.TrimSuffix(f.etag, `"`)+`-gzip"` // another representation, another ETag
				hd.Set("Content-Encoding", "gzip")
			}
		}
	}
	hd.Set("Content-Type", f.contentType)
	hd.Set("ETag", etag)
	hd.Set("Cache-Control", f.cacheControl)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// gzipped returns f's body gzipped, compressing it on the first call, or nil when that
// saves less than a tenth.
func (f *docsFile) gzipped() []byte {
	f.gzipOnce.Do(func() {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf) // the default level: within 1% of the best on these files
		_, _ = zw.Write(f.body)    // a bytes.Buffer does not fail
		zw.Close()
		if buf.Len() < len(f.body)*9/10 {
			f.gzipBody = buf.Bytes()
		}
	})
	return f.gzipBody
}

// writeDocsError answers with status and the API's error body. Unlike writeError it logs
// nothing: a wrong docs URL is the client's business.
func writeDocsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header()["Cache-Control"] = noStore
	writeJSON(w, status, errorBody(code, msg))
}
