package catalog

import (
	"encoding/json"
	"testing"
)

func TestValidText(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "ascii", give: "Platea", want: "Platea"},
		{name: "valid multi-byte", give: "Ñandú 日本", want: "Ñandú 日本"},
		{name: "latin-1 byte", give: "Espa\xf1a", want: "Espa\uFFFDa"},
		{name: "each invalid byte", give: "\xff\xfe", want: "\uFFFD\uFFFD"},
		{name: "cut sequence", give: "a\xe2\x82", want: "a\uFFFD\uFFFD"},
		{name: "surrogate", give: "\xed\xa0\x80", want: "\uFFFD\uFFFD\uFFFD"},
		{name: "replacement kept", give: "\uFFFD", want: "\uFFFD"},
		{name: "empty", give: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validText(tt.give); got != tt.want {
				t.Errorf("validText(%q) = %q, want %q", tt.give, got, tt.want)
			}
			// The rule is encoding/json's, so stored text encodes as it did before.
			b, err := json.Marshal(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			var decoded string
			if err := json.Unmarshal(b, &decoded); err != nil || decoded != tt.want {
				t.Errorf("json round trip of %q = %q, %v; validText gives %q", tt.give, decoded, err, tt.want)
			}
		})
	}
}

// A Fingerprinter gives each plan the fingerprint Observe gives it, whatever plans it
// fingerprinted before, and tells apart plans whose stored values differ.
func TestFingerprinterMatchesObserve(t *testing.T) {
	base := plan("b", "1", "2026-01-02 20:00:00", "2026-01-02 22:00:00")
	base.Provider, base.Title, base.SellMode = "fever", "Concierto", Online
	base.Zones = []Zone{{ZoneID: "z1", Name: "Platea", Capacity: 10, Price: 2000}, {ZoneID: "z2", Name: "Palco", Price: 5050}}
	priced, latin1, revised := base, base, base
	priced.Zones = []Zone{{ZoneID: "z1", Name: "Platea", Capacity: 10, Price: 2001}, base.Zones[1]}
	latin1.Title, latin1.Zones = "Espa\xf1a", []Zone{{ZoneID: "z\xff", Name: "Platea"}}
	revised.Revision = 99 // not a stored value
	var f Fingerprinter
	seen := map[int64]string{}
	tests := []struct {
		name string
		give Plan
	}{{"base", base}, {"price changed", priced}, {"invalid UTF-8", latin1}}
	for _, tt := range tests {
		want := Observe([]Plan{tt.give})[0].Fingerprint
		if got := f.Fingerprint(tt.give); got != want {
			t.Errorf("Fingerprint(%s) = %d, want Observe's %d", tt.name, got, want)
		}
		if other, ok := seen[want]; ok {
			t.Errorf("plans %s and %s have the same fingerprint", other, tt.name)
		}
		seen[want] = tt.name
	}
	if got, want := f.Fingerprint(revised), f.Fingerprint(base); got != want {
		t.Errorf("Fingerprint(another revision) = %d, want %d: the revision is not a stored value", got, want)
	}
	if latin1.Title != "Espa\xf1a" || latin1.Zones[0].ZoneID != "z\xff" {
		t.Errorf("Fingerprint changed the caller's plan: %q, %q", latin1.Title, latin1.Zones[0].ZoneID)
	}
}
