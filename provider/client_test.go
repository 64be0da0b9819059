package provider

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"boxoffice/catalog"
	"boxoffice/ingest"
	"boxoffice/task"
)

// testTimeout is the Client timeout of tests that do not exercise it: long enough
// never to fire on a loaded machine.
const testTimeout = time.Minute

// newServer starts a server that t closes at its end.
func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// released returns a channel that is closed when t ends, before its servers close, for
// handlers that hang until the client gives up.
func released(t *testing.T) <-chan struct{} {
	ch := make(chan struct{})
	t.Cleanup(func() { close(ch) })
	return ch
}

// fetchAll fetches from srv and returns every emitted plan.
func fetchAll(t *testing.T, srv *httptest.Server, timeout time.Duration, since ingest.Validators) ([]catalog.Plan, ingest.Fetched, error) {
	t.Helper()
	c := NewClient(srv.URL+"/plans", timeout, testProvider, WithHTTPClient(srv.Client()))
	var plans []catalog.Plan
	f, err := c.Fetch(t.Context(), since, func(p catalog.Plan) error {
		plans = append(plans, p)
		return nil
	})
	return plans, f, err
}

// wantTransient fails t unless err is a transient error: neither permanent nor
// malformed.
func wantTransient(t *testing.T, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatal("Fetch succeeded, want a transient error")
	case task.IsPermanent(err):
		t.Errorf("Fetch = %v, a permanent error; want a transient one", err)
	case errors.Is(err, ingest.ErrMalformed):
		t.Errorf("Fetch = %v, a malformed document; want a transient error", err)
	}
}

func TestFetch(t *testing.T) {
	doc := fixture(t, "planlist_1.xml")
	var accept, path string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		accept, path = r.Header.Get("Accept"), r.URL.Path
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Wed, 21 Oct 2025 07:28:00 GMT")
		io.WriteString(w, doc)
	})
	plans, f, err := fetchAll(t, srv, testTimeout, ingest.Validators{})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	want := ingest.Fetched{
		Validators: ingest.Validators{ETag: `"v1"`, LastModified: "Wed, 21 Oct 2025 07:28:00 GMT"},
		Format:     "planList",
		Parsed:     4,
	}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Errorf("Fetch (-want +got):\n%s", diff)
	}
	wantPlans, _ := mustParse(t, doc)
	if diff := cmp.Diff(wantPlans, plans); diff != "" {
		t.Errorf("Fetch plans (-want +got):\n%s", diff)
	}
	if want := "application/xml, application/json;q=0.9"; accept != want || path != "/plans" {
		t.Errorf("server got Accept %q on %s, want %q on /plans", accept, path, want)
	}
}

func TestFetchNotModified(t *testing.T) {
	since := ingest.Validators{ETag: `"v1"`, LastModified: "Wed, 21 Oct 2025 07:28:00 GMT"}
	var got ingest.Validators
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = ingest.Validators{ETag: r.Header.Get("If-None-Match"), LastModified: r.Header.Get("If-Modified-Since")}
		w.WriteHeader(http.StatusNotModified)
	})
	plans, f, err := fetchAll(t, srv, testTimeout, since)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if diff := cmp.Diff(since, got); diff != "" {
		t.Errorf("server got validators (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ingest.Fetched{NotModified: true, Validators: since}, f); diff != "" {
		t.Errorf("Fetch (-want +got):\n%s", diff)
	}
	if len(plans) != 0 {
		t.Errorf("Fetch emitted %d plans on 304, want none", len(plans))
	}
}

// Without validators the request is unconditional.
func TestFetchUnconditional(t *testing.T) {
	var header http.Header
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		header = r.Header.Clone()
		io.WriteString(w, "<planList/>")
	})
	if _, _, err := fetchAll(t, srv, testTimeout, ingest.Validators{}); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if _, ok := header["If-None-Match"]; ok {
		t.Errorf("server got If-None-Match %q, want none", header.Get("If-None-Match"))
	}
	if _, ok := header["If-Modified-Since"]; ok {
		t.Errorf("server got If-Modified-Since %q, want none", header.Get("If-Modified-Since"))
	}
}

func TestFetchStatus(t *testing.T) {
	tests := []struct {
		give          int
		wantPermanent bool
	}{
		{http.StatusBadRequest, true},
		{http.StatusUnauthorized, true},
		{http.StatusForbidden, true},
		{http.StatusNotFound, true},
		{http.StatusGone, true},
		{http.StatusRequestTimeout, false},
		{http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false},
		{http.StatusBadGateway, false},
		{http.StatusServiceUnavailable, false},
		{http.StatusGatewayTimeout, false},
		{http.StatusMultipleChoices, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.give), func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.give)
				io.WriteString(w, fixture(t, "planlist_1.xml")) // an error body is never parsed
			})
			plans, _, err := fetchAll(t, srv, testTimeout, ingest.Validators{})
			if err == nil {
				t.Fatalf("Fetch succeeded, want an error")
			}
			want := fmt.Sprintf("provider: GET %s/plans: %d %s", srv.URL, tt.give, http.StatusText(tt.give))
			if err.Error() != want {
				t.Errorf("Fetch = %q, want %q", err, want)
			}
			if got := task.IsPermanent(err); got != tt.wantPermanent {
				t.Errorf("task.IsPermanent(%v) = %t, want %t", err, got, tt.wantPermanent)
			}
			if errors.Is(err, ingest.ErrMalformed) || len(plans) != 0 {
				t.Errorf("Fetch = %v with %d plans, want no parsing", err, len(plans))
			}
		})
	}
}

// A truncated body that ended cleanly is a malformed document, which is neither
// permanent nor retried by the syncer, and its validators are not returned.
func TestFetchMalformed(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v2"`)
		doc := fixture(t, "planlist_1.xml")
		io.WriteString(w, doc[:strings.Index(doc, `base_plan_id="1591"`)]) // 291 and 322's two plans
	})
	_, f, err := fetchAll(t, srv, testTimeout, ingest.Validators{})
	if !errors.Is(err, ingest.ErrMalformed) || task.IsPermanent(err) {
		t.Fatalf("Fetch = %v, want ErrMalformed, not permanent", err)
	}
	if !strings.HasPrefix(err.Error(), "provider: GET "+srv.URL+"/plans: malformed provider document: line ") {
		t.Errorf("Fetch = %q, want it to name the request and the line", err)
	}
	if f.Validators != (ingest.Validators{}) || f.Parsed != 3 {
		t.Errorf("Fetch = %+v, want 3 plans parsed and no validators", f)
	}
}

// Go's transport asks for gzip and decompresses it.
func TestFetchGzip(t *testing.T) {
	var encoding string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		encoding = r.Header.Get("Accept-Encoding")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, fixture(t, "planlist_1.xml"))
		zw.Close()
	})
	_, f, err := fetchAll(t, srv, testTimeout, ingest.Validators{})
	if err != nil || f.Parsed != 4 {
		t.Fatalf("Fetch = %+v, %v; want 4 plans", f, err)
	}
	if !strings.Contains(encoding, "gzip") {
		t.Errorf("server got Accept-Encoding %q, want gzip", encoding)
	}
}

func TestFetchHeadersTimeout(t *testing.T) {
	release := released(t)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	_, _, err := fetchAll(t, srv, 200*time.Millisecond, ingest.Validators{})
	wantTransient(t, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Fetch = %v, want context.DeadlineExceeded", err)
	}
}

// A body that stops arriving for longer than the timeout is cut: a transient error
// after the plans already read.
func TestFetchStalledBody(t *testing.T) {
	doc := fixture(t, "planlist_1.xml")
	release := released(t)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		io.WriteString(w, doc[:len(doc)/2])
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	_, f, err := fetchAll(t, srv, 200*time.Millisecond, ingest.Validators{})
	wantTransient(t, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Fetch = %v, want context.DeadlineExceeded", err)
	}
	if f.Validators != (ingest.Validators{}) {
		t.Errorf("Fetch of a stalled body returned validators %+v, want none", f.Validators)
	}
}

// A body that takes longer than the timeout in total, but never pauses that long,
// is read in full.
func TestFetchSlowBody(t *testing.T) {
	const (
		timeout = 300 * time.Millisecond
		pieces  = 40
	)
	doc := fixture(t, "planlist_1.xml")
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		size := len(doc)/pieces + 1
		for i := 0; i < len(doc); i += size {
			io.WriteString(w, doc[i:min(i+size, len(doc))])
			rc.Flush()
			time.Sleep(timeout / 20) // pacing: 40 pauses of 15ms, 600ms in all
		}
	})
	_, f, err := fetchAll(t, srv, timeout, ingest.Validators{})
	if err != nil || f.Parsed != 4 {
		t.Errorf("Fetch = %+v, %v; want 4 plans", f, err)
	}
}

// The time emit takes between reads is not a pause of the body.
func TestFetchSlowEmit(t *testing.T) {
	const timeout = 100 * time.Millisecond
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, fixture(t, "planlist_1.xml"))
	})
	c := NewClient(srv.URL, timeout, testProvider, WithHTTPClient(srv.Client()))
	f, err := c.Fetch(t.Context(), ingest.Validators{}, func(catalog.Plan) error {
		time.Sleep(2 * timeout) // a consumer slower than the timeout, not a synchronisation
		return nil
	})
	if err != nil || f.Parsed != 4 {
		t.Errorf("Fetch = %+v, %v; want 4 plans", f, err)
	}
}

// A connection cut in the middle of a body whose end is known is a transient error,
// not a malformed document.
func TestFetchConnectionCut(t *testing.T) {
	part := fixture(t, "planlist_1.xml")[:1000]
	tests := []struct {
		name string
		give string // what the server writes before it closes the connection
	}{
		{"content length", "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: 100000\r\n\r\n" + part},
		{"chunked", "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n", len(part), part)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				conn, buf, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Errorf("Hijack: %v", err)
					return
				}
				defer conn.Close()
				buf.WriteString(tt.give)
				buf.Flush()
			})
			_, _, err := fetchAll(t, srv, testTimeout, ingest.Validators{})
			wantTransient(t, err)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("Fetch = %v, want io.ErrUnexpectedEOF", err)
			}
		})
	}
}

func TestFetchConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	_, _, err := fetchAll(t, srv, testTimeout, ingest.Validators{})
	wantTransient(t, err)
	if want := "provider: GET " + srv.URL + "/plans: dial tcp "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Fetch = %q, want it to start with %q", err, want)
	}
}

func TestFetchBadURL(t *testing.T) {
	c := NewClient("http://[::1", testTimeout, testProvider)
	_, err := c.Fetch(t.Context(), ingest.Validators{}, func(catalog.Plan) error { return nil })
	if !task.IsPermanent(err) {
		t.Errorf("Fetch with a bad URL = %v, want a permanent error", err)
	}
}

// A cancelled context stops the fetch with a transient error.
func TestFetchCancelled(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, fixture(t, "planlist_1.xml"))
	})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c := NewClient(srv.URL, testTimeout, testProvider, WithHTTPClient(srv.Client()))
	_, err := c.Fetch(ctx, ingest.Validators{}, func(catalog.Plan) error { return nil })
	wantTransient(t, err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch = %v, want context.Canceled", err)
	}
}

func TestFetchEmitError(t *testing.T) {
	errStop := errors.New("spool full")
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, fixture(t, "planlist_1.xml"))
	})
	c := NewClient(srv.URL, testTimeout, testProvider, WithHTTPClient(srv.Client()))
	_, err := c.Fetch(t.Context(), ingest.Validators{}, func(catalog.Plan) error { return errStop })
	if err != errStop {
		t.Errorf("Fetch = %v, want emit's error as is", err)
	}
}

// A document over the limit aborts the fetch with a permanent error naming the limit,
// whether its Content-Length announces it or it streams without one; one at the limit
// is read whole.
func TestFetchMaxBytes(t *testing.T) {
	doc := fixture(t, "planlist_1.xml")
	size := int64(len(doc))
	tests := []struct {
		name     string
		max      int64
		chunked  bool // no Content-Length: the limit is found while reading
		wantFail bool
	}{
		{"announced over the limit", size - 1, false, true},
		{"streamed over the limit", size - 1, true, true},
		{"streamed well over the limit", 100, true, true},
		{"exactly the limit", size, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if !tt.chunked {
					w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
				}
				io.WriteString(w, doc[:len(doc)/2])
				if tt.chunked {
					w.(http.Flusher).Flush()
				}
				io.WriteString(w, doc[len(doc)/2:])
			})
			c := NewClient(srv.URL, testTimeout, testProvider, WithHTTPClient(srv.Client()), WithMaxBytes(tt.max))
			_, err := c.Fetch(t.Context(), ingest.Validators{}, func(catalog.Plan) error { return nil })
			if !tt.wantFail {
				if err != nil {
					t.Fatalf("Fetch of a document of %d bytes with a limit of %d = %v, want nil", size, tt.max, err)
				}
				return
			}
			limit := strconv.FormatInt(tt.max, 10)
			if !task.IsPermanent(err) || !strings.Contains(err.Error(), "limit is "+limit) ||
				!strings.Contains(err.Error(), "PROVIDER_MAX_BYTES") {
				t.Errorf("Fetch of %d bytes with a limit of %d = %v, want a permanent error naming the limit and PROVIDER_MAX_BYTES", size, tt.max, err)
			}
		})
	}
}

// Redirects are followed to the same host, and refused, permanently, to another.
func TestFetchRedirects(t *testing.T) {
	doc := fixture(t, "planlist_1.xml")
	elsewhere := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the client followed a redirect to another host: %s", r.URL)
		io.WriteString(w, doc)
	})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/plans", http.StatusMovedPermanently)
		case "/away":
			http.Redirect(w, r, elsewhere.URL+"/plans", http.StatusFound)
		default:
			io.WriteString(w, doc)
		}
	})
	c := NewClient(srv.URL+"/moved", testTimeout, testProvider, WithHTTPClient(srv.Client()))
	f, err := c.Fetch(t.Context(), ingest.Validators{}, func(catalog.Plan) error { return nil })
	if err != nil || f.Parsed == 0 {
		t.Errorf("Fetch through a redirect to the same host = %+v, %v; want the document", f, err)
	}
	c = NewClient(srv.URL+"/away", testTimeout, testProvider, WithHTTPClient(srv.Client()))
	_, err = c.Fetch(t.Context(), ingest.Validators{}, func(catalog.Plan) error { return nil })
	if !task.IsPermanent(err) || !strings.Contains(err.Error(), "redirect to another host refused") {
		t.Errorf("Fetch through a redirect to another host = %v, want a permanent error saying it was refused", err)
	}
}

func TestCheckRedirect(t *testing.T) {
	tests := []struct {
		from, to string
		ok       bool
	}{
		{"http://a.example/x", "http://a.example/y", true},
		{"http://a.example/x", "http://A.EXAMPLE:80/y", true},
		{"http://a.example/x", "https://a.example:80/y", true},
		{"https://a.example/x", "https://a.example:443/y", true},
		{"http://a.example/x", "http://b.example/y", false},
		{"http://a.example:8080/x", "http://a.example:8081/x", false},
		{"http://a.example/x", "https://a.example/y", false}, // port 80 to 443: another server
		{"https://a.example:8443/x", "http://a.example:8443/y", false},
		{"http://user:pw@a.example/x", "http://a.example.evil.example/y", false},
	}
	for _, tt := range tests {
		from, _ := http.NewRequest(http.MethodGet, tt.from, nil)
		to, _ := http.NewRequest(http.MethodGet, tt.to, nil)
		err := checkRedirect(to, []*http.Request{from})
		if (err == nil) != tt.ok {
			t.Errorf("checkRedirect(%s -> %s) = %v, want ok %v", tt.from, tt.to, err, tt.ok)
		}
	}
	from, _ := http.NewRequest(http.MethodGet, "http://a.example/0", nil)
	via := []*http.Request{from}
	for range maxRedirects - 1 {
		via = append(via, from)
	}
	if err := checkRedirect(from, via); err == nil {
		t.Errorf("checkRedirect after %d redirects = nil, want an error", len(via))
	}
}

// The URL's credentials never show in an error: not its user information, not a key in
// its query, whatever fails.
func TestFetchErrorsHideCredentials(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/status":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/malformed":
			io.WriteString(w, "<planList><output>")
		default:
			http.Redirect(w, r, "http://elsewhere.example/", http.StatusFound)
		}
	})
	u := strings.Replace(srv.URL, "http://", "http://user:secret1@", 1)
	for _, path := range []string{"/status", "/malformed", "/redirect"} {
		c := NewClient(u+path+"?api_key=secret2&format=xml", testTimeout, testProvider, WithHTTPClient(srv.Client()))
		_, err := c.Fetch(t.Context(), ingest.Validators{}, func(catalog.Plan) error { return nil })
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("Fetch %s = %v, want an error without the URL's secrets", path, err)
		}
		if err != nil && !strings.Contains(err.Error(), "api_key=xxxxx&format=xml") {
			t.Errorf("Fetch %s = %v, want the URL quoted with its key hidden", path, err)
		}
	}
	c := NewClient("http://user:secret@[::1/x", testTimeout, testProvider)
	if _, err := c.Fetch(t.Context(), ingest.Validators{}, func(catalog.Plan) error { return nil }); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("Fetch of a malformed URL = %v, want an error without its password", err)
	}
}
