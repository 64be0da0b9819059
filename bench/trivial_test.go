//go:build bench

package bench

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// trivial is the yardstick: a net/http handler that does nothing but write back the
// bytes boxoffice answered for the same query. A hot query gets its own captured
// response; any other query gets the representative random-window response.
type trivial struct {
	mu       sync.RWMutex // guards hot and fallback, replaced between catalogs
	hot      map[string]variants
	fallback variants
}

// serve sets the responses the handler writes back.
func (tr *trivial) serve(hot map[string]variants, fallback variants) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.hot, tr.fallback = hot, fallback
}

func (tr *trivial) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tr.mu.RLock()
	v, ok := tr.hot[r.URL.RequestURI()]
	if !ok {
		v = tr.fallback
	}
	tr.mu.RUnlock()
	resp := v.plain
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		resp = v.gzip
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	if resp.encoding != "" {
		h["Content-Encoding"] = []string{resp.encoding}
	}
	h["Content-Length"] = []string{strconv.Itoa(len(resp.body))}
	w.Write(resp.body)
}

// startTrivial serves tr on a loopback port until the test ends. It serves from this
// process, whose CPU time is then the handler's: the load tools run as processes of
// their own, and the test waits on them.
func startTrivial(t *testing.T, tr http.Handler) server {
	t.Helper()
	return server{name: "trivial", base: serveLoopback(t, tr), pid: os.Getpid()}
}
