package httpapi

import (
	"bytes"
	"encoding/base64"
	"math"
	"testing"

	"boxoffice/catalog"
)

var fuzzCursorKey = []byte("fuzz cursor key, 32 bytes long..")

func TestCursorRoundTrip(t *testing.T) {
	c := newCursorCodec(fuzzCursorKey)
	tests := []struct {
		name string
		give cursor
	}{
		{"open window", cursor{version: 7, from: math.MinInt64, to: math.MaxInt64, after: catalog.Position{Start: 1609459200, ID: catalog.NewID("p", "b", "1")}}},
		{"bounded window", cursor{version: 1 << 40, from: 1609459200, to: 1612137600, after: catalog.Position{Start: -62135596800}}},
		{"zero", cursor{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := c.appendCursor(nil, tt.give)
			if len(text) != cursorTextLen {
				t.Errorf("cursor text is %d bytes, want %d", len(text), cursorTextLen)
			}
			got, err := c.decode(string(text))
			if err != nil || got != tt.give {
				t.Errorf("decode(appendCursor(%+v)) = %+v, %v", tt.give, got, err)
			}
			if _, err := newCursorCodec([]byte("another key")).decode(string(text)); err == nil {
				t.Errorf("a codec with another key accepted the cursor")
			}
		})
	}
}

// FuzzCursor feeds any text to the cursor decoder: it never panics, accepts only what
// the codec made (re-encoding an accepted cursor gives the same text), and rejects
// every single-bit change of a cursor it made.
func FuzzCursor(f *testing.F) {
	c := newCursorCodec(fuzzCursorKey)
	valid := c.appendCursor(nil, cursor{version: 3, from: math.MinInt64, to: 1612137600,
		after: catalog.Position{Start: 1609459200, ID: catalog.NewID("p", "b", "1")}})
	f.Add(string(valid))
	f.Add("")
	f.Add(string(valid[:len(valid)-1]))
	f.Add(string(valid) + "=")
	f.Add(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, cursorLen)))
	f.Fuzz(func(t *testing.T, s string) {
		cur, err := c.decode(s)
		if err != nil {
			return
		}
		if again := c.appendCursor(nil, cur); string(again) != s {
			t.Errorf("decode(%q) accepted a text the codec writes as %q", s, again)
		}
		raw, _ := base64.RawURLEncoding.DecodeString(s)
		for i := range len(raw) * 8 {
			flipped := bytes.Clone(raw)
			flipped[i/8] ^= 1 << (i % 8)
			if _, err := c.decode(base64.RawURLEncoding.EncodeToString(flipped)); err == nil {
				t.Fatalf("decode accepted %q with bit %d flipped", s, i)
			}
		}
	})
}
