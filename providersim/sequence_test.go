package providersim

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSequence(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []Step
	}{
		{name: "one sample", give: "2", want: []Step{{Kind: StepServe, Content: Sample2}}},
		{
			name: "the brief's example",
			give: "1,2,malformed,500,slow,3",
			want: []Step{
				{Kind: StepServe, Content: Sample1},
				{Kind: StepServe, Content: Sample2},
				{Kind: StepMalformed, Content: Sample2},
				{Kind: StepStatus, Status: 500, Content: Sample2},
				{Kind: StepSlow, Content: Sample2},
				{Kind: StepServe, Content: Sample3},
			},
		},
		{
			name: "spoilers first default to sample 1",
			give: "truncated,hang,abort",
			want: []Step{
				{Kind: StepTruncated, Content: Sample1},
				{Kind: StepHang, Content: Sample1},
				{Kind: StepAbort, Content: Sample1},
			},
		},
		{
			name: "explicit content is inherited",
			give: "slow:synthetic, hang ,3,truncated:2,503",
			want: []Step{
				{Kind: StepSlow, Content: Generated},
				{Kind: StepHang, Content: Generated},
				{Kind: StepServe, Content: Sample3},
				{Kind: StepTruncated, Content: Sample2},
				{Kind: StepStatus, Status: 503, Content: Sample2},
			},
		},
		{name: "case-insensitive", give: "SYNTHETIC,Malformed", want: []Step{{Kind: StepServe, Content: Generated}, {Kind: StepMalformed, Content: Generated}}},
		{name: "status codes", give: "304,429,599", want: []Step{{Kind: StepStatus, Status: 304, Content: Sample1}, {Kind: StepStatus, Status: 429, Content: Sample1}, {Kind: StepStatus, Status: 599, Content: Sample1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSequence(tt.give)
			if err != nil {
				t.Fatalf("ParseSequence(%q) = %v", tt.give, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseSequence(%q) (-want +got):\n%s", tt.give, diff)
			}
		})
	}
}

func TestParseSequenceErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "empty", give: "", want: "step 1: empty step"},
		{name: "empty step", give: "1,,2", want: "step 2: empty step"},
		{name: "trailing comma", give: "1,", want: "step 2: empty step"},
		{name: "unknown step", give: "1,2,boom", want: `step 3: unknown step "boom" (want 1, 2, 3, synthetic, malformed, truncated, slow, hang, abort or a status code)`},
		{name: "sample 4", give: "4", want: "step 1: status must be between 300 and 599: 4"},
		{name: "status 200", give: "200", want: "step 1: status must be between 300 and 599: 200"},
		{name: "status 600", give: "600", want: "step 1: status must be between 300 and 599: 600"},
		{name: "unknown content", give: "slow:4", want: `step 1: "slow:4": unknown content "4" (want 1, 2, 3 or synthetic)`},
		{name: "content with argument", give: "2:3", want: `step 1: "2:3": content 2 takes no argument`},
		{name: "status with argument", give: "500:1", want: `step 1: "500:1": a status takes no argument`},
		{name: "serve is not a step", give: "serve", want: `step 1: unknown step "serve" (want 1, 2, 3, synthetic, malformed, truncated, slow, hang, abort or a status code)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSequence(tt.give)
			if err == nil {
				t.Fatalf("ParseSequence(%q) = nil error, want %q", tt.give, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("ParseSequence(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

func TestStepStringRoundTrip(t *testing.T) {
	tests := []struct {
		give Step
		want string
	}{
		{give: Step{Kind: StepServe, Content: Sample1}, want: "1"},
		{give: Step{Kind: StepServe, Content: Generated}, want: "synthetic"},
		{give: Step{Kind: StepMalformed, Content: Sample3}, want: "malformed:3"},
		{give: Step{Kind: StepTruncated, Content: Generated}, want: "truncated:synthetic"},
		{give: Step{Kind: StepSlow, Content: Sample2}, want: "slow:2"},
		{give: Step{Kind: StepHang, Content: Sample1}, want: "hang:1"},
		{give: Step{Kind: StepAbort, Content: Sample1}, want: "abort:1"},
		{give: Step{Kind: StepStatus, Status: 503, Content: Sample1}, want: "503"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.give.String(); got != tt.want {
				t.Errorf("%+v.String() = %q, want %q", tt.give, got, tt.want)
			}
			steps, err := ParseSequence(tt.want)
			if err != nil {
				t.Fatalf("ParseSequence(%q) = %v", tt.want, err)
			}
			if diff := cmp.Diff([]Step{tt.give}, steps); diff != "" {
				t.Errorf("ParseSequence(%q) (-want +got):\n%s", tt.want, diff)
			}
		})
	}
}
