package providersim

import (
	"bufio"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"boxoffice/catalog"
	"boxoffice/ingest"
	"boxoffice/provider"
)

// parseServed detects and parses a document the simulator served, as a Client does.
func parseServed(contentType string, body []byte) ([]catalog.Plan, provider.Stats, error) {
	br := bufio.NewReader(strings.NewReader(string(body)))
	p, err := provider.Detect(contentType, br)
	if err != nil {
		return nil, provider.Stats{}, err
	}
	var plans []catalog.Plan
	stats, err := p.Parse(br, "sim", func(pl catalog.Plan) error {
		plans = append(plans, pl)
		return nil
	})
	return plans, stats, err
}

// TestFormats serves the samples, their spoilt forms and a synthetic catalog in each
// format: each is detected as its format, the spoilt ones are malformed, and every
// format gives the same plans (but for eventList's first sample, which lacks 322/1643).
func TestFormats(t *testing.T) {
	wantPlans := map[Content][]catalog.Plan{}
	for _, format := range []string{provider.FormatPlanList, provider.FormatEventList, provider.FormatJSON} {
		t.Run(format, func(t *testing.T) {
			steps := "1,2,3,malformed,truncated,synthetic"
			sim := New(Config{Mode: Sequence, Sequence: steps, Format: format, Seed: 3, BasePlans: 20, Plans: 3, Zones: 2})
			for i, step := range strings.Split(steps, ",") {
				w := get(t, sim)
				ct := w.Header().Get("Content-Type")
				plans, stats, err := parseServed(ct, w.Body.Bytes())
				switch step {
				case "malformed", "truncated":
					if !errors.Is(err, ingest.ErrMalformed) {
						t.Errorf("call %d (%s): %v, want a malformed document", i+1, step, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("call %d (%s): %v", i+1, step, err)
				}
				if stats.Format != format {
					t.Errorf("call %d (%s): detected %s (Content-Type %s), want %s", i+1, step, stats.Format, ct, format)
				}
				content := sim.Step(i + 1).Content
				if format == provider.FormatEventList && content == Sample1 {
					continue
				}
				if want, ok := wantPlans[content]; ok {
					if diff := cmp.Diff(want, plans); diff != "" {
						t.Errorf("call %d (%s): plans differ from planList's (-want +got):\n%s", i+1, step, diff)
					}
				} else {
					wantPlans[content] = plans
				}
			}
		})
	}
	if err := (Config{Format: "yaml"}).Validate(); err == nil || !strings.Contains(err.Error(), `format: unknown value "yaml"`) {
		t.Errorf("Validate(format yaml) = %v", err)
	}
}
