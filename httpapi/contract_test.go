package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/task"
	"boxoffice/testenv"
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
		if ok && strings.HasSuffix(path, "/parameters") {
			g = optionalAdded(t, path, g, len(w))
		}
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

// optionalAdded returns the first n parameters of got, failing t for each one after them
// that is required: parameters added to an operation must be optional, so that the
// requests of existing clients stay valid.
func optionalAdded(t *testing.T, path string, got []any, n int) []any {
	t.Helper()
	if len(got) < n {
		return got
	}
	for i, p := range got[n:] {
		if m, ok := p.(map[string]any); !ok || m["required"] == true {
			t.Errorf("%s/%d: an added parameter must be optional: %v", path, n+i, p)
		}
	}
	return got[:n]
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
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
			AuthenticationFunc:    bearerPresent,
			SkipSettingDefaults:   true, // the server gets the request as sent
		},
	}
}

// bearerPresent is the contract's view of the bearerAuth scheme: the request carries
// a bearer token. Whether the server knows the token is not the spec's business.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecuritySchemeName != "bearerAuth" {
		return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
	}
	if _, ok := bearerToken(in.RequestValidationInput.Request.Header.Get("Authorization")); !ok {
		return errors.New("no Authorization: Bearer <token>")
	}
	return nil
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

// TestContractPricing validates the pricing routes' requests and responses against the
// spec: successes, and the 400, 401, 403 and 404 answers. A request the server rejects
// for a reason the spec can express must break the spec too (specOK false).
func TestContractPricing(t *testing.T) {
	c := newContract(t)
	const key = "contract-key"
	keyed := newPricingEnv(t, key) // write endpoints need the key
	keyed.work(t)
	open := newPricingEnv(t) // no keys: loopback clients only
	plan := catalogtest.NewPlan("contract", "1")
	for _, e := range []*pricingEnv{keyed, open} {
		e.upsert(t, plan)
	}
	product := onlyProduct(t, plan)
	unknown := catalog.NewID("nobody", "sells", "this").String()

	// A task that ended, with a result, and one that no worker takes.
	rec := keyed.serve(http.MethodPost, "/api/v1/recalculate", "", "", "Bearer "+key)
	checkJSON(t, rec, http.StatusAccepted)
	ended := rec.Header().Get("Location")
	testenv.Poll(t, "the task to end", func() bool {
		return task.State(keyed.task(t, strings.TrimPrefix(ended, "/api/v1/tasks/")).State).Terminal()
	})
	rec = open.serve(http.MethodPost, "/api/v1/recalculate", "", "127.0.0.1:1", "")
	checkJSON(t, rec, http.StatusAccepted)
	pending := rec.Header().Get("Location")

	const (
		local  = "127.0.0.1:40000"
		remote = "192.0.2.1:1234"
	)
	tests := []struct {
		name          string
		env           *pricingEnv
		method        string
		target        string
		body          string
		remoteAddr    string
		authorization string
		wantStatus    int
		specOK        bool // the spec accepts the request
	}{
		{"price", keyed, "POST", "/api/v1/price", priceBody(product, "madrid", true), remote, "", 200, true},
		{"price, cached", keyed, "POST", "/api/v1/price", priceBody(product, "madrid", true), remote, "", 200, true},
		{"price, membership omitted", keyed, "POST", "/api/v1/price", `{"product_id":"` + product.String() + `","user_location":"ibiza"}`, remote, "", 200, true},
		{"price, unknown product", keyed, "POST", "/api/v1/price", `{"product_id":"` + unknown + `","user_location":"madrid"}`, remote, "", 404, true},
		{"price, unknown field", keyed, "POST", "/api/v1/price", `{"product_id":"` + unknown + `","user_location":"madrid","x":1}`, remote, "", 400, false},
		{"price, not a UUID", keyed, "POST", "/api/v1/price", `{"product_id":"291","user_location":"madrid"}`, remote, "", 400, false},
		{"price, wrong type", keyed, "POST", "/api/v1/price", `{"product_id":"` + unknown + `","user_location":"madrid","is_prime_member":"yes"}`, remote, "", 400, false},
		{"price, no location", keyed, "POST", "/api/v1/price", `{"product_id":"` + unknown + `"}`, remote, "", 400, false},
		{"price, no body", keyed, "POST", "/api/v1/price", "", remote, "", 400, false},
		{"price, reserved location", keyed, "POST", "/api/v1/price", `{"product_id":"` + unknown + `","user_location":"*"}`, remote, "", 400, true},
		{"products", keyed, "GET", "/api/v1/events/" + plan.ID.String() + "/products", "", remote, "", 200, true},
		{"products, never priced", open, "GET", "/api/v1/events/" + plan.ID.String() + "/products", "", remote, "", 200, true},
		{"products, unknown event", keyed, "GET", "/api/v1/events/" + unknown + "/products", "", remote, "", 404, true},
		{"products, not a UUID", keyed, "GET", "/api/v1/events/291/products", "", remote, "", 400, false},
		{"recalculate", keyed, "POST", "/api/v1/recalculate", "", remote, "Bearer " + key, 202, true},
		{"recalculate, no key", keyed, "POST", "/api/v1/recalculate", "", remote, "", 401, false},
		{"recalculate, wrong key", keyed, "POST", "/api/v1/recalculate", "", remote, "Bearer nope", 401, true},
		{"recalculate, loopback", open, "POST", "/api/v1/recalculate", "", local, "Bearer unchecked", 202, true},
		{"recalculate, not loopback", open, "POST", "/api/v1/recalculate", "", remote, "", 403, false},
		{"task, ended", keyed, "GET", ended, "", remote, "", 200, true},
		{"task, pending", open, "GET", pending, "", remote, "", 200, true},
		{"task, unknown", keyed, "GET", "/api/v1/tasks/" + unknown, "", remote, "", 404, true},
		{"task, not a UUID", keyed, "GET", "/api/v1/tasks/291", "", remote, "", 400, false},
		{"publish", keyed, "POST", "/api/v1/publish-market-event", `{"location":"madrid","multiplier":1.25,"demand":0.1}`, remote, "Bearer " + key, 202, true},
		{"publish, empty body", keyed, "POST", "/api/v1/publish-market-event", "", remote, "Bearer " + key, 202, true},
		{"publish, out of range", keyed, "POST", "/api/v1/publish-market-event", `{"multiplier":50}`, remote, "Bearer " + key, 400, false},
		{"publish, unknown field", keyed, "POST", "/api/v1/publish-market-event", `{"event_id":1}`, remote, "Bearer " + key, 400, false},
		{"publish, 5 decimals", keyed, "POST", "/api/v1/publish-market-event", `{"demand":0.00001}`, remote, "Bearer " + key, 400, true},
		{"publish, no key", keyed, "POST", "/api/v1/publish-market-event", "", remote, "", 401, false},
		{"publish, not loopback", open, "POST", "/api/v1/publish-market-event", "", remote, "", 403, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The spec's view of the request, on a request of its own: validating one
			// reads its body.
			in := c.input(t, pricingRequest(tt.method, tt.target, tt.body, tt.remoteAddr, tt.authorization))
			err := openapi3filter.ValidateRequest(t.Context(), in)
			switch {
			case tt.specOK && err != nil:
				t.Errorf("%s %s %s: request breaks the spec: %v", tt.method, tt.target, tt.body, err)
			case !tt.specOK && err == nil:
				t.Errorf("%s %s %s: spec accepts the request", tt.method, tt.target, tt.body)
			}
			rec := tt.env.serve(tt.method, tt.target, tt.body, tt.remoteAddr, tt.authorization)
			if rec.Code != tt.wantStatus {
				t.Errorf("%s %s status = %d, want %d; body %s", tt.method, tt.target, rec.Code, tt.wantStatus, rec.Body)
			}
			c.validateResponse(t, in, rec)
		})
	}
}

// pricingRequest is a request like pricingEnv.serve sends.
func pricingRequest(method, target, body, remoteAddr, authorization string) *http.Request {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.RemoteAddr = remoteAddr
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return req
}

// TestContractRecalculateNotEnqueued validates the 503 of a recalculation the broker
// does not take: here the broker is closed.
func TestContractRecalculateNotEnqueued(t *testing.T) {
	c := newContract(t)
	e := newPricingEnv(t)
	if err := e.broker.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/v1/recalculate", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Authorization", "Bearer unchecked")
	in := c.input(t, req)
	if err := openapi3filter.ValidateRequest(t.Context(), in); err != nil {
		t.Errorf("request breaks the spec: %v", err)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503; body %s", rec.Code, rec.Body)
	}
	c.validateResponse(t, in, rec)
}

// TestContractRejectsBadPricingResponses guards the pricing contract: responses that
// break the spec in the ways a bug would must fail validation.
func TestContractRejectsBadPricingResponses(t *testing.T) {
	c := newContract(t)
	id := catalog.NewID("test", "base", "a").String()
	product := `{"product_id":"` + id + `","zone_id":"1","name":"n","numbered":true,"base_price":20.00,"capacity":1,"price":null,"priced_version":0}`
	taskBody := func(field, value string) string {
		fields := map[string]string{"task_id": `"` + id + `"`, "kind": `"recalculate"`, "state": `"pending"`, "trigger": `"api"`,
			"attempts": "0", "requested_at": `"2021-06-30T21:00:00.5Z"`, "started_at": "null", "finished_at": "null",
			"result": "null", "error": "null"}
		fields[field] = value
		var b []string
		for _, k := range []string{"task_id", "kind", "state", "trigger", "attempts", "requested_at", "started_at", "finished_at", "result", "error"} {
			if fields[k] != "" {
				b = append(b, `"`+k+`":`+fields[k])
			}
		}
		return "{" + strings.Join(b, ",") + "}"
	}
	tests := []struct {
		name   string
		method string
		target string
		status int
		body   string
	}{
		{"quote, price as string", "POST", "/api/v1/price", 200,
			`{"product_id":"` + id + `","final_price":"18.00","base_price":20.00,"discount_rate":0.1,"source":"cache"}`},
		{"quote, unknown source", "POST", "/api/v1/price", 200,
			`{"product_id":"` + id + `","final_price":18.00,"base_price":20.00,"discount_rate":0.1,"source":"redis"}`},
		{"quote, missing discount", "POST", "/api/v1/price", 200,
			`{"product_id":"` + id + `","final_price":18.00,"base_price":20.00,"source":"cache"}`},
		{"products, missing price", "GET", "/api/v1/events/" + id + "/products", 200,
			`{"event_id":"` + id + `","products":[` + strings.Replace(product, `"price":null,`, "", 1) + `]}`},
		{"products, event_id not a UUID", "GET", "/api/v1/events/" + id + "/products", 200,
			`{"event_id":"291","products":[` + product + `]}`},
		{"task, unknown state", "GET", "/api/v1/tasks/" + id, 200, taskBody("state", `"done"`)},
		{"task, time without zone", "GET", "/api/v1/tasks/" + id, 200, taskBody("requested_at", `"2021-06-30T21:00:00"`)},
		{"task, result a string", "GET", "/api/v1/tasks/" + id, 200, taskBody("result", `"ok"`)},
		{"task, missing error", "GET", "/api/v1/tasks/" + id, 200, taskBody("error", "")},
		{"accepted, no task_id", "POST", "/api/v1/recalculate", 202, `{"state":"pending"}`},
		{"published, unknown status", "POST", "/api/v1/publish-market-event", 202, `{"event_id":1,"status":"sent"}`},
		{"401 without error code", "POST", "/api/v1/recalculate", 401, `{"data":null,"error":{"message":"x"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := c.input(t, httptest.NewRequest(tt.method, tt.target, nil))
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

// TestContractPages checks paginated searches against the spec: the requests are
// valid, and a first page, a page by cursor, the last page (next_cursor null), a
// 400 for a bad cursor and a 410 for a version no longer kept all answer as it says.
// The spec also rejects limits outside 1 to 1000.
func TestContractPages(t *testing.T) {
	c := newContract(t)
	key := []byte("contract cursor key, long enough")
	plans := manyPlans(t, 5)
	h := New(fixedCatalog{ix: catalog.NewIndex(1, plans, EncodeEvent)}, slog.New(slog.DiscardHandler), Config{CursorKey: key})
	moved := New(fixedCatalog{ix: catalog.NewIndex(2, plans, EncodeEvent)}, slog.New(slog.DiscardHandler), Config{CursorKey: key})
	next := *decodePage(t, get(h, "/search?limit=2")).Data.NextCursor
	tests := []struct {
		name       string
		h          *Handler
		target     string
		wantStatus int
	}{
		{"first page", h, "/search?limit=2", http.StatusOK},
		{"page by cursor", h, "/search?limit=2&cursor=" + next, http.StatusOK},
		{"last page", h, "/search?limit=1000", http.StatusOK},
		{"bad cursor", h, "/search?limit=2&cursor=AAAA", http.StatusBadRequest},
		{"version gone", moved, "/search?limit=2&cursor=" + next, http.StatusGone},
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
	for _, target := range []string{"/search?limit=0", "/search?limit=1001", "/search?limit=ten"} {
		if err := openapi3filter.ValidateRequest(t.Context(), c.input(t, httptest.NewRequest(http.MethodGet, target, nil))); err == nil {
			t.Errorf("spec accepts GET %s", target)
		}
	}
}
