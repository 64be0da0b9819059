package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"boxoffice/catalog"
	"boxoffice/pricing"
	"boxoffice/task"
)

// Pricing is what the pricing routes call. *pricing.Service implements it.
type Pricing interface {
	// Quote returns the response body of a priced request, or pricing.ErrNotFound.
	Quote(ctx context.Context, r pricing.Request) ([]byte, error)
	// EventProducts lists an event's products, or returns pricing.ErrNotFound.
	EventProducts(ctx context.Context, event catalog.ID) ([]pricing.Priced, error)
	// Recalculate records and enqueues a recalculation task; an error means it is not
	// enqueued.
	Recalculate(ctx context.Context) (task.Record, error)
	// Task returns a task's record, or task.ErrNotFound.
	Task(ctx context.Context, id string) (task.Record, error)
	// PublishEvent records a market event and announces it; notified is false when
	// only the recording succeeded.
	PublishEvent(ctx context.Context, ev pricing.MarketEvent) (recorded pricing.MarketEvent, notified bool, err error)
}

var _ Pricing = (*pricing.Service)(nil)

// maxBodyBytes bounds a request body: the API's bodies fit in a few hundred bytes.
const maxBodyBytes = 4 << 10

// Fields of the body of POST /api/v1/price.
const (
	fieldProductID     = "product_id"
	fieldUserLocation  = "user_location"
	fieldIsPrimeMember = "is_prime_member"
)

// price answers POST /api/v1/price with the quote of the body's request, from the
// price cache or the store (see pricing.Quoter).
func (h *Handler) price(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, maxBodyBytes)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	req, err := decodePriceRequest(body)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	quote, err := h.pricing.Quote(r.Context(), req)
	switch {
	case errors.Is(err, pricing.ErrNotFound):
		h.writeError(w, r, fmt.Errorf("product %w", errNotFound))
	case err != nil:
		h.writeError(w, r, fmt.Errorf("quote product %s: %w", req.ProductID, err))
	default:
		writeJSON(w, http.StatusOK, quote)
	}
}

// decodePriceRequest parses the body of POST /api/v1/price: exactly one JSON object
// with a UUID product_id, a user_location (normalized by pricing.NormalizeLocation)
// and an optional boolean is_prime_member (false when absent). Field names match
// exactly; an unknown or repeated one, a null, a wrong type or data after the object
// is an ErrBadRequest naming the problem.
func decodePriceRequest(body []byte) (pricing.Request, error) {
	var req pricing.Request
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return req, badRequest(errors.New("request body is empty; want a JSON object"))
	case trimmed[0] != '{':
		return req, badRequest(errors.New("request body must be a JSON object"))
	}
	// Token by token, not into a struct: encoding/json matches struct fields
	// case-insensitively and lets a repeated field win silently.
	fields := make(map[string]json.RawMessage, 3)
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // the '{'
		return req, badRequest(fmt.Errorf("request body: %w", describeJSONError(err)))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, badRequest(fmt.Errorf("request body: %w", describeJSONError(err)))
		}
		key, _ := tok.(string) // inside an object, More and Token give keys
		switch _, seen := fields[key]; {
		case key != fieldProductID && key != fieldUserLocation && key != fieldIsPrimeMember:
			return req, badRequest(fmt.Errorf("request body: unknown field %q; want %s, %s and %s",
				truncate(key, 64), fieldProductID, fieldUserLocation, fieldIsPrimeMember))
		case seen:
			return req, badRequest(fmt.Errorf("request body: field %q repeated", key))
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return req, badRequest(fmt.Errorf("request body: %w", describeJSONError(err)))
		}
		fields[key] = value
	}
	if _, err := dec.Token(); err != nil { // the '}'
		return req, badRequest(fmt.Errorf("request body: %w", describeJSONError(err)))
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, badRequest(errors.New("request body: data after the JSON object"))
	}

	id, err := stringField(fields, fieldProductID)
	if err != nil {
		return req, err
	}
	if req.ProductID, err = catalog.ParseID(id); err != nil {
		return req, badRequest(fmt.Errorf("%s %q is not a UUID", fieldProductID, truncate(id, 64)))
	}
	loc, err := stringField(fields, fieldUserLocation)
	if err != nil {
		return req, err
	}
	if req.Location, err = pricing.NormalizeLocation(loc); err != nil {
		return req, badRequest(err)
	}
	if raw, ok := fields[fieldIsPrimeMember]; ok {
		switch string(raw) {
		case "true":
			req.Prime = true
		case "false":
		default:
			return req, badRequest(fmt.Errorf("field %q must be a boolean", fieldIsPrimeMember))
		}
	}
	return req, nil
}

// stringField returns the required string field name of fields.
func stringField(fields map[string]json.RawMessage, name string) (string, error) {
	raw, ok := fields[name]
	if !ok {
		return "", badRequest(fmt.Errorf("%s is required", name))
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", badRequest(fmt.Errorf("field %q must be a string", name))
	}
	return s, nil
}

// describeJSONError words encoding/json's syntax errors for clients.
func describeJSONError(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("invalid JSON at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("truncated JSON")
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

// readBody reads a request body of at most limit bytes; a larger one is an
// ErrBadRequest naming the limit.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, badRequest(fmt.Errorf("request body is larger than the %d bytes accepted", limit))
	case err != nil:
		return nil, badRequest(fmt.Errorf("read request body: %w", err))
	}
	return body, nil
}

// eventProducts answers GET /api/v1/events/{id}/products: the products of an
// ever-online plan (an event, by the id /search gives it) in its zones' order, with
// their list prices.
func (h *Handler) eventProducts(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("id")
	id, err := catalog.ParseID(raw)
	if err != nil {
		h.writeError(w, r, badRequest(fmt.Errorf("event id %q is not a UUID", truncate(raw, 64))))
		return
	}
	products, err := h.pricing.EventProducts(r.Context(), id)
	switch {
	case errors.Is(err, pricing.ErrNotFound):
		h.writeError(w, r, fmt.Errorf("event %w", errNotFound))
	case err != nil:
		h.writeError(w, r, fmt.Errorf("products of event %s: %w", id, err))
	default:
		writeJSON(w, http.StatusOK, appendProducts(nil, id, products))
	}
}

// appendProducts appends the response of GET /api/v1/events/{id}/products:
//
//	{"event_id":"…","products":[{"product_id":"…","zone_id":"186","name":"Platea",
//	"numbered":true,"base_price":20.00,"capacity":100,"price":21.00,"priced_version":3}]}
//
// price is the list price of the last recalculation (the global market, no
// discount), null when none has priced the product yet (priced_version 0).
func appendProducts(b []byte, event catalog.ID, products []pricing.Priced) []byte {
	b = append(b, `{"event_id":"`...)
	b = event.AppendText(b)
	b = append(b, `","products":[`...)
	for i, p := range products {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"product_id":"`...)
		b = p.ID.AppendText(b)
		b = append(b, `","zone_id":`...)
		b = appendString(b, p.ZoneID)
		b = append(b, `,"name":`...)
		b = appendString(b, p.Name)
		b = append(b, `,"numbered":`...)
		b = strconv.AppendBool(b, p.Numbered)
		b = append(b, `,"base_price":`...)
		b = p.BasePrice.AppendText(b)
		b = append(b, `,"capacity":`...)
		b = strconv.AppendInt(b, p.Capacity, 10)
		b = append(b, `,"price":`...)
		if p.Version == 0 {
			b = append(b, "null"...)
		} else {
			b = p.Price.AppendText(b)
		}
		b = append(b, `,"priced_version":`...)
		b = strconv.AppendInt(b, p.Version, 10)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// recalculate answers POST /api/v1/recalculate: 202 with the pending task, to follow
// at its Location, once it is recorded and enqueued; 503 when it could not be.
func (h *Handler) recalculate(w http.ResponseWriter, r *http.Request) {
	rec, err := h.pricing.Recalculate(r.Context())
	if err != nil {
		h.writeError(w, r, fmt.Errorf("%w: recalculate: %w", errNotEnqueued, err))
		return
	}
	b := append([]byte(`{"task_id":`), appendString(nil, rec.ID)...)
	b = append(b, `,"state":`...)
	b = appendString(b, string(rec.State))
	b = append(b, '}')
	w.Header().Set("Location", "/api/v1/tasks/"+url.PathEscape(rec.ID))
	writeJSON(w, http.StatusAccepted, b)
}

// task answers GET /api/v1/tasks/{task_id} with the task's record.
func (h *Handler) task(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("task_id")
	id, err := catalog.ParseID(raw) // task ids are UUIDs, as event ids are
	if err != nil {
		h.writeError(w, r, badRequest(fmt.Errorf("task id %q is not a UUID", truncate(raw, 64))))
		return
	}
	rec, err := h.pricing.Task(r.Context(), id.String())
	switch {
	case errors.Is(err, task.ErrNotFound):
		h.writeError(w, r, fmt.Errorf("task %w", errNotFound))
		return
	case err != nil:
		h.writeError(w, r, fmt.Errorf("task %s: %w", id, err))
		return
	}
	b, err := encodeTask(rec)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// encodeTask encodes the response of GET /api/v1/tasks/{task_id}:
//
//	{"task_id":"…","kind":"recalculate","state":"succeeded","trigger":"api","attempts":1,
//	"requested_at":"2021-06-30T21:00:00.123456Z","started_at":…,"finished_at":…,
//	"result":{"version":3,…},"error":null,"error_code":null}
//
// Times are RFC 3339 in UTC, with the fractional seconds the store kept, and null
// when zero (not started, not finished); result is the run's JSON object, null until
// the task ends; error and error_code are null unless an attempt failed, and then the
// failure's public message and stable code (task.Record.PublicError): the internal
// error stays in the logs and the store. It fails on a result that is not JSON.
func encodeTask(rec task.Record) ([]byte, error) {
	if len(rec.Result) > 0 && !json.Valid(rec.Result) {
		return nil, fmt.Errorf("task %s: result is not JSON: %.64q", rec.ID, rec.Result)
	}
	b := append(make([]byte, 0, 256), `{"task_id":`...)
	b = appendString(b, rec.ID)
	b = append(b, `,"kind":`...)
	b = appendString(b, rec.Kind)
	b = append(b, `,"state":`...)
	b = appendString(b, string(rec.State))
	b = append(b, `,"trigger":`...)
	b = appendString(b, rec.Trigger)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(rec.Attempts), 10)
	b = append(b, `,"requested_at":`...)
	b = appendTime(b, rec.RequestedAt)
	b = append(b, `,"started_at":`...)
	b = appendTime(b, rec.StartedAt)
	b = append(b, `,"finished_at":`...)
	b = appendTime(b, rec.FinishedAt)
	b = append(b, `,"result":`...)
	if len(rec.Result) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, bytes.TrimSpace(rec.Result)...)
	}
	code, msg := rec.PublicError() // never rec.Error: it may name hosts, queries or files
	if code == "" {
		return append(b, `,"error":null,"error_code":null}`...), nil
	}
	b = append(b, `,"error":`...)
	b = appendString(b, msg)
	b = append(b, `,"error_code":`...)
	b = appendString(b, code)
	return append(b, '}'), nil
}

// appendTime appends t as a JSON string in RFC 3339 with fractional seconds, in UTC,
// or null when t is zero.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// publishMarketEvent answers POST /api/v1/publish-market-event: the body, optional,
// is a market event (see pricing.DecodeEvent; an empty one changes nothing and asks
// for a recalculation). 202 once the event is recorded: "published" when it was also
// announced to the listeners, "recorded" when they will find it at their next poll.
func (h *Handler) publishMarketEvent(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, pricing.MaxEventBytes)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	ev, err := pricing.DecodeEvent(body, false)
	if err != nil {
		h.writeError(w, r, badRequest(err))
		return
	}
	recorded, notified, err := h.pricing.PublishEvent(r.Context(), ev)
	if err != nil {
		h.writeError(w, r, fmt.Errorf("publish market event: %w", err))
		return
	}
	status := "published"
	if !notified {
		status = "recorded"
	}
	b := append([]byte(`{"event_id":`), strconv.AppendInt(nil, recorded.ID, 10)...)
	b = append(b, `,"status":"`...)
	b = append(b, status...)
	writeJSON(w, http.StatusAccepted, append(b, `"}`...))
}

// truncate returns s cut to at most n bytes, for error messages that quote input.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
