package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/memory"
	"boxoffice/pricing"
	"boxoffice/sqlite"
	"boxoffice/task"
	"boxoffice/testenv"
)

// pricingEnv is a Handler over a real pricing.Service on the embedded adapters: the
// SQLite store and broker, and the in-process price cache and bus.
type pricingEnv struct {
	h      *Handler
	store  *sqlite.Store
	cache  *memory.PriceCache
	bus    *memory.Bus
	broker *sqlite.Broker
	log    *slog.Logger
}

// newPricingEnv returns an environment with a fresh store, whose write endpoints
// accept keys (loopback clients only when there are none).
func newPricingEnv(t testing.TB, keys ...string) *pricingEnv {
	t.Helper()
	ctx := t.Context()
	store, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e := &pricingEnv{
		store:  store,
		cache:  memory.NewPriceCache(1000, nil),
		bus:    memory.NewBus(),
		log:    slog.New(slog.DiscardHandler),
		broker: nil,
	}
	e.broker, err = sqlite.OpenBroker(ctx, t.TempDir(), sqlite.BrokerConfig{}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.broker.Close() })
	quoter := pricing.NewQuoter(store, e.cache, pricing.QuoterConfig{TTL: time.Minute}, e.log)
	svc := pricing.NewService(quoter, store, store, e.bus, e.broker, pricing.ServiceConfig{}, e.log)
	e.h = New(nil, e.log, Config{Pricing: svc, APIKeys: keys})
	return e
}

// upsert stores plans, which gives their zones products.
func (e *pricingEnv) upsert(t testing.TB, plans ...catalog.Plan) {
	t.Helper()
	if _, err := e.store.UpsertPlans(t.Context(), plans); err != nil {
		t.Fatal(err)
	}
}

// work runs a worker that recalculates prices from the broker until the test ends.
func (e *pricingEnv) work(t *testing.T) {
	rc := pricing.NewRecalculator(e.store, e.store, e.cache, memory.NewLocker(nil),
		pricing.RecalcConfig{LockTTL: 10 * time.Second, LockWait: time.Minute, BatchSize: 10}, e.log)
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := e.broker.Subscribe(ctx, pricing.TopicRecalculate, rc.Handle); err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// recalculate asks for a recalculation through the API, as a loopback client, waits for
// a worker (see work) to end it, and returns the task.
func (e *pricingEnv) recalculate(t *testing.T) taskResponse {
	t.Helper()
	rec := e.serve(http.MethodPost, "/api/v1/recalculate", "", "127.0.0.1:40000", "")
	checkJSON(t, rec, http.StatusAccepted)
	var accepted struct {
		TaskID string `json:"task_id"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &accepted); err != nil {
		t.Fatal(err)
	}
	var got taskResponse
	testenv.Poll(t, "task "+accepted.TaskID+" to end", func() bool {
		got = e.task(t, accepted.TaskID)
		return task.State(got.State).Terminal()
	})
	if got.State != string(task.Succeeded) {
		t.Fatalf("task %s ended %s: %s", got.TaskID, got.State, derefString(got.Error))
	}
	return got
}

// task returns the API's account of task id, failing t unless it is a 200.
func (e *pricingEnv) task(t *testing.T, id string) taskResponse {
	t.Helper()
	rec := e.serve(http.MethodGet, "/api/v1/tasks/"+id, "", "", "")
	checkJSON(t, rec, http.StatusOK)
	var got taskResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// serve sends a request with body (none when empty) from remoteAddr (httptest's
// non-loopback default when empty), with authorization as the Authorization header
// when not empty.
func (e *pricingEnv) serve(method, target, body, remoteAddr, authorization string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if remoteAddr != "" {
		req.RemoteAddr = remoteAddr
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// price posts body to /api/v1/price.
func (e *pricingEnv) price(body string) *httptest.ResponseRecorder {
	return e.serve(http.MethodPost, "/api/v1/price", body, "", "")
}

// taskResponse is the body of GET /api/v1/tasks/{task_id}.
type taskResponse struct {
	TaskID      string          `json:"task_id"`
	Kind        string          `json:"kind"`
	State       string          `json:"state"`
	Trigger     string          `json:"trigger"`
	Attempts    int             `json:"attempts"`
	RequestedAt *string         `json:"requested_at"`
	StartedAt   *string         `json:"started_at"`
	FinishedAt  *string         `json:"finished_at"`
	Result      json.RawMessage `json:"result"`
	Error       *string         `json:"error"`
}

func derefString(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// priceBody returns the body of a price request.
func priceBody(product catalog.ID, location string, prime bool) string {
	loc, _ := json.Marshal(location)
	return `{"product_id":"` + product.String() + `","user_location":` + string(loc) +
		`,"is_prime_member":` + strconv.FormatBool(prime) + `}`
}

// quoteBody returns the expected body of a quote.
func quoteBody(product catalog.ID, final, base, discount, source string) string {
	return `{"product_id":"` + product.String() + `","final_price":` + final + `,"base_price":` + base +
		`,"discount_rate":` + discount + `,"source":"` + source + `"}`
}

// onlyProduct returns the ID of the product of a plan with one zone.
func onlyProduct(t testing.TB, p catalog.Plan) catalog.ID {
	t.Helper()
	products := pricing.Products(p)
	if len(products) != 1 {
		t.Fatalf("plan %s has %d products, want 1", p.ID, len(products))
	}
	return products[0].ID
}

// TestPriceQuotes prices one product for members and not, in a location with a market
// of its own and one without, twice: the first quotes are computed from the store and
// the second come from four distinct cache entries, with the same prices.
func TestPriceQuotes(t *testing.T) {
	e := newPricingEnv(t)
	e.work(t)
	plan := catalogtest.NewPlan("quotes", "1") // one zone at 20.00, capacity 100, long past: no surcharge
	e.upsert(t, plan)
	product := onlyProduct(t, plan)

	rec := e.serve(http.MethodPost, "/api/v1/publish-market-event", `{"location":"Madrid","multiplier":1.25}`, "127.0.0.1:40000", "")
	checkJSON(t, rec, http.StatusAccepted)
	e.recalculate(t) // folds the event into madrid's market and makes a pricing version current

	tests := []struct {
		location string
		prime    bool
		final    string
		discount string
	}{
		{"madrid", false, "25.00", "0"},
		{"madrid", true, "22.50", "0.1"},
		{"barcelona", false, "20.00", "0"},
		{"barcelona", true, "18.00", "0.1"},
	}
	for _, source := range []string{pricing.SourceDatabase, pricing.SourceCache} {
		for _, tt := range tests {
			rec := e.price(priceBody(product, tt.location, tt.prime))
			checkJSON(t, rec, http.StatusOK)
			want := quoteBody(product, tt.final, "20.00", tt.discount, source)
			if got := rec.Body.String(); got != want {
				t.Errorf("price %s prime=%v:\n got %s\nwant %s", tt.location, tt.prime, got, want)
			}
		}
	}

	// A location is normalized before it names a market and a cache entry.
	rec = e.price(priceBody(product, "  MADRID ", false))
	checkJSON(t, rec, http.StatusOK)
	if got, want := rec.Body.String(), quoteBody(product, "25.00", "20.00", "0", pricing.SourceCache); got != want {
		t.Errorf("price \"  MADRID \" = %s, want %s", got, want)
	}
	// is_prime_member is optional: not a member.
	rec = e.price(`{"product_id":"` + product.String() + `","user_location":"barcelona"}`)
	checkJSON(t, rec, http.StatusOK)
	if got, want := rec.Body.String(), quoteBody(product, "20.00", "20.00", "0", pricing.SourceCache); got != want {
		t.Errorf("price without is_prime_member = %s, want %s", got, want)
	}
}

// TestPriceBeforeAnyRecalculation checks that a product is priced before any
// recalculation ran: from the store, then from the cache.
func TestPriceBeforeAnyRecalculation(t *testing.T) {
	e := newPricingEnv(t)
	plan := catalogtest.NewPlan("fresh", "1")
	e.upsert(t, plan)
	product := onlyProduct(t, plan)
	for _, source := range []string{pricing.SourceDatabase, pricing.SourceCache} {
		rec := e.price(priceBody(product, "sevilla", true))
		checkJSON(t, rec, http.StatusOK)
		if got, want := rec.Body.String(), quoteBody(product, "18.00", "20.00", "0.1", source); got != want {
			t.Errorf("price = %s, want %s", got, want)
		}
	}
}

func TestPriceUnknownProduct(t *testing.T) {
	e := newPricingEnv(t)
	e.upsert(t, catalogtest.NewPlan("known", "1"))
	rec := e.price(priceBody(catalog.NewID("nobody", "sells", "this"), "madrid", false))
	checkJSON(t, rec, http.StatusNotFound)
	got := decodeError(t, rec)
	if got.Error.Code != "not_found" || got.Error.Message != "product not found" {
		t.Errorf("error = %+v, want not_found: product not found", got.Error)
	}
}

// validPrice is a price request body that only its product makes fail.
const validPrice = `{"product_id":"6a5e7fc8-bd5e-51f7-a156-7b3e1c5d0f2a","user_location":"madrid"}`

func TestPriceBadBody(t *testing.T) {
	e := newPricingEnv(t)
	id := `"6a5e7fc8-bd5e-51f7-a156-7b3e1c5d0f2a"`
	tests := []struct {
		name string
		body string
		want string // in the message
	}{
		{"empty", "", "request body is empty"},
		{"blank", " \n\t", "request body is empty"},
		{"array", `[` + validPrice + `]`, "must be a JSON object"},
		{"null", `null`, "must be a JSON object"},
		{"string", `"madrid"`, "must be a JSON object"},
		{"unknown field", `{"product_id":` + id + `,"user_location":"madrid","coupon":"FREE"}`, `unknown field "coupon"`},
		{"repeated field", `{"product_id":` + id + `,"user_location":"madrid","is_prime_member":false,"is_prime_member":true}`, `field "is_prime_member" repeated`},
		{"field in another case", `{"Product_ID":` + id + `,"user_location":"madrid"}`, `unknown field "Product_ID"`},
		{"product_id a number", `{"product_id":42,"user_location":"madrid"}`, `field "product_id" must be a string`},
		{"product_id null", `{"product_id":null,"user_location":"madrid"}`, `field "product_id" must be a string`},
		{"user_location an object", `{"product_id":` + id + `,"user_location":{}}`, `field "user_location" must be a string`},
		{"is_prime_member a string", `{"product_id":` + id + `,"user_location":"madrid","is_prime_member":"yes"}`, `field "is_prime_member" must be a boolean`},
		{"is_prime_member a number", `{"product_id":` + id + `,"user_location":"madrid","is_prime_member":1}`, `field "is_prime_member" must be a boolean`},
		{"is_prime_member null", `{"product_id":` + id + `,"user_location":"madrid","is_prime_member":null}`, `field "is_prime_member" must be a boolean`},
		{"product_id not a UUID", `{"product_id":"291","user_location":"madrid"}`, `product_id "291" is not a UUID`},
		{"product_id a UUID without dashes", `{"product_id":"6a5e7fc8bd5e51f7a1567b3e1c5d0f2a","user_location":"madrid"}`, "is not a UUID"},
		{"missing product_id", `{"user_location":"madrid"}`, "product_id is required"},
		{"missing user_location", `{"product_id":` + id + `}`, "user_location is required"},
		{"blank user_location", `{"product_id":` + id + `,"user_location":"  "}`, "user_location is empty"},
		{"global user_location", `{"product_id":` + id + `,"user_location":"*"}`, "reserved"},
		{"control character in user_location", `{"product_id":` + id + `,"user_location":"ma\u0007drid"}`, "control characters"},
		{"overlong user_location", `{"product_id":` + id + `,"user_location":"` + strings.Repeat("a", 65) + `"}`, "longer than 64 bytes"},
		{"second object", validPrice + validPrice, "data after the JSON object"},
		{"trailing garbage", validPrice + ` x`, "data after the JSON object"},
		{"truncated", `{"product_id":` + id, "truncated JSON"},
		{"syntax error", `{"product_id" ` + id + `}`, "invalid JSON at byte"},
		{"oversize", validPrice[:len(validPrice)-1] + strings.Repeat(" ", maxBodyBytes) + "}", "larger than the 4096 bytes accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.price(tt.body)
			checkJSON(t, rec, http.StatusBadRequest)
			got := decodeError(t, rec)
			if got.Error.Code != "bad_request" || !strings.Contains(got.Error.Message, tt.want) {
				t.Errorf("POST %.80q: error = %+v, want bad_request with %q", tt.body, got.Error, tt.want)
			}
		})
	}
}

// TestPriceBodyAtLimit checks that a body of exactly the limit is read whole.
func TestPriceBodyAtLimit(t *testing.T) {
	e := newPricingEnv(t)
	plan := catalogtest.NewPlan("limit", "1")
	e.upsert(t, plan)
	product := onlyProduct(t, plan)
	body := priceBody(product, "madrid", false)
	body = body[:len(body)-1] + strings.Repeat(" ", maxBodyBytes-len(body)) + "}"
	if len(body) != maxBodyBytes {
		t.Fatalf("body of %d bytes, want %d", len(body), maxBodyBytes)
	}
	rec := e.price(body)
	checkJSON(t, rec, http.StatusOK)
}

func TestEventProducts(t *testing.T) {
	e := newPricingEnv(t)
	e.work(t)
	plan := catalogtest.NewPlan("products", "1", catalogtest.Zones(
		catalog.Zone{ZoneID: "186", Name: "Amfiteatre \"A\"", Capacity: 8, Price: 7500, Numbered: true},
		catalog.Zone{ZoneID: "186", Name: "Amfiteatre \"A\"", Capacity: 0, Price: 6500},
	))
	e.upsert(t, plan)
	products := pricing.Products(plan)
	target := "/api/v1/events/" + plan.ID.String() + "/products"
	want := func(price1, price2 string, version int64) string {
		v := strconv.FormatInt(version, 10)
		return `{"event_id":"` + plan.ID.String() + `","products":[` +
			`{"product_id":"` + products[0].ID.String() + `","zone_id":"186","name":"Amfiteatre \"A\"","numbered":true,` +
			`"base_price":75.00,"capacity":8,"price":` + price1 + `,"priced_version":` + v + `},` +
			`{"product_id":"` + products[1].ID.String() + `","zone_id":"186","name":"Amfiteatre \"A\"","numbered":false,` +
			`"base_price":65.00,"capacity":0,"price":` + price2 + `,"priced_version":` + v + `}]}`
	}

	rec := e.serve(http.MethodGet, target, "", "", "")
	checkJSON(t, rec, http.StatusOK)
	if got, want := rec.Body.String(), want("null", "null", 0); got != want {
		t.Errorf("before a recalculation:\n got %s\nwant %s", got, want)
	}

	e.recalculate(t)
	st, err := e.store.PricingState(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Version == 0 {
		t.Fatal("pricing version 0 after a recalculation")
	}
	// The first zone is scarce (8 left: +10% demand), the second sold out (+20%).
	rec = e.serve(http.MethodGet, target, "", "", "")
	checkJSON(t, rec, http.StatusOK)
	if got, want := rec.Body.String(), want("82.50", "78.00", st.Version); got != want {
		t.Errorf("after a recalculation:\n got %s\nwant %s", got, want)
	}
}

func TestEventProductsErrors(t *testing.T) {
	e := newPricingEnv(t)
	offline := catalogtest.NewPlan("offline", "1", catalogtest.Offline)
	e.upsert(t, catalogtest.NewPlan("online", "1"), offline)
	tests := []struct {
		name       string
		id         string
		wantStatus int
		wantMsg    string
	}{
		{"not a UUID", "291", http.StatusBadRequest, `event id "291" is not a UUID`},
		{"unknown", catalog.NewID("nobody", "has", "this").String(), http.StatusNotFound, "event not found"},
		{"never online", offline.ID.String(), http.StatusNotFound, "event not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.serve(http.MethodGet, "/api/v1/events/"+tt.id+"/products", "", "", "")
			checkJSON(t, rec, tt.wantStatus)
			if got := decodeError(t, rec); got.Error.Message != tt.wantMsg {
				t.Errorf("message = %q, want %q", got.Error.Message, tt.wantMsg)
			}
		})
	}
}

// TestRecalculate checks that a recalculation is enqueued on the broker, pending, and
// that its task tells how it ends once a worker runs it.
func TestRecalculate(t *testing.T) {
	e := newPricingEnv(t)
	e.upsert(t, catalogtest.NewPlan("recalc", "1"))
	before := time.Now()
	rec := e.serve(http.MethodPost, "/api/v1/recalculate", "", "127.0.0.1:40000", "")
	checkJSON(t, rec, http.StatusAccepted)
	var accepted struct {
		TaskID string `json:"task_id"`
		State  string `json:"state"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &accepted); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.ParseID(accepted.TaskID); err != nil || accepted.State != "pending" {
		t.Errorf("body %s: want a UUID task_id and state pending", rec.Body)
	}
	if got, want := rec.Header().Get("Location"), "/api/v1/tasks/"+accepted.TaskID; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if n, err := e.broker.QueueDepth(t.Context(), pricing.TopicRecalculate); err != nil || n != 1 {
		t.Errorf("%d messages on %s (%v), want 1", n, pricing.TopicRecalculate, err)
	}

	pending := e.task(t, accepted.TaskID)
	if pending.RequestedAt == nil {
		t.Fatal("requested_at is null")
	}
	requested, err := time.Parse(time.RFC3339Nano, *pending.RequestedAt)
	if err != nil || !strings.HasSuffix(*pending.RequestedAt, "Z") {
		t.Errorf("requested_at = %q, want RFC 3339 in UTC (%v)", *pending.RequestedAt, err)
	}
	if requested.Before(before.Truncate(time.Millisecond)) || requested.After(time.Now()) {
		t.Errorf("requested_at = %v, want between %v and now", requested, before)
	}
	pending.RequestedAt = nil
	wantPending := taskResponse{TaskID: accepted.TaskID, Kind: pricing.Kind, State: "pending", Trigger: "api",
		Result: json.RawMessage("null")}
	if diff := cmp.Diff(wantPending, pending); diff != "" {
		t.Errorf("pending task (-want +got):\n%s", diff)
	}

	e.work(t)
	var done taskResponse
	testenv.Poll(t, "the task to end", func() bool {
		done = e.task(t, accepted.TaskID)
		return task.State(done.State).Terminal()
	})
	if done.State != "succeeded" || done.Attempts != 1 || done.StartedAt == nil || done.FinishedAt == nil || done.Error != nil {
		b, _ := json.Marshal(done)
		t.Errorf("task after the run: %s, want succeeded after 1 attempt with start and finish times and no error", b)
	}
	var result pricing.Result
	if err := json.Unmarshal(done.Result, &result); err != nil || result.Version < 1 || result.Products != 1 {
		t.Errorf("result = %s, want a version and 1 product (%v)", done.Result, err)
	}
}

// TestRecalculateNotEnqueued checks that a recalculation the broker does not take is a
// 503: here the broker is closed.
func TestRecalculateNotEnqueued(t *testing.T) {
	e := newPricingEnv(t)
	if err := e.broker.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/v1/recalculate", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	checkJSON(t, rec, http.StatusServiceUnavailable)
	if got := decodeError(t, rec); got.Error.Code != "unavailable" || !strings.Contains(got.Error.Message, "could not be enqueued") {
		t.Errorf("error = %+v, want unavailable: could not be enqueued", got.Error)
	}
	if rec.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	st, err := e.store.PricingState(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Requested != 1 {
		t.Errorf("Requested = %d, want the task recorded (1)", st.Requested)
	}
}

func TestTaskNotFound(t *testing.T) {
	e := newPricingEnv(t)
	for _, id := range []string{catalog.NewID("no", "such", "task").String(), strings.ToUpper(catalog.NewID("nor", "this", "one").String())} {
		rec := e.serve(http.MethodGet, "/api/v1/tasks/"+id, "", "", "")
		checkJSON(t, rec, http.StatusNotFound)
		if got := decodeError(t, rec); got.Error.Code != "not_found" || got.Error.Message != "task not found" {
			t.Errorf("GET /api/v1/tasks/%s: error = %+v, want not_found: task not found", id, got.Error)
		}
	}
}

func TestTaskIDMustBeAUUID(t *testing.T) {
	e := newPricingEnv(t)
	for _, id := range []string{"291", "%20", "not-a-uuid", strings.Repeat("a", 200)} {
		rec := e.serve(http.MethodGet, "/api/v1/tasks/"+id, "", "", "")
		checkJSON(t, rec, http.StatusBadRequest)
		if got := decodeError(t, rec); got.Error.Code != "bad_request" || !strings.Contains(got.Error.Message, "is not a UUID") {
			t.Errorf("GET /api/v1/tasks/%s: error = %+v, want bad_request: … is not a UUID", id, got.Error)
		}
	}
}

// subscribe collects the payloads published on e's bus from now on.
func (e *pricingEnv) subscribe(t *testing.T) <-chan []byte {
	t.Helper()
	payloads := make(chan []byte, 64)
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	wg.Go(func() {
		e.bus.Subscribe(ctx, func(p []byte) { payloads <- p })
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	// The subscription starts on its goroutine: probe until it receives.
	probe := []byte(`{"probe":true}`)
	testenv.Poll(t, "the bus subscription", func() bool {
		if err := e.bus.Publish(t.Context(), probe); err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case p := <-payloads:
				if string(p) == string(probe) {
					return true
				}
			default:
				return false
			}
		}
	})
	return payloads
}

// nextPayload returns the next payload that is not a probe, or fails t after a while.
func nextPayload(t *testing.T, payloads <-chan []byte) string {
	t.Helper()
	deadline := time.NewTimer(testenv.PollTimeout)
	defer deadline.Stop()
	for {
		select {
		case p := <-payloads:
			if !strings.Contains(string(p), "probe") {
				return string(p)
			}
		case <-deadline.C:
			t.Fatal("no payload on the bus")
			return ""
		}
	}
}

func TestPublishMarketEvent(t *testing.T) {
	e := newPricingEnv(t)
	payloads := e.subscribe(t)
	tests := []struct {
		name        string
		body        string
		wantBody    string
		wantPayload string
		wantEvents  int64 // PricingState().Events: the last recorded event's id
	}{
		{"market", `{"location":" Madrid","multiplier":1.25,"demand":-0.05}`,
			`{"event_id":1,"status":"published"}`,
			`{"event_id":1,"location":"madrid","multiplier":1.25,"demand":-0.05}`, 1},
		{"empty body", "",
			`{"event_id":2,"status":"published"}`,
			`{"event_id":2,"location":"*"}`, 2},
		{"global demand", `{"demand":0.3}`,
			`{"event_id":3,"status":"published"}`,
			`{"event_id":3,"location":"*","demand":0.3}`, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.serve(http.MethodPost, "/api/v1/publish-market-event", tt.body, "[::1]:40000", "")
			checkJSON(t, rec, http.StatusAccepted)
			if got := rec.Body.String(); got != tt.wantBody {
				t.Errorf("body = %s, want %s", got, tt.wantBody)
			}
			if got := nextPayload(t, payloads); got != tt.wantPayload {
				t.Errorf("payload = %s, want %s", got, tt.wantPayload)
			}
			st, err := e.store.PricingState(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if st.Events != tt.wantEvents {
				t.Errorf("PricingState().Events = %d, want %d", st.Events, tt.wantEvents)
			}
		})
	}
}

// TestPublishMarketEventIsApplied checks that a published event reaches prices: a
// recalculation folds it into the market the quotes read.
func TestPublishMarketEventIsApplied(t *testing.T) {
	e := newPricingEnv(t)
	e.work(t)
	plan := catalogtest.NewPlan("applied", "1")
	e.upsert(t, plan)
	rec := e.serve(http.MethodPost, "/api/v1/publish-market-event", `{"location":"bilbao","demand":0.5}`, "127.0.0.1:1", "")
	checkJSON(t, rec, http.StatusAccepted)
	var result pricing.Result
	if got := e.recalculate(t); json.Unmarshal(got.Result, &result) != nil || result.MarketEvents != 1 {
		t.Errorf("result = %s, want 1 market event folded", got.Result)
	}
	rec = e.price(priceBody(onlyProduct(t, plan), "bilbao", false))
	checkJSON(t, rec, http.StatusOK)
	if got, want := rec.Body.String(), quoteBody(onlyProduct(t, plan), "30.00", "20.00", "0", pricing.SourceDatabase); got != want {
		t.Errorf("price = %s, want %s", got, want)
	}
}

func TestPublishMarketEventBadBody(t *testing.T) {
	e := newPricingEnv(t)
	tests := []struct {
		name string
		body string
		want string
	}{
		{"event_id", `{"event_id":7}`, `unknown field "event_id"`},
		{"unknown field", `{"location":"madrid","price":3}`, `unknown field "price"`},
		{"multiplier a string", `{"multiplier":"1.25"}`, "multiplier"},
		{"multiplier out of range", `{"location":"madrid","multiplier":50}`, "multiplier"},
		{"demand with 5 decimals", `{"demand":0.00001}`, "more than 4 decimals"},
		{"bad location", `{"location":""}`, "user_location is empty"},
		{"trailing data", `{}{}`, "data after the JSON object"},
		{"array", `[]`, "market event"},
		{"oversize", `{"location":"madrid"` + strings.Repeat(" ", pricing.MaxEventBytes) + `}`, "larger than the 4096 bytes accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.serve(http.MethodPost, "/api/v1/publish-market-event", tt.body, "127.0.0.1:1", "")
			checkJSON(t, rec, http.StatusBadRequest)
			if got := decodeError(t, rec); got.Error.Code != "bad_request" || !strings.Contains(got.Error.Message, tt.want) {
				t.Errorf("POST %.80q: error = %+v, want bad_request with %q", tt.body, got.Error, tt.want)
			}
		})
	}
	st, err := e.store.PricingState(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 0 {
		t.Errorf("%d events recorded from bad bodies, want 0", st.Events)
	}
}

// TestPricingRoutes checks the routes' registration: absent without Pricing, and 405
// with Allow for another method.
func TestPricingRoutes(t *testing.T) {
	without := New(nil, slog.New(slog.DiscardHandler), Config{})
	rec := serve(without, http.MethodPost, "/api/v1/price")
	checkJSON(t, rec, http.StatusNotFound)

	e := newPricingEnv(t)
	for target, allow := range map[string]string{
		"/api/v1/price":                "POST",
		"/api/v1/recalculate":          "POST",
		"/api/v1/publish-market-event": "POST",
	} {
		rec := serve(e.h, http.MethodGet, target)
		checkJSON(t, rec, http.StatusMethodNotAllowed)
		if got := rec.Header().Get("Allow"); got != allow {
			t.Errorf("GET %s: Allow = %q, want %q", target, got, allow)
		}
	}
	rec = serve(e.h, http.MethodDelete, "/api/v1/tasks/x")
	checkJSON(t, rec, http.StatusMethodNotAllowed)
}

// TestAppendTask checks the encoding of a task's times, result and error.
func TestAppendTask(t *testing.T) {
	madrid := time.FixedZone("CEST", 2*3600)
	rec := task.Record{
		ID: "0b7c1e9e-3f0a-4c5e-9d2b-6a1f8e4d2c10", Kind: "recalculate", Trigger: "market-event", State: task.Failed,
		Attempts: 6, RequestedAt: time.Date(2021, 6, 30, 23, 0, 0, 0, madrid),
		StartedAt: time.Date(2021, 6, 30, 21, 0, 1, 123456000, time.UTC), FinishedAt: time.Date(2021, 6, 30, 21, 0, 2, 500000000, time.UTC),
		Result: json.RawMessage(" {\"version\": 3}\n"), ErrorCode: task.CodeRetriesExhausted,
		Error: "postgres primary db.internal:5432/boxoffice: dial tcp 10.0.0.7:5432: connection refused",
	}
	got, err := encodeTask(rec)
	if err != nil {
		t.Fatal(err)
	}
	_, msg := rec.PublicError()
	want := `{"task_id":"0b7c1e9e-3f0a-4c5e-9d2b-6a1f8e4d2c10","kind":"recalculate","state":"failed","trigger":"market-event",` +
		`"attempts":6,"requested_at":"2021-06-30T21:00:00Z","started_at":"2021-06-30T21:00:01.123456Z",` +
		`"finished_at":"2021-06-30T21:00:02.5Z","result":{"version": 3},"error":"` + msg + `","error_code":"retries_exhausted"}`
	if string(got) != want {
		t.Errorf("encodeTask:\n got %s\nwant %s", got, want)
	}
	for _, internal := range []string{"db.internal", "10.0.0.7", "connection refused"} {
		if strings.Contains(string(got), internal) {
			t.Errorf("encodeTask serves the internal error (%q): %s", internal, got)
		}
	}
	rec.ErrorCode, rec.Error = "", ""
	if got, _ := encodeTask(rec); !strings.HasSuffix(string(got), `"error":null,"error_code":null}`) {
		t.Errorf("encodeTask without a failure: %s, want null error and error_code", got)
	}
	rec.Error = "recorded before codes: " + rec.ID
	if got, _ := encodeTask(rec); !strings.HasSuffix(string(got), `"error_code":"error"}`) || strings.Contains(string(got), "recorded before") {
		t.Errorf("encodeTask of a failure without a code: %s, want error_code error and no internal text", got)
	}
	rec.Result = json.RawMessage(`{"version":`)
	if _, err := encodeTask(rec); err == nil {
		t.Error("encodeTask with a truncated result: no error")
	}
}

// FuzzPriceBody checks that any body gets a 400 when decodePriceRequest rejects it,
// never a 5xx, and that what it accepts is valid JSON with a normalized location.
func FuzzPriceBody(f *testing.F) {
	// More seeds are in testdata/fuzz/FuzzPriceBody.
	f.Add([]byte(validPrice))
	f.Add([]byte(`{"product_id":"6a5e7fc8-bd5e-51f7-a156-7b3e1c5d0f2a","user_location":" Madrid ","is_prime_member":true}`))
	f.Add([]byte(`{"product_id":"6a5e7fc8-bd5e-51f7-a156-7b3e1c5d0f2a","user_location":"*","extra":[1,{"a":null}]}`))
	f.Add([]byte(`{"product_id":"6A5E7FC8-BD5E-51F7-A156-7B3E1C5D0F2A","user_location":"m\u00e1laga","is_prime_member":false} `))
	e := newPricingEnv(f)
	plan := catalogtest.NewPlan("fuzz", "1")
	e.upsert(f, plan)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodePriceRequest(body)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Errorf("decodePriceRequest(%q) error %v is not ErrBadRequest", body, err)
			}
		} else {
			if !json.Valid(body) {
				t.Errorf("decodePriceRequest(%q) accepts invalid JSON", body)
			}
			if loc, err := pricing.NormalizeLocation(req.Location); err != nil || loc != req.Location {
				t.Errorf("decodePriceRequest(%q) location %q is not normalized", body, req.Location)
			}
			again, err := decodePriceRequest([]byte(priceBody(req.ProductID, req.Location, req.Prime)))
			if err != nil || again != req {
				t.Errorf("decodePriceRequest(%q) = %+v; encoded again it decodes to %+v, %v", body, req, again, err)
			}
		}
		rec := httptest.NewRecorder()
		post := httptest.NewRequest(http.MethodPost, "/api/v1/price", strings.NewReader(string(body)))
		post.Header.Set("Content-Type", "application/json")
		e.h.ServeHTTP(rec, post)
		switch {
		case rec.Code >= 500:
			t.Errorf("POST %q = %d %s", body, rec.Code, rec.Body)
		case err != nil && rec.Code != http.StatusBadRequest:
			t.Errorf("POST %q = %d, want 400 (%v)", body, rec.Code, err)
		case err == nil && len(body) <= maxBodyBytes && rec.Code != http.StatusOK && rec.Code != http.StatusNotFound:
			t.Errorf("POST %q = %d, want 200 or 404", body, rec.Code)
		}
	})
}
