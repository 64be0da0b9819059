package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"boxoffice/catalog"
)

var defineFormatsOnce sync.Once

// defineFormats makes kin-openapi check every string format the spec uses, strictly.
// It knows none of "time" and "uuid" by default, and only approximates "date" (it
// takes 2021-02-31) and "date-time" (it takes a missing zone). The registry is global
// to kin-openapi, hence once per test binary.
func defineFormats() {
	defineFormatsOnce.Do(func() {
		partialTime := regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$`)
		openapi3.DefineStringFormatValidator("time", openapi3.NewCallbackValidator(func(s string) error {
			if !partialTime.MatchString(s) {
				return fmt.Errorf("not a time of day hh:mm:ss: %q", s)
			}
			return nil
		}))
		openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC4122))
		openapi3.DefineStringFormatValidator("date", openapi3.NewCallbackValidator(func(s string) error {
			_, err := time.Parse(time.DateOnly, s)
			return err
		}))
		openapi3.DefineStringFormatValidator("date-time", openapi3.NewCallbackValidator(func(s string) error {
			_, err := time.Parse(time.RFC3339Nano, s)
			return err
		}))
	})
}

// loadSpec loads and validates the embedded OpenAPI document.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	defineFormats()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIYAML)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableSchemaFormatValidation(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("openapi.yaml is invalid: %v", err)
	}
	return doc
}

func TestSpecIsValid(t *testing.T) {
	loadSpec(t)
	if _, _, err := openAPIJSON(openAPIYAML); err != nil {
		t.Fatalf("openAPIJSON() error: %v", err)
	}
}

// TestSpecExtendsOriginal checks that every field of the spec we were given
// (testdata/fever-swagger.yaml, a copy) is in ours with the same value. Only
// descriptions, which we extended, and the servers, which we replaced, may differ.
func TestSpecExtendsOriginal(t *testing.T) {
	original, err := os.ReadFile("testdata/fever-swagger.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var orig, ours map[string]any
	for _, c := range []struct {
		yaml []byte
		into *map[string]any
	}{{original, &orig}, {openAPIYAML, &ours}} {
		doc, err := openapi3.NewLoader().LoadFromData(c.yaml)
		if err != nil {
			t.Fatal(err)
		}
		b, err := doc.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, c.into); err != nil {
			t.Fatal(err)
		}
	}
	delete(orig, "servers")
	checkSubset(t, "", orig, ours)
}

// checkSubset fails t for each value of want missing or different in got, except
// descriptions.
func checkSubset(t *testing.T, path string, want, got any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: got %T, want an object", path, got)
			return
		}
		for k, v := range w {
			if k == "description" {
				continue
			}
			gv, ok := g[k]
			if !ok {
				t.Errorf("%s/%s: missing", path, k)
				continue
			}
			checkSubset(t, path+"/"+k, v, gv)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			t.Errorf("%s: got %v, want %v", path, got, want)
			return
		}
		for i := range w {
			checkSubset(t, fmt.Sprintf("%s/%d", path, i), w[i], g[i])
		}
	default:
		if want != got {
			t.Errorf("%s: got %v, want %v", path, got, want)
		}
	}
}

// TestFormatsAreValidated guards the contract test: a format kin-openapi skipped
// would let a malformed response through.
func TestFormatsAreValidated(t *testing.T) {
	defineFormats()
	tests := []struct {
		format string
		good   string
		bad    string
	}{
		{"uuid", catalog.NewID("p", "1", "2").String(), "6a5e7fc8-bd5e-51f7-a156"},
		{"time", "22:38:19", "9pm"},
		{"time", "00:00:00", "24:00:00"},
		{"date", "2021-06-30", "2021-02-31"},
		{"date", "2024-02-29", "2021-06-30T00:00:00Z"},
		{"date-time", "2021-06-30T21:00:00Z", "2021-06-30T21:00:00"},
		{"date-time", "2021-06-30T21:00:00.5+01:00", "2021-06-30"},
	}
	for _, tt := range tests {
		t.Run(tt.format+" "+tt.bad, func(t *testing.T) {
			s := openapi3.NewStringSchema()
			s.Format = tt.format
			if err := s.VisitJSON(tt.good); err != nil {
				t.Errorf("format %s: %q rejected: %v", tt.format, tt.good, err)
			}
			if err := s.VisitJSON(tt.bad); err == nil {
				t.Errorf("format %s: %q accepted", tt.format, tt.bad)
			}
		})
	}
}

// contract validates requests to, and responses from, the API against its spec.
type contract struct {
	router routers.Router
}

func newContract(t *testing.T) contract {
	t.Helper()
	router, err := legacy.NewRouter(loadSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	return contract{router: router}
}

// input returns the validation input of req, failing t if the spec has no route for it.
func (c contract) input(t *testing.T, req *http.Request) *openapi3filter.RequestValidationInput {
	t.Helper()
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s: no route in the spec: %v", req.Method, req.URL, err)
	}
	return &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      route,
		Options:    &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
}

// validateResponse fails t if rec is not a response the spec allows to in.
func (c contract) validateResponse(t *testing.T, in *openapi3filter.RequestValidationInput, rec *httptest.ResponseRecorder) {
	t.Helper()
	err := openapi3filter.ValidateResponse(t.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		Options:                in.Options,
	})
	if err != nil {
		t.Errorf("%s %s: response %d %s breaks the spec: %v", in.Request.Method, in.Request.URL, rec.Code, rec.Body, err)
	}
}

func TestContract(t *testing.T) {
	c := newContract(t)
	loaded := newTestHandler(t, testPlans(t))
	notLoaded := newTestHandler(t, nil)
	tests := []struct {
		name       string
		h          *Handler
		target     string
		wantStatus int
	}{
		{"search with events", loaded, "/search?starts_at=2021-02-01T00:00:00Z&ends_at=2022-07-03T00:00:00Z", http.StatusOK},
		{"search, null prices", loaded, "/search?ends_at=2021-06-30T22:00:00%2B00:00", http.StatusOK},
		{"search, no bounds", loaded, "/search", http.StatusOK},
		{"search, empty", loaded, "/search?starts_at=2030-01-01T00:00:00Z", http.StatusOK},
		{"search, inverted", loaded, "/search?starts_at=2021-08-01T00:00:00Z&ends_at=2021-07-01T00:00:00Z", http.StatusBadRequest},
		{"search, not loaded", notLoaded, "/search", http.StatusServiceUnavailable},
		{"health", loaded, "/health", http.StatusOK},
		{"ready", loaded, "/ready", http.StatusOK},
		{"not ready", notLoaded, "/ready", http.StatusServiceUnavailable},
		{"openapi.json", loaded, "/openapi.json", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.target, nil)
			in := c.input(t, req)
			if err := openapi3filter.ValidateRequest(t.Context(), in); err != nil {
				t.Errorf("GET %s: request breaks the spec: %v", tt.target, err)
			}
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("GET %s status = %d, want %d", tt.target, rec.Code, tt.wantStatus)
			}
			c.validateResponse(t, in, rec)
		})
	}
}

// TestContractMalformedRequest checks that the spec and the server agree about a
// malformed bound: the spec rejects the request, and the server's 400 is in the spec.
func TestContractMalformedRequest(t *testing.T) {
	c := newContract(t)
	h := newTestHandler(t, testPlans(t))
	req := httptest.NewRequest(http.MethodGet, "/search?starts_at=2021-13-01T00:00:00Z", nil)
	in := c.input(t, req)
	if err := openapi3filter.ValidateRequest(t.Context(), in); err == nil {
		t.Error("spec accepts starts_at=2021-13-01T00:00:00Z")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", rec.Code)
	}
	c.validateResponse(t, in, rec)
}

// TestContractRejectsBadResponses guards the contract test: responses that break the
// spec in the ways a bug would must fail validation.
func TestContractRejectsBadResponses(t *testing.T) {
	c := newContract(t)
	id := catalog.NewID("test", "base", "a").String()
	event := func(field, value string) string {
		fields := map[string]string{
			"id": `"` + id + `"`, "title": `"t"`, "start_date": `"2021-06-30"`, "start_time": `"21:00:00"`,
			"end_date": `"2021-06-30"`, "end_time": `"22:00:00"`, "min_price": "15.00", "max_price": "30.00",
		}
		fields[field] = value
		b := []byte{'{'}
		for _, k := range []string{"id", "title", "start_date", "start_time", "end_date", "end_time", "min_price", "max_price"} {
			if fields[k] == "" {
				continue
			}
			if len(b) > 1 {
				b = append(b, ',')
			}
			b = append(b, `"`+k+`":`+fields[k]...)
		}
		return `{"data":{"events":[` + string(append(b, '}')) + `]},"error":null}`
	}
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"id not a uuid", http.StatusOK, event("id", `"291"`)},
		{"start_time not a time", http.StatusOK, event("start_time", `"9pm"`)},
		{"start_date not a date", http.StatusOK, event("start_date", `"2021-02-31"`)},
		{"end_date with time", http.StatusOK, event("end_date", `"2021-06-30T22:00:00Z"`)},
		{"price as string", http.StatusOK, event("min_price", `"15.00"`)},
		{"missing title", http.StatusOK, event("title", "")},
		{"no error member", http.StatusOK, `{"data":{"events":[]}}`},
		{"error without code", http.StatusBadRequest, `{"data":null,"error":{"message":"x"}}`},
		{"undocumented status", http.StatusTeapot, `{"data":null,"error":{"code":"x","message":"x"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := c.input(t, httptest.NewRequest(http.MethodGet, "/search", nil))
			err := openapi3filter.ValidateResponse(t.Context(), &openapi3filter.ResponseValidationInput{
				RequestValidationInput: in,
				Status:                 tt.status,
				Header:                 http.Header{"Content-Type": {contentTypeJSON}},
				Body:                   io.NopCloser(bytes.NewReader([]byte(tt.body))),
				Options:                in.Options,
			})
			if err == nil {
				t.Errorf("response %d %s passes validation", tt.status, tt.body)
			}
		})
	}
}

// TestContractCaching checks the HTTP caching of searches against the spec: the
// headers of a 200, a 304 on a matching If-None-Match, and /metrics.
func TestContractCaching(t *testing.T) {
	c := newContract(t)
	h := newTestHandler(t, testPlans(t))
	const target = "/search?starts_at=2021-02-01T00:00:00Z"
	tests := []struct {
		name        string
		target      string
		ifNoneMatch bool
		wantStatus  int
	}{
		{"search", target, false, http.StatusOK},
		{"search, not modified", target, true, http.StatusNotModified},
		{"metrics", "/metrics", false, http.StatusOK},
	}
	etag := get(h, target).Header().Get("ETag")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.target, nil)
			if tt.ifNoneMatch {
				req.Header.Set("If-None-Match", etag)
			}
			in := c.input(t, req)
			if err := openapi3filter.ValidateRequest(t.Context(), in); err != nil {
				t.Errorf("GET %s: request breaks the spec: %v", tt.target, err)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("GET %s status = %d, want %d", tt.target, rec.Code, tt.wantStatus)
			}
			c.validateResponse(t, in, rec)
		})
	}
}
