package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Readiness statuses, of the whole and of each check.
const (
	statusReady    = "ready"
	statusNotReady = "not_ready"
	checkOK        = "ok"
	checkFailing   = "failing"
	checkTimeout   = "timeout"
)

// healthBody encodes the /health document once: {"status":"healthy"} and the build.
func healthBody(b BuildInfo) []byte {
	body, err := json.Marshal(struct {
		Status  string `json:"status"`
		Version string `json:"version,omitempty"`
		Commit  string `json:"commit,omitempty"`
	}{"healthy", b.Version, b.Commit})
	if err != nil {
		panic(err) // strings always encode
	}
	return body
}

// serveHealth answers GET /health, the liveness probe: the process serves HTTP. It
// checks nothing else, so a slow dependency never gets a live process restarted.
func (h *Handler) serveHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.health)
}

// readiness is the /ready document.
type readiness struct {
	Status string                 `json:"status"` // statusReady or statusNotReady
	Checks map[string]checkResult `json:"checks"`
}

// checkResult is one check in the /ready document. Why a check fails is logged, not
// shown: it may name internal hosts.
type checkResult struct {
	Status    string  `json:"status"` // checkOK, checkFailing or checkTimeout
	LatencyMS float64 `json:"latency_ms"`
}

// serveReady answers GET /ready, the readiness probe: 200 when every check passes,
// else 503; the body lists each check's status and latency. Checks run concurrently,
// each bounded by the ready timeout; one that overruns it is reported as a timeout
// without waiting for it.
func (h *Handler) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.readyTimeout)
	defer cancel()
	type outcome struct {
		name    string
		err     error
		latency time.Duration
	}
	done := make(chan outcome, len(h.checks)) // buffered: a late check never blocks
	start := time.Now()
	for name, check := range h.checks {
		go func() {
			err := check(ctx)
			done <- outcome{name, err, time.Since(start)}
		}()
	}

	doc := readiness{Status: statusReady, Checks: make(map[string]checkResult, len(h.checks))}
	failed := false
	for range h.checks {
		var o outcome
		select {
		case o = <-done:
		case <-ctx.Done():
		}
		if o.name == "" {
			break
		}
		res := checkResult{Status: checkOK, LatencyMS: ms(o.latency)}
		if o.err != nil {
			failed = true
			res.Status = checkFailing
			if errors.Is(o.err, context.DeadlineExceeded) {
				res.Status = checkTimeout
			}
			h.log.Warn("readiness check", "check", o.name, "status", res.Status, "err", o.err)
		}
		doc.Checks[o.name] = res
	}
	for name := range h.checks {
		if _, ok := doc.Checks[name]; !ok {
			failed = true
			doc.Checks[name] = checkResult{Status: checkTimeout, LatencyMS: ms(h.readyTimeout)}
			h.log.Warn("readiness check", "check", name, "status", checkTimeout, "timeout", h.readyTimeout)
		}
	}
	status := http.StatusOK
	if failed {
		status, doc.Status = http.StatusServiceUnavailable, statusNotReady
	}
	body, err := json.Marshal(doc)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, status, body)
}

// ms converts d to milliseconds with microsecond precision.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// catalogLoaded is the built-in "catalog" readiness check: searches can be served once
// the first index is loaded.
func catalogLoaded(c Catalog) error {
	if ob, ok := c.(interface{ OverBudget() bool }); ok && ob.OverBudget() {
		return nil // beyond the index's memory budget, searches read the store: ready
	}
	if c.Index() == nil {
		return errNotLoaded
	}
	return nil
}
