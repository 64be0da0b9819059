package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"

	"boxoffice/catalog"
)

// ErrBadRequest marks errors caused by the request itself, such as a malformed,
// repeated or inverted bound: the API answers them with 400 and their message.
var ErrBadRequest = errors.New("bad request")

// Errors that writeError turns into statuses other than 400 and 500.
var (
	errNotLoaded        = errors.New("catalog not loaded yet; retry shortly")
	errUnavailable      = errors.New("catalog unavailable; retry shortly") // wraps the store's error
	errNotFound         = errors.New("not found")
	errMethodNotAllowed = errors.New("method not allowed")
	errUnauthorized     = errors.New("unauthorized")
	errForbidden        = errors.New("forbidden")
	errNotEnqueued      = errors.New("the task could not be enqueued; retry shortly") // wraps the broker's error
)

// retryAfterSeconds is the Retry-After of a 503: the catalog loads within seconds of
// start-up, and a broker or store comes back or reconnects as soon.
const retryAfterSeconds = "1"

// requestError is an error caused by the request: errors.Is finds ErrBadRequest in it,
// and its message is the wrapped error's alone.
type requestError struct{ err error }

func (e *requestError) Error() string   { return e.err.Error() }
func (e *requestError) Unwrap() []error { return []error{e.err, ErrBadRequest} }

// badRequest marks err as caused by the request.
func badRequest(err error) error { return &requestError{err: err} }

// writeError answers a request with err, translated once, here, into a status and the
// error body {"data":null,"error":{"code":"…","message":"…"}}. Unexpected errors are
// logged with their detail and answered with a generic message, never their text.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := http.StatusInternalServerError, "internal_error", "internal error"
	// A request whose own deadline passed is a 504, whatever the backend said about it;
	// but a bad request stays a 400, and a task recorded and not enqueued says so.
	if ce := contextError(r, err); ce != nil && !errors.Is(err, ErrBadRequest) && !errors.Is(err, errNotEnqueued) {
		err = ce
	}
	switch {
	case errors.Is(err, errDeadline): // the detail is logged, not shown
		status, code, msg = http.StatusGatewayTimeout, "timeout", errDeadline.Error()
	case errors.Is(err, errClientGone):
		status, code, msg = http.StatusServiceUnavailable, "unavailable", errClientGone.Error()
	case errors.Is(err, errRateLimited):
		status, code, msg = http.StatusTooManyRequests, "rate_limited", err.Error()
	case errors.Is(err, errOverloaded):
		status, code, msg = http.StatusServiceUnavailable, "overloaded", errOverloaded.Error()
		w.Header().Set("Retry-After", retryAfterSeconds)
	case errors.Is(err, ErrBadRequest), errors.Is(err, catalog.ErrInvertedWindow):
		status, code, msg = http.StatusBadRequest, "bad_request", err.Error()
	case errors.Is(err, errNotFound):
		status, code, msg = http.StatusNotFound, "not_found", err.Error()
	case errors.Is(err, errCursorExpired):
		status, code, msg = http.StatusGone, "cursor_expired", err.Error()
	case errors.Is(err, errMethodNotAllowed):
		status, code, msg = http.StatusMethodNotAllowed, "method_not_allowed", err.Error()
	case errors.Is(err, errUnauthorized):
		status, code, msg = http.StatusUnauthorized, "unauthorized", err.Error()
	case errors.Is(err, errForbidden):
		status, code, msg = http.StatusForbidden, "forbidden", err.Error()
	case errors.Is(err, errUnsupportedMediaType):
		status, code, msg = http.StatusUnsupportedMediaType, "unsupported_media_type", err.Error()
	case errors.Is(err, errNotLoaded):
		status, code, msg = http.StatusServiceUnavailable, "unavailable", err.Error()
		w.Header().Set("Retry-After", retryAfterSeconds)
	case errors.Is(err, errUnavailable): // the detail is logged, not shown
		status, code, msg = http.StatusServiceUnavailable, "unavailable", errUnavailable.Error()
		w.Header().Set("Retry-After", retryAfterSeconds)
	case errors.Is(err, errNotEnqueued): // the detail is logged, not shown
		status, code, msg = http.StatusServiceUnavailable, "unavailable", errNotEnqueued.Error()
		w.Header().Set("Retry-After", retryAfterSeconds)
	}
	level := slog.LevelDebug // the client's mistake, a catalog still loading, or a store down (logged by the searcher)
	switch {
	case errors.Is(err, errDeadline):
		level = slog.LevelWarn // a slow backend: worth seeing, not an error of ours
	case status >= 500 && status != http.StatusServiceUnavailable || errors.Is(err, errNotEnqueued):
		level = slog.LevelError // nobody else logs it
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status, "err", err}
	if pe := (*panicError)(nil); errors.As(err, &pe) {
		attrs = append(attrs, "stack", string(pe.stack))
	}
	h.log.Log(r.Context(), level, "http request", attrs...)

	hd := w.Header()
	hd["Cache-Control"] = noStore // an error is about this moment: no cache may keep it
	delete(hd, "Etag")
	delete(hd, "Vary")
	delete(hd, "Content-Encoding")
	writeJSON(w, status, errorBody(code, msg))
}

// errorBody returns the API's error body: {"data":null,"error":{"code":…,"message":…}}.
func errorBody(code, msg string) []byte {
	b := make([]byte, 0, 64+len(code)+len(msg))
	b = append(b, `{"data":null,"error":{"code":`...)
	b = appendString(b, code)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	return append(b, "}}"...)
}

// Header values shared by responses, never modified.
var (
	noStore    = []string{"no-store"}
	nosniff    = []string{"nosniff"}
	noReferrer = []string{"no-referrer"}
	hsts       = []string{"max-age=31536000"}
	// apiCSP forbids a JSON response everything a browser might do with a document:
	// loading anything, and being framed.
	apiCSP = []string{"default-src 'none'; frame-ancestors 'none'"}
)

// setSecurityHeaders sets the headers every response to r has: X-Content-Type-Options:
// nosniff, so a browser never reads a JSON body as HTML or script, Referrer-Policy:
// no-referrer, and over HTTPS Strict-Transport-Security, so a browser that saw it
// never falls back to plain HTTP for a year.
func setSecurityHeaders(hd http.Header, r *http.Request) {
	hd["X-Content-Type-Options"] = nosniff
	hd["Referrer-Policy"] = noReferrer
	if r.TLS != nil {
		hd["Strict-Transport-Security"] = hsts
	}
}

// writeJSON answers with status and the JSON document body. Unless the handler chose
// its caching, the response is not cached (no-store): task states, quotes and readiness
// change from one moment to the next.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", contentTypeJSON)
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	if _, ok := hd["Cache-Control"]; !ok {
		hd["Cache-Control"] = noStore
	}
	if _, ok := hd["Content-Security-Policy"]; !ok {
		hd["Content-Security-Policy"] = apiCSP
	}
	w.WriteHeader(status)
	w.Write(body) // an error means the client went away: nothing is left to do
}

// unmatched answers a request no route matches: 405 with Allow when another method
// would match its path, 404 otherwise.
func (h *Handler) unmatched(w http.ResponseWriter, r *http.Request) {
	// The mux's own answer says which; run it on a recorder and keep only its status
	// and Allow header.
	fallback, _ := h.mux.Handler(r)
	rec := &statusRecorder{header: make(http.Header)}
	fallback.ServeHTTP(rec, r)
	if allow := rec.header.Get("Allow"); rec.status == http.StatusMethodNotAllowed && allow != "" {
		w.Header().Set("Allow", allow)
		h.writeError(w, r, fmt.Errorf("%w: %s %s; allowed: %s", errMethodNotAllowed, r.Method, r.URL.Path, allow))
		return
	}
	h.writeError(w, r, fmt.Errorf("%w: %s", errNotFound, r.URL.Path))
}

// statusRecorder is a ResponseWriter that keeps the status and headers, and drops the body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(b), nil
}

func (s *statusRecorder) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
}

// panicError is a recovered panic with the stack of the goroutine that panicked.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// recoverPanic, deferred, turns a panic in a handler into a 500, logged with its stack.
// http.ErrAbortHandler is let through: it is how a handler aborts a response on purpose.
func (h *Handler) recoverPanic(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
		panic(v)
	}
	h.writeError(w, r, &panicError{value: v, stack: debug.Stack()})
}
