// Package telemetrytest receives the spans that processes export, for tests: a real
// OTLP/HTTP receiver on loopback, which decodes what the exporter sends
// (ExportTraceServiceRequest in protobuf, gzipped or not) the way a collector does.
package telemetrytest

import (
	"cmp"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// maxRequestBytes bounds an export request's body, decompressed.
const maxRequestBytes = 32 << 20

// Span is one received span, with the service.name of the resource that sent it. Ids
// are lowercase hex, as in traceparent; ParentID is "" for a root span.
type Span struct {
	Service  string
	TraceID  string
	SpanID   string
	ParentID string
	Name     string
	Kind     trace.SpanKind
	Attrs    map[string]string // values in their text form: 42, true, "madrid" as madrid
	Links    []string          // "<trace id>-<span id>" of each linked span
	Error    bool              // the span's status is Error
}

// String describes s for test failures.
func (s Span) String() string {
	return fmt.Sprintf("%s %q (%s) span %s parent %s trace %s", s.Service, s.Name, s.Kind, s.SpanID, cmp.Or(s.ParentID, "none"), s.TraceID)
}

// Receiver accepts OTLP/HTTP trace exports at URL()+"/v1/traces" and keeps their spans.
// It is safe for concurrent use.
type Receiver struct {
	srv *httptest.Server
	t   testing.TB

	mu       sync.Mutex // guards spans and encoding
	spans    []Span
	encoding map[string]int // requests by Content-Encoding ("" for none)
}

// NewReceiver starts a Receiver, closed when the test ends. A request it cannot decode
// fails the test; when the test fails, the spans received are logged.
func NewReceiver(t testing.TB) *Receiver {
	r := &Receiver{t: t, encoding: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.srv.Close()
		if t.Failed() {
			for _, s := range r.Spans() {
				t.Logf("received span: %s", s)
			}
		}
	})
	return r
}

// URL returns the receiver's base URL, for OTEL_EXPORTER_OTLP_ENDPOINT.
func (r *Receiver) URL() string { return r.srv.URL }

// Spans returns a copy of the spans received so far, in order of arrival.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Requests returns how many export requests arrived with Content-Encoding encoding
// ("gzip", or "" for none).
func (r *Receiver) Requests(encoding string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.encoding[encoding]
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.Error(w, "want POST /v1/traces", http.StatusNotFound)
		r.t.Errorf("OTLP receiver: unexpected %s %s", req.Method, req.URL.Path)
		return
	}
	spans, err := decode(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		r.t.Errorf("OTLP receiver: %v", err)
		return
	}
	r.mu.Lock()
	r.spans = append(r.spans, spans...)
	r.encoding[req.Header.Get("Content-Encoding")]++
	r.mu.Unlock()
	resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(resp)
}

// decode reads an export request's spans.
func decode(req *http.Request) ([]Span, error) {
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		return nil, fmt.Errorf("content type %q, want application/x-protobuf", ct)
	}
	var body io.Reader = req.Body
	switch enc := req.Header.Get("Content-Encoding"); enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		body = zr
	default:
		return nil, fmt.Errorf("content encoding %q, want gzip or none", enc)
	}
	b, err := io.ReadAll(io.LimitReader(body, maxRequestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(b) > maxRequestBytes {
		return nil, fmt.Errorf("body over %d bytes", maxRequestBytes)
	}
	var export coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &export); err != nil {
		return nil, fmt.Errorf("decode ExportTraceServiceRequest: %w", err)
	}
	var spans []Span
	for _, rs := range export.GetResourceSpans() {
		service := attrs(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := Span{
					Service: service,
					TraceID: hex.EncodeToString(s.GetTraceId()),
					SpanID:  hex.EncodeToString(s.GetSpanId()),
					Name:    s.GetName(),
					Kind:    trace.SpanKind(s.GetKind()), // the same numbers: internal 1 … consumer 5
					Attrs:   attrs(s.GetAttributes()),
					Error:   s.GetStatus().GetCode() == 2, // STATUS_CODE_ERROR
				}
				if p := s.GetParentSpanId(); len(p) > 0 {
					sp.ParentID = hex.EncodeToString(p)
				}
				for _, l := range s.GetLinks() {
					sp.Links = append(sp.Links, hex.EncodeToString(l.GetTraceId())+"-"+hex.EncodeToString(l.GetSpanId()))
				}
				spans = append(spans, sp)
			}
		}
	}
	return spans, nil
}

// attrs returns kvs by key, each value in its text form.
func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.GetStringValue()
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = strconv.FormatInt(v.GetIntValue(), 10)
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = strconv.FormatBool(v.GetBoolValue())
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = strconv.FormatFloat(v.GetDoubleValue(), 'g', -1, 64)
		default:
			m[kv.GetKey()] = strings.TrimSpace(fmt.Sprint(v))
		}
	}
	return m
}
