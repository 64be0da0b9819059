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
