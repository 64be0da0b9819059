package pricing

import (
	"maps"
	"strings"
	"testing"

	"boxoffice/catalog"
)

func TestParseRate(t *testing.T) {
	good := map[string]BasisPoints{"1": One, "1.25": 12500, "0.0001": 1, "-0.05": -500, "2.5000": 25000, "0": 0}
	for in, want := range good {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-", ".5", "1.", "1.00001", "1e2", "+1", "0x10", "1,5", "9999999999", "1.2.3"} {
		if got, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) = %d, want an error", bad, got)
		}
	}
}

func TestBasisPointsText(t *testing.T) {
	for bp, want := range map[BasisPoints]string{0: "0", One: "1", 1000: "0.1", 12500: "1.25", 1: "0.0001", -500: "-0.05", 30000: "3"} {
		if got := bp.String(); got != want {
			t.Errorf("BasisPoints(%d).String() = %q, want %q", bp, got, want)
		}
		if back, err := ParseRate(want); err != nil || back != bp {
			t.Errorf("ParseRate(%q) = %d, %v; want %d back", want, back, err, bp)
		}
	}
}

func TestDecodeEvent(t *testing.T) {
	bp := func(v BasisPoints) *BasisPoints { return &v }
	tests := []struct {
		name, body string
		withID     bool
		want       MarketEvent
		err        string
	}{
		{"empty body: a bare trigger", "", false, MarketEvent{Location: GlobalLocation}, ""},
		{"empty object", "{}", false, MarketEvent{Location: GlobalLocation}, ""},
		{"location normalized", `{"location":" Madrid ","multiplier":1.25}`, false, MarketEvent{Location: "madrid", Multiplier: bp(12500)}, ""},
		{"global by name", `{"location":"*","demand":-0.1}`, false, MarketEvent{Location: GlobalLocation, Demand: bp(-1000)}, ""},
		{"id from the channel", `{"event_id":7,"location":"bcn"}`, true, MarketEvent{ID: 7, Location: "bcn"}, ""},
		{"id from a client", `{"event_id":7}`, false, MarketEvent{}, `unknown field "event_id"`},
		{"trace from a client", `{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`, false, MarketEvent{}, `unknown field "traceparent"`},
		{"trace state from a client", `{"tracestate":"a=b"}`, false, MarketEvent{}, `unknown field "tracestate"`},
		{"trace from the channel", `{"event_id":7,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`, true, MarketEvent{ID: 7, Location: GlobalLocation}, ""},
		{"trace not a string", `{"event_id":7,"traceparent":5}`, true, MarketEvent{}, `"traceparent" must be a string`},
		{"unknown field", `{"city":"x"}`, false, MarketEvent{}, `unknown field "city"`},
		{"names are exact", `{"Location":"x"}`, false, MarketEvent{}, `unknown field "Location"`},
		{"null body", `null`, false, MarketEvent{}, "not a JSON object"},
		{"wrong type", `{"location":5}`, false, MarketEvent{}, `"location" must be a string`},
		{"multiplier as string", `{"multiplier":"1.2"}`, false, MarketEvent{}, "multiplier"},
		{"too precise", `{"multiplier":1.23456}`, false, MarketEvent{}, "more than 4 decimals"},
		{"out of range", `{"multiplier":11}`, false, MarketEvent{}, "outside"},
		{"demand out of range", `{"demand":-0.6}`, false, MarketEvent{}, "outside"},
		{"zero multiplier", `{"multiplier":0}`, false, MarketEvent{}, "outside"},
		{"trailing data", `{} {}`, false, MarketEvent{}, "data after"},
		{"truncated", `{"location":`, false, MarketEvent{}, "truncated"},
		{"not an object", `[1]`, false, MarketEvent{}, "market event"},
		{"oversize", `{"location":"` + strings.Repeat("a", MaxEventBytes) + `"}`, false, MarketEvent{}, "larger than"},
		{"control characters", `{"location":"a\u0000b"}`, false, MarketEvent{}, "control"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvent([]byte(tt.body), tt.withID)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("DecodeEvent(%q) error = %v, want one containing %q", tt.body, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeEvent(%q) = %v", tt.body, err)
			}
			if got.ID != tt.want.ID || got.Location != tt.want.Location || !sameRate(got.Multiplier, tt.want.Multiplier) || !sameRate(got.Demand, tt.want.Demand) {
				t.Errorf("DecodeEvent(%q) = %+v, want %+v", tt.body, got, tt.want)
			}
			// The channel's payload carries the event back unchanged.
			again, err := DecodeEvent(got.AppendPayload(nil), true)
			if err != nil || again.Location != got.Location || !sameRate(again.Multiplier, got.Multiplier) || !sameRate(again.Demand, got.Demand) {
				t.Errorf("payload %s decodes to %+v, %v", got.AppendPayload(nil), again, err)
			}
		})
	}
}

// TestEventPayloadCarriesTrace checks that the channel's payload carries the trace
// context back unchanged, and nothing when there is none.
func TestEventPayloadCarriesTrace(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name  string
		trace map[string]string
		want  map[string]string
	}{
		{"none", nil, nil},
		{"parent", map[string]string{"traceparent": parent}, map[string]string{"traceparent": parent}},
		{"parent and state", map[string]string{"traceparent": parent, "tracestate": "vendor=a\"b"},
			map[string]string{"traceparent": parent, "tracestate": "vendor=a\"b"}},
		{"state alone", map[string]string{"tracestate": "vendor=x"}, nil},
		{"other keys", map[string]string{"traceparent": parent, "baggage": "k=v"}, map[string]string{"traceparent": parent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := BasisPoints(12500)
			ev := MarketEvent{ID: 3, Location: "madrid", Multiplier: &m, Trace: tt.trace}
			payload := ev.AppendPayload(nil)
			got, err := DecodeEvent(payload, true)
			if err != nil {
				t.Fatalf("DecodeEvent(%s) = %v", payload, err)
			}
			if !maps.Equal(got.Trace, tt.want) || got.ID != 3 || got.Location != "madrid" || !sameRate(got.Multiplier, &m) {
				t.Errorf("payload %s decodes to %+v, want trace %v", payload, got, tt.want)
			}
		})
	}
}

func sameRate(a, b *BasisPoints) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func TestNormalizeLocation(t *testing.T) {
	if got, err := NormalizeLocation("  MADRID\t"); err != nil || got != "madrid" {
		t.Errorf("NormalizeLocation = %q, %v", got, err)
	}
	for _, bad := range []string{"", "   ", "*", strings.Repeat("x", MaxLocation+1), "a\nb", "\xff"} {
		if got, err := NormalizeLocation(bad); err == nil {
			t.Errorf("NormalizeLocation(%q) = %q, want an error", bad, got)
		}
	}
}

func TestQuoteJSON(t *testing.T) {
	id := catalog.NewID("p", "1", "2")
	q := Quote{ProductID: id, Final: 1800, Base: 2000, Discount: 1000}
	want := `{"product_id":"` + id.String() + `","final_price":18.00,"base_price":20.00,"discount_rate":0.1,"source":"cache"}`
	if got := string(q.AppendJSON(nil, SourceCache)); got != want {
		t.Errorf("AppendJSON = %s\nwant        %s", got, want)
	}
}
