package providersim

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"boxoffice/provider"
)

func TestParseFeeds(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    []Feed
		wantErr string
	}{
		{name: "empty", give: ""},
		{name: "spaces", give: " acme=json  legacy=eventList ", want: []Feed{{"acme", "json"}, {"legacy", "eventList"}}},
		{name: "commas", give: "acme=json,legacy=eventList,\nx.y_z-1=planList", want: []Feed{{"acme", "json"}, {"legacy", "eventList"}, {"x.y_z-1", "planList"}}},
		{name: "no format", give: "acme", wantErr: `entry 1 "acme": want name=format`},
		{name: "empty format", give: "acme=", wantErr: `entry 1 "acme=": format: unknown value "" (want planList, eventList or json)`},
		{name: "unknown format", give: "a=json b=yaml", wantErr: `entry 2 "b=yaml": format: unknown value "yaml" (want planList, eventList or json)`},
		{name: "bad name", give: "a/b=json", wantErr: `entry 1 "a/b=json": name: want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{name: "dot name", give: "..=json", wantErr: `entry 1 "..=json": name: want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{name: "repeated", give: "a=json a=planList", wantErr: `entry 2 "a=planList": name "a" repeats`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFeeds(tt.give)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Fatalf("ParseFeeds(%q) error = %q, want %q", tt.give, gotErr, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseFeeds(%q) (-want +got):\n%s", tt.give, diff)
			}
		})
	}
	if err := (Config{Feeds: "a=yaml"}).Validate(); err == nil || err.Error() != `feeds: entry 1 "a=yaml": format: unknown value "yaml" (want planList, eventList or json)` {
		t.Errorf("Validate(feeds a=yaml) = %v", err)
	}
}

// TestFeeds serves three providers from one simulator: the default one at Path in
// planList, and feeds in JSON and eventList at their own paths. Each answers its own
// format with the same samples in turn and counts its own calls; other paths get 404.
func TestFeeds(t *testing.T) {
	sim := New(Config{Feeds: "acme=json legacy=eventList"})
	t.Cleanup(func() { sim.Close() })
	do := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		sim.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w
	}
	for _, tt := range []struct {
		path, format, call string
		sample             int
	}{
		{Path, provider.FormatPlanList, "1", 1},
		{"/acme/api/events", provider.FormatJSON, "1", 1},
		{"/acme/api/events", provider.FormatJSON, "2", 2},
		{"/legacy/api/events", provider.FormatEventList, "1", 1},
		{Path, provider.FormatPlanList, "2", 2},
		{"/acme/api/events", provider.FormatJSON, "3", 3},
	} {
		w := do(http.MethodGet, tt.path)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s = %d, want 200", tt.path, w.Code)
		}
		if got := w.Header().Get(CallHeader); got != tt.call {
			t.Errorf("GET %s: %s = %s, want %s", tt.path, CallHeader, got, tt.call)
		}
		want, err := sampleFiles.ReadFile("samples/" + formatFiles[tt.format].samples[tt.sample-1])
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Body.String(); got != string(want) {
			t.Errorf("GET %s call %s: body is not the %s sample %d:\n%s", tt.path, tt.call, tt.format, tt.sample, got)
		}
		if _, stats, err := parseServed(w.Header().Get("Content-Type"), w.Body.Bytes()); err != nil || stats.Format != tt.format {
			t.Errorf("GET %s: parsed as %q (%v), want %s", tt.path, stats.Format, err, tt.format)
		}
	}
	if got := []int{sim.Requests(), sim.Feed("acme").Requests(), sim.Feed("legacy").Requests()}; !cmp.Equal(got, []int{2, 3, 1}) {
		t.Errorf("calls of the default, acme and legacy = %v, want [2 3 1]", got)
	}
	if sim.Feed("other") != nil || sim.Feed("acme").Feed("acme") != nil {
		t.Errorf("Feed of an unknown name or of a feed's simulator is not nil")
	}
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/other/api/events", http.StatusNotFound},
		{http.MethodGet, "/acme", http.StatusNotFound},
		{http.MethodGet, "/acme/api/events/", http.StatusNotFound},
		{http.MethodGet, "/acme/acme/api/events", http.StatusNotFound},
		{http.MethodPost, "/acme/api/events", http.StatusMethodNotAllowed},
	} {
		if w := do(tt.method, tt.path); w.Code != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, w.Code, tt.want)
		}
	}
	if got := sim.Feed("acme").Requests(); got != 3 {
		t.Errorf("acme's calls after refused requests = %d, want 3", got)
	}
}

// TestFeedsClose closes a simulator while a call of its feed hangs: Close ends it.
func TestFeedsClose(t *testing.T) {
	sim := New(Config{Mode: Sequence, Sequence: "hang", Feeds: "acme=json"})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + FeedPath("acme"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 and a hang", resp.StatusCode)
	}
	sim.Close()
	buf := make([]byte, 1<<16)
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			break // the handler returned: the body ends short (the hang was released)
		}
	}
}
