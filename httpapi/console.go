package httpapi

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
)

// consoleFS holds the console: one page, its script and its styles, written for it, with
// no third-party code.
//
//go:embed console
var consoleFS embed.FS

// consoleAssetsPrefix is where ConsoleHandler serves the page's script and styles.
const consoleAssetsPrefix = "/console/"

// consoleCSP is the Content-Security-Policy of every console response: this origin
// only, no inline script or style, no plugin, frame or form sent elsewhere. The page
// builds its content with DOM methods and textContent, so even a catalog that holds
// markup cannot run script in it.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// ConsoleHandler serves the console, the page for people, from files embedded in the
// binary. Mount it on these patterns (GET also answers HEAD):
//
//	GET /{$}        the page
//	GET /console/   its script and styles
//
// The page reads the public API only (/api/v1/status, /api/v1/providers, /search,
// /api/v1/events/{id}/products, POST /api/v1/price) and links to /docs, /redoc and
// /metrics. Responses carry a strong ETag and are revalidated (Cache-Control:
// no-cache), the larger ones gzipped for clients that accept it, all under a
// Content-Security-Policy that allows this origin only. An unknown file is a 404, and a
// method other than GET or HEAD a 405, in the API's error format.
//
// It panics if the embedded files are missing, a build mistake the tests catch.
func ConsoleHandler() http.Handler {
	files, err := loadConsole(consoleFS)
	if err != nil {
		panic(fmt.Sprintf("httpapi: embedded console: %v", err))
	}
	return files
}

// loadConsole reads the console of fsys: console/index.html at / and the other files
// of console/ under consoleAssetsPrefix.
func loadConsole(fsys fs.FS) (staticFiles, error) {
	files := map[string]*docsFile{}
	err := fs.WalkDir(fsys, "console", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := readDocsFile(fsys, name, cacheRevalidate)
		if err != nil {
			return err
		}
		route := consoleAssetsPrefix + name[len("console/"):]
		if name == "console/index.html" {
			route = "/"
		}
		files[route] = f
		return nil
	})
	if err != nil {
		return staticFiles{}, err
	}
	if files["/"] == nil {
		return staticFiles{}, errors.New("no console/index.html")
	}
	return staticFiles{csp: consoleCSP, files: files}, nil
}
