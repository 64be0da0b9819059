package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"boxoffice/catalog"
)

// render shows a bound as RFC 3339 in UTC, an open one as "".
func render(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func TestParseWindow(t *testing.T) {
	tests := []struct {
		name     string
		give     string // the raw query string
		wantFrom string
		wantTo   string
	}{
		{"none", "", "", ""},
		{"empty values", "starts_at=&ends_at=", "", ""},
		{"only starts_at", "starts_at=2021-02-01T00:00:00Z", "2021-02-01T00:00:00Z", ""},
		{"only ends_at", "ends_at=2022-07-03T00:00:00Z", "", "2022-07-03T00:00:00Z"},
		{"both", "starts_at=2021-02-01T00:00:00Z&ends_at=2022-07-03T00:00:00Z", "2021-02-01T00:00:00Z", "2022-07-03T00:00:00Z"},
		{"equal bounds", "starts_at=2021-02-01T10:00:00Z&ends_at=2021-02-01T10:00:00Z", "2021-02-01T10:00:00Z", "2021-02-01T10:00:00Z"},
		{"lowercase z and t", "starts_at=2021-02-01t10:00:00z", "2021-02-01T10:00:00Z", ""},
		{"positive offset escaped", "starts_at=2021-02-01T10:00:00%2B01:00", "2021-02-01T09:00:00Z", ""},
		{"positive offset as space", "starts_at=2021-02-01T10:00:00+01:00", "2021-02-01T09:00:00Z", ""},
		{"negative offset", "starts_at=2021-02-01T22:30:00-02:30", "2021-02-02T01:00:00Z", ""},
		{"zero offset", "starts_at=2021-02-01T10:00:00%2B00:00", "2021-02-01T10:00:00Z", ""},
		{"no zone is UTC", "starts_at=2021-02-01T10:00:00", "2021-02-01T10:00:00Z", ""},
		{"fraction", "starts_at=2021-02-01T10:00:00.5Z", "2021-02-01T10:00:00.5Z", ""},
		{"nanoseconds", "starts_at=2021-02-01T10:00:00.123456789", "2021-02-01T10:00:00.123456789Z", ""},
		{"beyond nanoseconds dropped", "starts_at=2021-02-01T10:00:00.1234567891234Z", "2021-02-01T10:00:00.123456789Z", ""},
		{"no seconds", "starts_at=2021-02-01T10:30", "2021-02-01T10:30:00Z", ""},
		{"no seconds with zone", "starts_at=2021-02-01T10:30%2B02:00", "2021-02-01T08:30:00Z", ""},
		{"date starts_at is start of day", "starts_at=2021-07-01", "2021-07-01T00:00:00Z", ""},
		{"date ends_at is end of day", "ends_at=2021-07-31", "", "2021-08-01T00:00:00Z"},
		{"date ends_at end of year", "ends_at=2021-12-31", "", "2022-01-01T00:00:00Z"},
		{"same date both", "starts_at=2021-07-31&ends_at=2021-07-31", "2021-07-31T00:00:00Z", "2021-08-01T00:00:00Z"},
		{"leap day", "starts_at=2024-02-29", "2024-02-29T00:00:00Z", ""},
		{"unknown parameters ignored", "page=2&starts_at=2021-02-01&foo=bar&foo=baz", "2021-02-01T00:00:00Z", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			w, err := ParseWindow(q)
			if err != nil {
				t.Fatalf("ParseWindow(%q) error: %v", tt.give, err)
			}
			if got := render(w.From); got != tt.wantFrom {
				t.Errorf("ParseWindow(%q).From = %q, want %q", tt.give, got, tt.wantFrom)
			}
			if got := render(w.To); got != tt.wantTo {
				t.Errorf("ParseWindow(%q).To = %q, want %q", tt.give, got, tt.wantTo)
			}
			for _, b := range []time.Time{w.From, w.To} {
				if !b.IsZero() && b.Location() != time.UTC {
					t.Errorf("ParseWindow(%q) bound %v in %v, want UTC", tt.give, b, b.Location())
				}
			}
		})
	}
}

func TestParseWindowErrors(t *testing.T) {
	const forms = "; use RFC 3339 (2021-02-01T00:00:00Z) or a date (2021-02-01)"
	tests := []struct {
		name string
		give string
		want string
	}{
		{"month", "starts_at=2021-13-01", `starts_at: "2021-13-01": month out of range` + forms},
		{"month zero", "starts_at=2021-00-01", `starts_at: "2021-00-01": month out of range` + forms},
		{"day", "ends_at=2021-09-31", `ends_at: "2021-09-31": day out of range` + forms},
		{"not a leap year", "ends_at=2021-02-29T00:00:00Z", `ends_at: "2021-02-29T00:00:00Z": day out of range` + forms},
		{"hour", "starts_at=2021-02-01T24:00:00Z", `starts_at: "2021-02-01T24:00:00Z": hour out of range` + forms},
		{"minute", "starts_at=2021-02-01T10:60", `starts_at: "2021-02-01T10:60": minute out of range` + forms},
		{"second", "starts_at=2021-02-01T10:00:60Z", `starts_at: "2021-02-01T10:00:60Z": second out of range` + forms},
		{"words", "starts_at=yesterday", `starts_at: "yesterday": not a date or time` + forms},
		{"unix time", "starts_at=1612137600", `starts_at: "1612137600": not a date or time` + forms},
		{"slashes", "starts_at=2021/02/01", `starts_at: "2021/02/01": not a date or time` + forms},
		{"short year", "starts_at=21-02-01", `starts_at: "21-02-01": not a date or time` + forms},
		{"one-digit month", "starts_at=2021-2-01", `starts_at: "2021-2-01": not a date or time` + forms},
		{"space separator", "starts_at=2021-02-01 10:00:00", `starts_at: "2021-02-01 10:00:00": not a date or time` + forms},
		{"hour only", "starts_at=2021-02-01T10", `starts_at: "2021-02-01T10": not a date or time` + forms},
		{"one-digit second", "starts_at=2021-02-01T10:00:0Z", `starts_at: "2021-02-01T10:00:0Z": not a date or time` + forms},
		{"empty fraction", "starts_at=2021-02-01T10:00:00.Z", `starts_at: "2021-02-01T10:00:00.Z": no digits after the decimal point` + forms},
		{"zone name", "starts_at=2021-02-01T10:00:00CET", `starts_at: "2021-02-01T10:00:00CET": malformed zone` + forms},
		{"offset without colon", "starts_at=2021-02-01T10:00:00%2B0100", `starts_at: "2021-02-01T10:00:00+0100": malformed zone` + forms},
		{"offset letters", "starts_at=2021-02-01T10:00:00%2Bab:cd", `starts_at: "2021-02-01T10:00:00+ab:cd": malformed zone offset` + forms},
		{"offset out of range", "starts_at=2021-02-01T10:00:00%2B24:00", `starts_at: "2021-02-01T10:00:00+24:00": zone offset out of range` + forms},
		{"trailing space", "starts_at=2021-02-01T10:00:00Z%20", `starts_at: "2021-02-01T10:00:00Z ": malformed zone` + forms},
		{"leading space", "starts_at=%202021-02-01", `starts_at: " 2021-02-01": not a date or time` + forms},
		{"date with zone", "starts_at=2021-02-01Z", `starts_at: "2021-02-01Z": not a date or time` + forms},
		{"year zero", "starts_at=0000-06-01", `starts_at: "0000-06-01": out of range` + forms},
		{"the zero time", "ends_at=0001-01-01T00:00:00Z", `ends_at: "0001-01-01T00:00:00Z": out of range` + forms},
		{"past year 9999", "ends_at=9999-12-31", `ends_at: "9999-12-31": out of range` + forms},
		{"repeated", "starts_at=2021-02-01&starts_at=2021-03-01", "starts_at: given 2 times; give it once"},
		{"repeated empty", "ends_at=&ends_at=", "ends_at: given 2 times; give it once"},
		{"inverted", "starts_at=2021-03-01T00:00:00Z&ends_at=2021-02-01T00:00:00Z",
			"starts_at is after ends_at: 2021-03-01T00:00:00Z is after 2021-02-01T00:00:00Z"},
		{"inverted by offsets", "starts_at=2021-02-01T10:00:00-01:00&ends_at=2021-02-01T10:30:00",
			"starts_at is after ends_at: 2021-02-01T11:00:00Z is after 2021-02-01T10:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			w, err := ParseWindow(q)
			if err == nil {
				t.Fatalf("ParseWindow(%q) = %v..%v, want error %q", tt.give, render(w.From), render(w.To), tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("ParseWindow(%q) error = %q, want %q", tt.give, got, tt.want)
			}
			if !errors.Is(err, ErrBadRequest) {
				t.Errorf("ParseWindow(%q) error %v is not ErrBadRequest", tt.give, err)
			}
		})
	}
}

func TestParseWindowInvertedIsErrInvertedWindow(t *testing.T) {
	_, err := ParseWindow(url.Values{"starts_at": {"2021-03-01"}, "ends_at": {"2021-02-01"}})
	if !errors.Is(err, catalog.ErrInvertedWindow) {
		t.Errorf("ParseWindow(inverted) error = %v, want catalog.ErrInvertedWindow", err)
	}
}

// FuzzParseWindow checks that ParseWindow never panics, and that a window it accepts
// is valid, in UTC, and comes back the same from its RFC 3339 rendering.
func FuzzParseWindow(f *testing.F) {
	// More seeds are in testdata/fuzz/FuzzParseWindow.
	f.Add("2021-02-01T00:00:00Z", "2022-07-03T00:00:00Z")
	f.Add("2021-07-01", "2021-07-31")
	f.Fuzz(func(t *testing.T, starts, ends string) {
		q := url.Values{}
		if starts != "" {
			q.Set(paramStartsAt, starts)
		}
		if ends != "" {
			q.Set(paramEndsAt, ends)
		}
		w, err := ParseWindow(q)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Errorf("ParseWindow(%q, %q) error %v is not ErrBadRequest", starts, ends, err)
			}
			return
		}
		if err := w.Validate(); err != nil {
			t.Errorf("ParseWindow(%q, %q) = %v..%v, invalid: %v", starts, ends, render(w.From), render(w.To), err)
		}
		for _, b := range []time.Time{w.From, w.To} {
			if !b.IsZero() && b.Location() != time.UTC {
				t.Errorf("ParseWindow(%q, %q) bound %v in %v, want UTC", starts, ends, b, b.Location())
			}
		}
		again, err := ParseWindow(url.Values{paramStartsAt: {render(w.From)}, paramEndsAt: {render(w.To)}})
		if err != nil {
			t.Fatalf("ParseWindow(%q, %q) = %v..%v, which does not parse again: %v", starts, ends, render(w.From), render(w.To), err)
		}
		if !again.From.Equal(w.From) || !again.To.Equal(w.To) {
			t.Errorf("ParseWindow(%q, %q) = %v..%v, parsed again %v..%v",
				starts, ends, render(w.From), render(w.To), render(again.From), render(again.To))
		}
	})
}

// FuzzSearchQuery sends GET /search with any raw query string: the answer is a 200 or
// a 304 with the search's headers, or a 400 in the error format; never a 5xx, never a
// panic. ParseWindow's own fuzzer covers the values; this one covers everything a query
// string can carry (repeated and unknown keys, bad escapes, separators, huge values).
func FuzzSearchQuery(f *testing.F) {
	for _, q := range []string{
		"", "starts_at=2021-02-01&ends_at=2021-07-31", "starts_at=2021-02-01&starts_at=2021-03-01",
		"starts_at=%zz", "starts_at=2021-02-01T00:00:00%2B01:00", "starts_at=2021-02-01T00:00:00+01:00",
		"ends_at=9999-12-31T23:59:59Z", "starts_at=0000-01-01", "starts_at=2021-02-30", "x=1&y=2",
		"starts_at", "=&=&=", "starts_at=2021-02-01;ends_at=2021-01-01", "%00=%00", "starts_at=2021-02-01%00",
		"starts_at=" + strings.Repeat("9", 300), "ends_at=2021-07-31&ends_at=", "starts_at=+2021-01-01",
		"starts_at=2021-02-01T00:00:00.999999999999Z", "starts_at=-1", "STARTS_AT=2021-01-01",
		"limit=1", "limit=1000&starts_at=2021-02-01", "limit=0", "limit=2&cursor=", "limit=2&cursor=AQ", "cursor=x", "limit=1&limit=2",
	} {
		f.Add(q)
	}
	plans := []catalog.Plan{
		newPlan(f, "1", "One", "2021-06-30 21:00:00", "2021-06-30 22:00:00", "15.00"),
		newPlan(f, "2", "Two", "2021-07-31 20:00:00", "2021-07-31 21:30:00"),
	}
	h := New(fixedCatalog{ix: catalog.NewIndex(1, plans, EncodeEvent)}, slog.New(slog.DiscardHandler), Config{})
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, "/search", nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusNotModified:
			if rec.Header().Get("ETag") == "" {
				t.Errorf("GET /search?%s = %d without an ETag", query, rec.Code)
			}
		case http.StatusBadRequest:
			var e errorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code != "bad_request" {
				t.Errorf("GET /search?%s = 400 %s, want the error format", query, rec.Body)
			}
		default:
			t.Errorf("GET /search?%s = %d %s, want 200 or 400", query, rec.Code, rec.Body)
		}
	})
}
