package providersim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"boxoffice/provider"
)

// Path is the path of the provider's API, where the simulator serves its first
// provider; Config.Feeds adds more at FeedPath(name).
const Path = "/api/events"

// CallHeader is the response header that carries the call number of every answer to
// Path, so that a test can tell which call a response was.
const CallHeader = "X-Simulator-Call"

// sampleFiles are the provider's samples in each format, served byte for byte;
// samples/README.md says where they come from (planList's 2 and 3 are derived from the
// legacy format, the JSON ones from planList's).
//
//go:embed samples/planlist_1.xml samples/planlist_2_derived.xml samples/planlist_3_derived.xml
//go:embed samples/eventlist_1.xml samples/eventlist_2.xml samples/eventlist_3.xml
//go:embed samples/planlist_1.json samples/planlist_2_derived.json samples/planlist_3_derived.json
var sampleFiles embed.FS

// formatFiles describes each format the simulator serves: its samples, its media type,
// and how its documents are spoiled.
var formatFiles = map[string]struct {
	samples     [3]string
	contentType string
	end, bad    string // malform replaces the first end past the middle with bad
	mismatch    string // written between two base plans of a malformed synthetic document
}{
	provider.FormatPlanList: {
		samples:     [3]string{"planlist_1.xml", "planlist_2_derived.xml", "planlist_3_derived.xml"},
		contentType: "application/xml", end: "</plan>", bad: "</base_plan>", mismatch: "      </plan>\n",
	},
	provider.FormatEventList: {
		samples:     [3]string{"eventlist_1.xml", "eventlist_2.xml", "eventlist_3.xml"},
		contentType: "application/xml", end: "</event>", bad: "</base_event>", mismatch: "      </event>\n",
	},
	provider.FormatJSON: {
		samples:     [3]string{"planlist_1.json", "planlist_2_derived.json", "planlist_3_derived.json"},
		contentType: "application/json", end: "]}", bad: "}}", mismatch: "]]\n",
	},
}

// sample is one of the provider's sample documents, ready to serve.
type sample struct {
	body      []byte
	malformed []byte // body with a mismatched closing tag in the middle
	cut       int    // where truncated and partial answers end: inside a tag, past the middle
	etag      string
}

// Where a synthetic document is spoiled: 20 bytes past its middle base plan's start
// lands inside the tag name <base_plan (or </planList> when there are no base plans).
const syntheticCut = 20

// Server is the provider simulator: an http.Handler that answers GET Path as Config
// says, each feed of Config.Feeds at its FeedPath as its own simulator (Server.Feed),
// and 404 or 405 to anything else. Every GET of Path is a call, numbered from 1
// in the order they arrive; what a call gets is a function of the Config and its
// number alone (see Step), so runs are reproducible. Full documents carry a strong
// ETag and a conditional GET whose If-None-Match lists it gets 304.
//
// A Server is safe for concurrent use. Its memory does not grow with the size of the
// synthetic catalog: documents are generated while they are written, and flushed to
// the client as they go.
type Server struct {
	cfg     Config
	path    string             // Path, or a feed's FeedPath
	feeds   map[string]*Server // Config.Feeds' simulators by path; nil in a feed's
	names   map[string]*Server // the same by name
	steps   []Step             // Sequence mode only
	cat     *Catalog
	samples [3]sample

	// Cumulative thresholds of the faults, as 32-bit fixed-point fractions.
	errorMax, malformedMax, truncateMax, hangMax uint64

	calls atomic.Int64
	gens  sync.Pool // *generator, to reuse a base plan's memory across calls

	stop     chan struct{} // closed by Close: ends waits and hangs
	stopOnce sync.Once
}

// New returns a simulator configured by cfg. It panics if cfg is invalid: call
// cfg.Validate first.
func New(cfg Config) *Server {
	if err := cfg.Validate(); err != nil {
		panic("providersim: invalid config: " + err.Error())
	}
	s := newServer(cfg, Path)
	feeds, _ := ParseFeeds(cfg.Feeds) // checked by Validate
	for _, f := range feeds {
		fc := cfg
		fc.Format, fc.Feeds = f.Format, ""
		fs := newServer(fc, FeedPath(f.Name))
		if s.feeds == nil {
			s.feeds, s.names = map[string]*Server{}, map[string]*Server{}
		}
		s.feeds[fs.path], s.names[f.Name] = fs, fs
	}
	return s
}

// newServer returns the simulator of a valid cfg, ignoring its Feeds, served at path.
func newServer(cfg Config, path string) *Server {
	s := &Server{cfg: cfg, path: path, cat: NewCatalog(cfg), stop: make(chan struct{})}
	if cfg.mode() == Sequence {
		s.steps, _ = ParseSequence(cfg.Sequence) // checked by Validate
	}
	ff := formatFiles[cfg.format()]
	for i, name := range ff.samples {
		body, err := sampleFiles.ReadFile("samples/" + name)
		if err != nil {
			panic("providersim: embedded sample: " + err.Error())
		}
		sum := sha256.Sum256(body)
		s.samples[i] = sample{
			body:      body,
			malformed: malform(body, ff.end, ff.bad),
			cut:       cutPoint(body, cfg.format()),
			etag:      `"` + hex.EncodeToString(sum[:12]) + `"`,
		}
	}
	s.errorMax = fixed(cfg.ErrorRate)
	s.malformedMax = s.errorMax + fixed(cfg.MalformedRate)
	s.truncateMax = s.malformedMax + fixed(cfg.TruncateRate)
	s.hangMax = s.truncateMax + fixed(cfg.HangRate)
	s.gens.New = func() any { return &generator{cat: s.cat} }
	return s
}

// malform returns doc with the first end past its middle replaced by bad: in XML a
// mismatched closing tag (</plan> by </base_plan>), in JSON an array closed by a brace.
func malform(doc []byte, end, bad string) []byte {
	mid := len(doc) / 2
	i := bytes.Index(doc[mid:], []byte(end))
	if i < 0 {
		return append(doc[:mid:mid], end...) // cut and closed by something never opened
	}
	i += mid
	out := append([]byte(nil), doc[:i]...)
	out = append(out, bad...)
	return append(out, doc[i+len(end):]...)
}

// cutPoint returns a length that cuts doc past its middle inside the name of a tag (in
// XML) or inside a string (in JSON).
func cutPoint(doc []byte, format string) int {
	mid := len(doc) / 2
	open := byte('<')
	if format == provider.FormatJSON {
		open = '"'
	}
	if i := bytes.IndexByte(doc[mid:], open); i >= 0 && mid+i+3 < len(doc) {
		return mid + i + 3
	}
	return mid
}

// Catalog returns the synthetic catalog that Synthetic mode and "synthetic" steps
// serve, to tell what a call served.
func (s *Server) Catalog() *Catalog { return s.cat }

// Feed returns the simulator of the feed of Config.Feeds called name, which tells
// about the calls to its path as the Server does about Path's; nil if there is none.
func (s *Server) Feed(name string) *Server { return s.names[name] }

// Requests returns the number of calls so far: GETs of Path, whatever their answer.
func (s *Server) Requests() int { return int(s.calls.Load()) }

// Close ends the waits of Latency, slow steps and hangs in progress and to come (its
// feeds' too), so
// that an http.Server shutting down is not held up by them; the waiting calls end
// without a complete answer (503 when nothing was sent yet). Other calls are served
// as before. Close always returns nil.
func (s *Server) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	for _, f := range s.feeds {
		f.Close()
	}
	return nil
}

// Step returns how the Server answers call number call (from 1): the mode's step,
// then the call's fault, if any, in place of its kind (an error fault is a StepStatus
// of 500 or 503). Latency comes on top. A call whose Step is StepServe or StepSlow
// gets its Content whole.
func (s *Server) Step(call int) Step {
	var st Step
	switch s.cfg.mode() {
	case Rotate:
		st = Step{Kind: StepServe, Content: Content((max(call, 1)-1)%3 + 1)}
	case Synthetic:
		st = Step{Kind: StepServe, Content: Generated}
	case Sequence:
		st = s.steps[min(max(call, 1), len(s.steps))-1]
	}
	h := deriveAt(s.cat.seedKey, saltFault, callOf(call))
	switch u := h >> 32; {
	case u < s.errorMax:
		st.Kind, st.Status = StepStatus, 500
		if h&1 == 1 {
			st.Status = 503
		}
	case u < s.malformedMax:
		st.Kind = StepMalformed
	case u < s.truncateMax:
		st.Kind = StepTruncated
	case u < s.hangMax:
		st.Kind = StepHang
	}
	return st
}

// ServeHTTP answers one request; see Server.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.feeds[r.URL.Path]; ok {
		f.ServeHTTP(w, r)
		return
	}
	if r.URL.Path != s.path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	call := int(s.calls.Add(1))
	w.Header().Set(CallHeader, strconv.Itoa(call))
	if !s.wait(w, r, s.cfg.Latency) {
		return
	}
	st := s.Step(call)
	switch st.Kind {
	case StepStatus:
		writeStatus(w, st.Status)
	case StepSlow:
		if s.wait(w, r, s.cfg.SlowDelay) {
			s.serve(w, r, call, Step{Kind: StepServe, Content: st.Content})
		}
	default:
		s.serve(w, r, call, st)
	}
}

// wait waits for d and reports whether to go on answering: not when the client went
// away, nor when the Server was closed, which it answers 503.
func (s *Server) wait(w http.ResponseWriter, r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.stop:
		writeStatus(w, http.StatusServiceUnavailable)
	}
	return false
}

// hang waits until the client goes away or the Server is closed.
func (s *Server) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.stop:
	}
}

func writeStatus(w http.ResponseWriter, code int) {
	if code == http.StatusNotModified || code == http.StatusNoContent {
		w.WriteHeader(code)
		return
	}
	http.Error(w, fmt.Sprintf("simulated %d %s", code, http.StatusText(code)), code)
}

// serve answers with the step's content: whole (or 304), malformed, truncated, or
// partly before a hang or an abort.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, call int, st Step) {
	h := w.Header()
	if st.Kind == StepServe {
		etag := s.etag(call, st.Content)
		h.Set("ETag", etag)
		if etagListed(strings.Join(r.Header.Values("If-None-Match"), ","), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h.Set("Content-Type", formatFiles[s.cfg.format()].contentType)
	if st.Content == Generated {
		s.serveGenerated(w, r, call, st.Kind)
		return
	}
	smp := &s.samples[st.Content-1]
	body, length := smp.body, len(smp.body)
	switch st.Kind {
	case StepMalformed:
		body, length = smp.malformed, len(smp.malformed)
	case StepTruncated:
		body, length = smp.body[:smp.cut], smp.cut
	case StepHang, StepAbort:
		body = smp.body[:smp.cut] // announced whole, sent in part
	}
	h.Set("Content-Length", strconv.Itoa(length))
	if _, err := w.Write(body); err != nil {
		return // the client went away
	}
	s.finish(w, r, st.Kind)
}

// finish ends a partial answer: a hang waits for the client to go away, an abort
// drops the connection.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, kind StepKind) {
	switch kind {
	case StepHang:
		flush(w)
		s.hang(r)
	case StepAbort:
		flush(w)
		// net/http's documented way to drop a connection without logging a stack.
		panic(http.ErrAbortHandler)
	}
}

func flush(w http.ResponseWriter) {
	// ErrNotSupported leaves the bytes to go out when the handler returns.
	_ = http.NewResponseController(w).Flush()
}

// etag returns the ETag of a content as served at call.
func (s *Server) etag(call int, c Content) string {
	if c == Generated {
		return s.cat.etag(call)
	}
	return s.samples[c-1].etag
}

// etagListed reports whether an If-None-Match value lists etag or is "*". Like
// RFC 9110 asks for If-None-Match, the comparison is weak: W/"x" matches "x".
func etagListed(header, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for {
		header = strings.TrimLeft(header, " \t,")
		switch {
		case header == "":
			return false
		case header[0] == '*':
			return true
		}
		header = strings.TrimPrefix(header, "W/")
		if header == "" || header[0] != '"' {
			return false // not an entity tag: ignore the rest
		}
		end := strings.IndexByte(header[1:], '"')
		if end < 0 {
			return false
		}
		if header[:end+2] == etag {
			return true
		}
		header = header[end+2:]
	}
}

// errCut stops the generation of a truncated document once its cut is written.
var errCut = errors.New("document cut")

// responseSink passes a document's bytes to the client, flushing each write (the
// provider.Writer writes 32 KiB at a time), and drops everything past limit when
// limit is not negative.
type responseSink struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	written int64
	limit   int64
}

func (rs *responseSink) Write(p []byte) (int, error) {
	q := p
	if rs.limit >= 0 && rs.written+int64(len(q)) > rs.limit {
		q = q[:rs.limit-rs.written]
	}
	n, err := rs.w.Write(q)
	rs.written += int64(n)
	if err != nil {
		return n, err
	}
	_ = rs.rc.Flush() // ErrNotSupported: the bytes go out when the buffer fills
	if len(q) < len(p) {
		return n, errCut
	}
	return n, nil
}

// serveGenerated streams the synthetic document of call, spoiled as kind says: a
// mismatched tag or a cut at the middle base plan, or a stop there for a hang or an
// abort.
func (s *Server) serveGenerated(w http.ResponseWriter, r *http.Request, call int, kind StepKind) {
	sink := &responseSink{w: w, rc: http.NewResponseController(w), limit: -1}
	err := s.stream(r.Context(), sink, call, kind)
	if err != nil && !errors.Is(err, errCut) {
		return // the client went away
	}
	s.finish(w, r, kind)
}

// stream writes the synthetic document of call to sink.
func (s *Server) stream(ctx context.Context, sink *responseSink, call int, kind StepKind) error {
	g := s.gens.Get().(*generator)
	defer s.gens.Put(g)
	pw, err := provider.NewFormatWriter(sink, s.cfg.format())
	if err != nil {
		return err // checked by Validate
	}
	n := s.cfg.BasePlans
	mid := n / 2
	for b := 0; ; b++ {
		if b == mid {
			if err := pw.Flush(); err != nil {
				return err
			}
			switch kind {
			case StepMalformed:
				if _, err := io.WriteString(sink, formatFiles[s.cfg.format()].mismatch); err != nil {
					return err
				}
			case StepTruncated:
				sink.limit = sink.written + syntheticCut
			case StepHang, StepAbort:
				return nil
			}
		}
		if b == n {
			break
		}
		if b%64 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if g.fill(call, b) {
			if err := pw.WriteBasePlan(g.bp); err != nil {
				return err
			}
		}
	}
	return pw.Close()
}
