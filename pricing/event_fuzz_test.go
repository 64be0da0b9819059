package pricing

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
)

// FuzzMarketEvent checks that DecodeEvent never panics, and that an event it accepts
// is within the market limits, at a normalized location, carries an id and a trace
// context only from the channel, and comes back the same from its channel payload.
func FuzzMarketEvent(f *testing.F) {
	// More seeds are in testdata/fuzz/FuzzMarketEvent.
	f.Add([]byte(""), false)
	f.Add([]byte(`{"location":" Madrid ","multiplier":1.25,"demand":-0.05}`), false)
	f.Add([]byte(`{"event_id":7,"location":"*","demand":2}`), true)
	f.Add([]byte(`{"event_id":7}`), false)
	f.Add([]byte(`{"multiplier":10.0001}`), false)
	f.Add([]byte(`{"event_id":7,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"a=b"}`), true)
	f.Fuzz(func(t *testing.T, body []byte, withID bool) {
		ev, err := DecodeEvent(body, withID)
		blank := len(bytes.TrimSpace(body)) == 0
		if err != nil {
			if blank {
				t.Errorf("DecodeEvent(%q) rejects a blank body: %v", body, err)
			}
			return
		}
		if !blank && (!json.Valid(body) || len(body) > MaxEventBytes) {
			t.Errorf("DecodeEvent(%q) accepts invalid JSON or more than %d bytes", body, MaxEventBytes)
		}
		if !withID && (ev.ID != 0 || ev.Trace != nil) {
			t.Errorf("DecodeEvent(%q, false) = id %d, trace %v, want neither from a client", body, ev.ID, ev.Trace)
		}
		if ev.Location != GlobalLocation {
			if loc, err := NormalizeLocation(ev.Location); err != nil || loc != ev.Location {
				t.Errorf("DecodeEvent(%q) location %q is not normalized (%v)", body, ev.Location, err)
			}
		}
		m := Neutral(ev.Location)
		if ev.Multiplier != nil {
			m.Multiplier = *ev.Multiplier
		}
		if ev.Demand != nil {
			m.Demand = *ev.Demand
		}
		if err := m.Validate(); err != nil {
			t.Errorf("DecodeEvent(%q) = %+v, outside the limits: %v", body, ev, err)
		}
		payload := ev.AppendPayload(nil)
		again, err := DecodeEvent(payload, true)
		if err != nil {
			t.Fatalf("DecodeEvent(%q) = %+v, whose payload %s does not decode: %v", body, ev, payload, err)
		}
		if again.ID != ev.ID || again.Location != ev.Location || !equalRate(again.Multiplier, ev.Multiplier) ||
			!equalRate(again.Demand, ev.Demand) || !maps.Equal(again.Trace, ev.Trace) {
			t.Errorf("DecodeEvent(%q) = %+v; its payload %s decodes to %+v", body, ev, payload, again)
		}
	})
}

// equalRate reports whether two optional rates are both absent or equal.
func equalRate(a, b *BasisPoints) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
