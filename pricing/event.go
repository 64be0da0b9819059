package pricing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// MaxEventBytes bounds a market event's JSON body.
const MaxEventBytes = 4 << 10

// eventJSON is a market event on the wire: the body of POST
// /api/v1/publish-market-event, and, with event_id, the payload on the market_events
// channel. Rates are decimal numbers with at most four decimals ("multiplier": 1.25), never strings.
// On the channel, traceparent and tracestate carry the publisher's W3C trace context.
type eventJSON struct {
	EventID     *int64           `json:"event_id,omitempty"`
	Location    *string          `json:"location,omitempty"`
	Multiplier  *json.RawMessage `json:"multiplier,omitempty"` // a number; ParseRate rejects the rest
	Demand      *json.RawMessage `json:"demand,omitempty"`
	TraceParent *string          `json:"traceparent,omitempty"`
	TraceState  *string          `json:"tracestate,omitempty"`
}

// eventFields are the names eventJSON accepts, exactly; channelFields are those of them
// that only a channel payload has.
var (
	eventFields   = []string{"event_id", "location", "multiplier", "demand", traceParent, traceState}
	channelFields = []string{"event_id", traceParent, traceState}
)

// The W3C trace context's names, as fields of a channel payload.
const (
	traceParent = "traceparent"
	traceState  = "tracestate"
)

// DecodeEvent parses a market event. An empty body is an event that changes nothing
// and asks for a recalculation (the seed's bare POST). A missing location is
// GlobalLocation. The body must be one JSON object with no unknown fields; event_id,
// traceparent and tracestate are accepted only when withID (payloads on the channel,
// where event_id names the event the API recorded and the others, strings, the trace
// of the request that published it; they end in ev.Trace unchecked: a malformed trace
// context is ignored when the listener reads it, never a reason to lose an event).
// Values are checked against the market limits.
func DecodeEvent(body []byte, withID bool) (ev MarketEvent, err error) {
	ev.Location = GlobalLocation
	if len(bytes.TrimSpace(body)) == 0 {
		return ev, nil
	}
	if len(body) > MaxEventBytes {
		return ev, fmt.Errorf("market event is larger than %d bytes", MaxEventBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil {
		return ev, fmt.Errorf("market event: %w", jsonError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return ev, errors.New("market event: data after the JSON object")
	}
	if fields == nil {
		return ev, errors.New("market event: not a JSON object")
	}
	for k := range fields { // encoding/json matches names in any case; the API does not
		if !slices.Contains(eventFields, k) || (!withID && slices.Contains(channelFields, k)) {
			return ev, fmt.Errorf("market event: unknown field %q", k)
		}
	}
	var in eventJSON
	if err := json.Unmarshal(body, &in); err != nil {
		return ev, fmt.Errorf("market event: %w", jsonError(err))
	}
	if in.EventID != nil {
		ev.ID = *in.EventID
	}
	if in.TraceParent != nil && *in.TraceParent != "" {
		ev.Trace = map[string]string{traceParent: *in.TraceParent}
		if in.TraceState != nil && *in.TraceState != "" { // meaningless without a parent
			ev.Trace[traceState] = *in.TraceState
		}
	}
	if in.Location != nil {
		if *in.Location == GlobalLocation {
			ev.Location = GlobalLocation
		} else if ev.Location, err = NormalizeLocation(*in.Location); err != nil {
			return ev, fmt.Errorf("market event: %w", err)
		}
	}
	m := Neutral(ev.Location)
	if in.Multiplier != nil {
		v, err := ParseRate(string(*in.Multiplier))
		if err != nil {
			return ev, fmt.Errorf("market event: multiplier: %w", err)
		}
		ev.Multiplier, m.Multiplier = &v, v
	}
	if in.Demand != nil {
		v, err := ParseRate(string(*in.Demand))
		if err != nil {
			return ev, fmt.Errorf("market event: demand: %w", err)
		}
		ev.Demand, m.Demand = &v, v
	}
	if err := m.Validate(); err != nil {
		return ev, err
	}
	return ev, nil
}

// jsonError words encoding/json's errors for clients.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q must be a %s", te.Field, jsonKind(te.Type.Kind().String()))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("truncated JSON")
	}
	return err
}

func jsonKind(kind string) string {
	switch kind {
	case "ptr", "string":
		return "string"
	case "int64":
		return "integer"
	}
	return kind
}

// AppendPayload appends ev as the market_events channel's payload, with the trace
// context in ev.Trace (traceparent and tracestate, when set).
func (ev MarketEvent) AppendPayload(b []byte) []byte {
	b = append(b, `{"event_id":`...)
	b = strconv.AppendInt(b, ev.ID, 10)
	b = append(b, `,"location":`...)
	loc, _ := json.Marshal(ev.Location)
	b = append(b, loc...)
	if ev.Multiplier != nil {
		b = append(append(b, `,"multiplier":`...), ev.Multiplier.String()...)
	}
	if ev.Demand != nil {
		b = append(append(b, `,"demand":`...), ev.Demand.String()...)
	}
	for _, name := range []string{traceParent, traceState} {
		if v := ev.Trace[name]; v != "" {
			b = append(append(append(b, `,"`...), name...), `":`...)
			s, _ := json.Marshal(v)
			b = append(b, s...)
		}
	}
	return append(b, '}')
}

// ParseRate parses a decimal rate with at most four decimals ("1.25", "-0.05", "2")
// into basis points, exactly.
func ParseRate(s string) (BasisPoints, error) {
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	whole, frac, dot := strings.Cut(digits, ".")
	if whole == "" || (dot && frac == "") || !allDigits(whole) || !allDigits(frac) || strings.ContainsAny(digits, "eE+") {
		return 0, fmt.Errorf("%q is not a decimal number like 1.25", s)
	}
	if len(frac) > 4 {
		return 0, fmt.Errorf("%q has more than 4 decimals", s)
	}
	if len(whole) > 9 {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt((frac + "0000")[:4], 10, 64)
	v := BasisPoints(w)*One + BasisPoints(f)
	if neg {
		v = -v
	}
	return v, nil
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
