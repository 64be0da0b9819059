package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
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
// else 503; the body lists each check's status and latency. The answer is at most
// opsMaxAge old: probes within that share one run of the checks (a probe that comes
// while they run waits for them), so probing hard does not multiply the load on the
// dependencies.
func (h *Handler) serveReady(w http.ResponseWriter, r *http.Request) {
	c := &h.ready
	c.mu.Lock()
	if c.body == nil || h.now().Sub(c.at) >= opsMaxAge {
		// The checks outlive a probe that goes away: the others wait for them.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.readyTimeout)
		c.status, c.body = h.readiness(ctx)
		cancel()
		c.at = h.now()
	}
	status, body := c.status, c.body
	c.mu.Unlock()
	writeJSON(w, status, body)
}

// opsMaxAge is how old the answers of /ready and /metrics may be.
const opsMaxAge = time.Second

// readyCache is the last answer of /ready.
type readyCache struct {
	mu     sync.Mutex // guards the fields; held while the checks run
	at     time.Time
	status int
	body   []byte
}

// readiness runs the checks concurrently, each bounded by ctx; one that overruns it is
// reported as a timeout without waiting for it. It returns the status and the body.
func (h *Handler) readiness(ctx context.Context) (int, []byte) {
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
		panic(err) // strings and numbers always encode
	}
	return status, body
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
