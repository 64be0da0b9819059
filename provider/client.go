package provider

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"boxoffice/catalog"
	"boxoffice/ingest"
	"boxoffice/redact"
	"boxoffice/task"
)

var _ ingest.Source = (*Client)(nil)

// maxDrain is how much of an error response's body is read, so that the connection
// can be reused, before it is closed instead.
const maxDrain = 64 << 10

// DefaultMaxBytes bounds the provider's document unless WithMaxBytes says otherwise
// (PROVIDER_MAX_BYTES): 4 GiB, ten times a catalog of a million plans with two zones
// each (about 400 MB of XML).
const DefaultMaxBytes = 4 << 30

// maxRedirects is how many redirects, all to the provider's own host, a fetch follows.
const maxRedirects = 10

// Errors a retry cannot fix, which abort the sync: the document is over the limit, or
// the provider sent the client to another host.
var (
	errTooLarge        = errors.New("document over the size limit")
	errRedirectRefused = errors.New("redirect to another host refused")
)

// Client fetches the provider's catalog over HTTP and parses it as it streams in. It
// implements ingest.Source. A Client is safe for concurrent use.
type Client struct {
	url      string
	shown    string // url as messages quote it: redact.URL
	timeout  time.Duration
	provider string
	maxBytes int64
	parser   Parser      // the configured format's; nil detects each response's
	format   string      // its name, for the Accept header and messages
	header   http.Header // sent with every request (WithHeader); never in a message
	hc       *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests through hc, such as an
// httptest.Server's client in tests. hc.Timeout, when set, bounds the whole fetch on
// top of the Client's own timeout; leave it zero.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.hc = hc }
}

// WithMaxBytes bounds the document (PROVIDER_MAX_BYTES): the bytes of the body as
// parsed, after any Content-Encoding is undone. A document over it aborts the fetch
// with a permanent error, before a byte is read when its Content-Length says so. Zero
// or less keeps DefaultMaxBytes.
func WithMaxBytes(n int64) Option {
	return func(c *Client) {
		if n > 0 {
			c.maxBytes = n
		}
	}
}

// WithFormat makes the Client read every document as the format name (one of
// Formats); FormatAuto or "" detects the format of each response (Detect), which is
// the default. A name CheckFormat rejects makes every Fetch fail with a permanent error.
func WithFormat(name string) Option {
	return func(c *Client) {
		c.format = name
		c.parser = nil
		if name != "" && name != FormatAuto {
			c.parser = named[name]
		}
	}
}

// WithHeader sends the header name with value on every request, such as a provider's
// API key (PROVIDERS_FILE's headers); values never appear in errors. The headers the
// Client sets itself (CheckHeader) are refused: Fetch fails with a permanent error.
func WithHeader(name, value string) Option {
	return func(c *Client) {
		if c.header == nil {
			c.header = http.Header{}
		}
		c.header.Add(name, value)
	}
}

// CheckHeader reports a header WithHeader must not send: a name that is not an HTTP
// token, one the Client sets itself (Accept, If-None-Match, If-Modified-Since,
// Accept-Encoding, Host, Content-Length), or a value with a line break or another
// control character. The error names the header, never its value.
func CheckHeader(name, value string) error {
	if name == "" || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) }) >= 0 {
		return fmt.Errorf("header %q: not a header name", name)
	}
	switch http.CanonicalHeaderKey(name) {
	case "Accept", "If-None-Match", "If-Modified-Since", "Accept-Encoding", "Host", "Content-Length", "Transfer-Encoding", "Connection":
		return fmt.Errorf("header %s: set by boxoffice itself", http.CanonicalHeaderKey(name))
	}
	if strings.IndexFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) >= 0 {
		return fmt.Errorf("header %s: the value holds a line break or a control character", http.CanonicalHeaderKey(name))
	}
	return nil
}

// accept is the Accept header of each format's requests.
var accept = map[string]string{
	FormatPlanList:  "application/xml",
	FormatEventList: "application/xml",
	FormatJSON:      "application/json",
}

// NewClient returns a Client that GETs the catalog at url and names its plans'
// provider providerName (the first part of every plan ID, so it must stay the same
// across releases).
//
// timeout works like Python httpx's timeout: it bounds connecting and waiting for the
// response headers together, and then each pause while reading the body, measured
// from the start of every read of the body and reset when the read returns. A large
// body that keeps arriving may take longer than timeout; a connection that goes
// quiet for timeout is cut. The time that emit spends between reads does not count.
// A timeout of zero or less means none.
//
// Redirects are followed only to the same host and port, and never from https to
// http: a redirect elsewhere aborts the fetch with a permanent error, so that neither
// the request's headers nor the trust in the document go to a host nobody configured.
func NewClient(url string, timeout time.Duration, providerName string, opts ...Option) *Client {
	c := &Client{url: url, shown: redact.URL(url), timeout: timeout, provider: providerName,
		maxBytes: DefaultMaxBytes, hc: &http.Client{}}
	for _, o := range opts {
		o(c)
	}
	hc := *c.hc // a copy: the caller's client keeps its own policy
	hc.CheckRedirect = checkRedirect
	c.hc = &hc
	return c
}

// checkRedirect allows a redirect to the host and port of the first request, over the
// same scheme or from http to https, up to maxRedirects.
func checkRedirect(req *http.Request, via []*http.Request) error {
	from := via[0].URL
	switch {
	case !sameHost(from, req.URL):
		return fmt.Errorf("%w: %s", errRedirectRefused, req.URL.Host)
	case from.Scheme == "https" && req.URL.Scheme != "https":
		return fmt.Errorf("%w: from https to %s", errRedirectRefused, req.URL.Scheme)
	case len(via) >= maxRedirects:
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	return nil
}

// sameHost reports whether a and b name the same host and port, a missing port being
// its scheme's default.
func sameHost(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if u.Scheme == "https" {
			return "443"
		}
		return "80"
	}
	return strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

// Fetch GETs the catalog once and streams every valid plan to emit. It implements
// ingest.Source.
//
// The request is conditional on since (If-None-Match, If-Modified-Since): a 304 emits
// nothing and returns Fetched{NotModified: true, Validators: since}. A 2xx is parsed,
// and the response's ETag and Last-Modified become the Validators, only when the
// whole document was read without error.
//
// Errors: a 4xx status other than 408 and 429 is task.Permanent; 408, 429, any other
// status, network errors and timeouts are transient, and a timeout also matches
// context.DeadlineExceeded; a malformed document wraps ingest.ErrMalformed; an error
// from emit is returned as is. The others read like
// `provider: GET http://host/plans: 503 Service Unavailable`, the URL's credentials
// hidden (redact.URL).
func (c *Client) Fetch(ctx context.Context, since ingest.Validators, emit func(catalog.Plan) error) (ingest.Fetched, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		// Its error quotes the URL whole.
		return ingest.Fetched{}, task.Permanent(c.errorf("not a valid URL"))
	}
	if err := CheckFormat(c.format); err != nil {
		return ingest.Fetched{}, task.Permanent(c.errorf("%w", err))
	}
	for name, values := range c.header {
		for _, v := range values {
			if err := CheckHeader(name, v); err != nil {
				return ingest.Fetched{}, task.Permanent(c.errorf("%w", err))
			}
			req.Header.Add(name, v)
		}
	}
	if a, ok := accept[c.format]; ok {
		req.Header.Set("Accept", a)
	} else {
		req.Header.Set("Accept", "application/xml, application/json;q=0.9")
	}
	if since.ETag != "" {
		req.Header.Set("If-None-Match", since.ETag)
	}
	if since.LastModified != "" {
		req.Header.Set("If-Modified-Since", since.LastModified)
	}

	w := &watchdog{timeout: c.timeout, cancel: cancel}
	defer w.close()
	w.start()
	resp, err := c.hc.Do(req)
	if !w.stop() {
		if err == nil {
			resp.Body.Close()
		}
		return ingest.Fetched{}, c.errorf("no response headers within %s: %w", c.timeout, context.DeadlineExceeded)
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its "Get \"url\"" prefix repeats ours
		}
		if errors.Is(err, errRedirectRefused) {
			return ingest.Fetched{}, task.Permanent(c.errorf("%w", err))
		}
		return ingest.Fetched{}, c.errorf("%w", err)
	}
	defer resp.Body.Close()
	var body io.Reader = &idleReader{r: resp.Body, w: w,
		err: fmt.Errorf("body idle for more than %s: %w", c.timeout, context.DeadlineExceeded)}

	switch code := resp.StatusCode; {
	case code == http.StatusNotModified:
		return ingest.Fetched{NotModified: true, Validators: since}, nil
	case code < 200 || code > 299:
		_, _ = io.CopyN(io.Discard, body, maxDrain)
		err := c.errorf("%s", status(resp))
		if code >= 400 && code <= 499 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests {
			err = task.Permanent(err)
		}
		return ingest.Fetched{}, err
	}

	if resp.ContentLength > c.maxBytes {
		return ingest.Fetched{}, task.Permanent(c.errorf("%w: %d bytes announced, the limit is %d (PROVIDER_MAX_BYTES)",
			errTooLarge, resp.ContentLength, c.maxBytes))
	}
	br := bufio.NewReaderSize(&cappedReader{r: body, left: c.maxBytes}, readBufferSize)
	parser := c.parser
	if parser == nil {
		parser, err = Detect(resp.Header.Get("Content-Type"), br)
	}
	var (
		stats   Stats
		emitErr error
	)
	if err == nil {
		stats, err = parser.Parse(br, c.provider, func(p catalog.Plan) error {
			emitErr = emit(p)
			return emitErr
		})
	}
	f := ingest.Fetched{Format: stats.Format, Parsed: stats.Parsed, Skipped: stats.Skipped, SkipReasons: stats.SkipReasons}
	switch {
	case emitErr != nil:
		return f, emitErr
	case errors.Is(err, errTooLarge):
		return f, task.Permanent(c.errorf("%w: the limit is %d bytes (PROVIDER_MAX_BYTES)", errTooLarge, c.maxBytes))
	case err != nil:
		return f, c.errorf("%w", err)
	}
	f.Validators = ingest.Validators{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	return f, nil
}

func (c *Client) errorf(format string, args ...any) error {
	return fmt.Errorf("provider: GET %s: "+format, append([]any{c.shown}, args...)...)
}

// status returns the status line's code and text: "503 Service Unavailable".
func status(resp *http.Response) string {
	if resp.Status != "" {
		return resp.Status
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
}

// watchdog cancels a request when one wait on the network outlasts the timeout. Each
// wait (for the response headers, or one read of the body) is bracketed by start and
// stop, so the time between waits does not count. Its timer calls cancel from its own
// goroutine; everything else runs on the fetching goroutine.
type watchdog struct {
	timeout time.Duration
	cancel  context.CancelFunc
	timer   *time.Timer // created by the first start; nil when timeout <= 0
	running bool        // between start and stop
}

func (w *watchdog) start() {
	switch {
	case w.timeout <= 0:
		return
	case w.timer == nil:
		w.timer = time.AfterFunc(w.timeout, w.cancel)
	default:
		w.timer.Reset(w.timeout)
	}
	w.running = true
}

// stop ends a wait and reports whether it ended in time. When it did not, the timer
// has cancelled the request.
func (w *watchdog) stop() bool {
	if !w.running {
		return true
	}
	w.running = false
	return w.timer.Stop()
}

func (w *watchdog) close() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// idleReader reads a response body under a watchdog: each Read is one wait. Once a
// Read outlasts the timeout it returns err, whatever the cancelled read returned.
type idleReader struct {
	r   io.Reader
	w   *watchdog
	err error
}

func (r *idleReader) Read(p []byte) (int, error) {
	r.w.start()
	n, err := r.r.Read(p)
	if !r.w.stop() {
		return n, r.err
	}
	return n, err
}

// cappedReader reads r until left bytes were read, and fails with errTooLarge when r
// has more.
type cappedReader struct {
	r    io.Reader
	left int64
}

func (r *cappedReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		// Past the limit: one more byte proves the document is longer.
		var one [1]byte
		if n, err := r.r.Read(one[:]); n > 0 {
			return 0, errTooLarge
		} else if err != nil {
			return 0, err
		}
		return 0, nil
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.r.Read(p)
	r.left -= int64(n)
	return n, err
}
