package httpapi

import (
	"fmt"
	"net/url"
	"time"

	"boxoffice/catalog"
)

// The search window's query parameters.
const (
	paramStartsAt = "starts_at"
	paramEndsAt   = "ends_at"
)

// acceptedForms ends every message about a malformed bound.
const acceptedForms = "use RFC 3339 (2021-02-01T00:00:00Z) or a date (2021-02-01)"

// ParseWindow reads the search window from the starts_at and ends_at query parameters.
//
// A bound is RFC 3339 with a zone (Z, z or ±hh:mm), the same without a zone (read as
// UTC, the provider's wall clock), with optional fractional seconds or without seconds
// (2021-02-01T10:30), or a plain date: starts_at=2021-07-01 means 2021-07-01T00:00:00Z
// and ends_at=2021-07-31 means the end of that day, 2021-08-01T00:00:00Z, so plans
// finishing on the 31st are included. A space in place of the offset's sign is read as
// "+": that is what an unescaped "+" in a URL decodes to. An empty value is an omitted
// bound, and other parameters are ignored.
//
// The window's bounds are in UTC. Errors wrap ErrBadRequest and name the parameter; an
// inverted window also wraps catalog.ErrInvertedWindow.
func ParseWindow(q url.Values) (catalog.Window, error) {
	var w catalog.Window
	var err error
	if w.From, err = parseBound(q, paramStartsAt, false); err != nil {
		return catalog.Window{}, err
	}
	if w.To, err = parseBound(q, paramEndsAt, true); err != nil {
		return catalog.Window{}, err
	}
	if err := w.Validate(); err != nil {
		return catalog.Window{}, badRequest(fmt.Errorf("%w: %s is after %s",
			err, w.From.Format(time.RFC3339Nano), w.To.Format(time.RFC3339Nano)))
	}
	return w, nil
}

// parseBound reads one bound; a zero time means it was omitted. A plain date as an
// upper bound (endOfDay) means the next day's midnight. Bounds must fall in the years
// 0001 to 9999 in UTC, and not on the zero time.Time, which would read as omitted.
func parseBound(q url.Values, name string, endOfDay bool) (time.Time, error) {
	vs := q[name]
	switch {
	case len(vs) == 0 || (len(vs) == 1 && vs[0] == ""):
		return time.Time{}, nil
	case len(vs) > 1:
		return time.Time{}, badRequest(fmt.Errorf("%s: given %d times; give it once", name, len(vs)))
	}
	t, dateOnly, problem := parseTime(vs[0])
	if problem == "" && dateOnly && endOfDay {
		t = t.AddDate(0, 0, 1)
	}
	if problem == "" && (t.Year() < 1 || t.Year() > 9999 || t.IsZero()) {
		problem = "out of range"
	}
	if problem != "" {
		return time.Time{}, badRequest(fmt.Errorf("%s: %q: %s; %s", name, vs[0], problem, acceptedForms))
	}
	return t, nil
}

// parseTime parses the accepted forms of a bound (see ParseWindow) into a UTC time.
// problem says what is wrong, in a few words, or is empty. It is a small hand-written
// parser rather than a series of time.Parse layouts, so that each mistake gets its
// own message.
func parseTime(s string) (t time.Time, dateOnly bool, problem string) {
	const notTime = "not a date or time"
	// YYYY-MM-DD
	if len(s) < len("2006-01-02") || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false, notTime
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false, notTime
	}
	var hour, minute, sec, nsec, offset int
	rest := s[10:]
	if rest == "" {
		dateOnly = true
	} else {
		// Thh:mm[:ss[.fff…]][zone]
		if (rest[0] != 'T' && rest[0] != 't') || len(rest) < len("T15:04") || rest[3] != ':' {
			return time.Time{}, false, notTime
		}
		var ok4, ok5 bool
		hour, ok4 = digits(rest[1:3])
		minute, ok5 = digits(rest[4:6])
		if !ok4 || !ok5 {
			return time.Time{}, false, notTime
		}
		rest = rest[6:]
		if len(rest) > 0 && rest[0] == ':' {
			var ok bool
			if sec, ok = digitsPrefix(rest[1:], 2); !ok {
				return time.Time{}, false, notTime
			}
			rest = rest[3:]
			if len(rest) > 0 && rest[0] == '.' {
				n := 1
				for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
					n++
				}
				if n == 1 {
					return time.Time{}, false, "no digits after the decimal point"
				}
				frac := rest[1:min(n, 10)] // nanoseconds: further digits are dropped
				nsec, _ = digits(frac)
				for range 9 - len(frac) {
					nsec *= 10
				}
				rest = rest[n:]
			}
		}
		switch {
		case rest == "":
		case rest == "Z" || rest == "z":
		case len(rest) == len("+01:00") && (rest[0] == '+' || rest[0] == '-' || rest[0] == ' ') && rest[3] == ':':
			oh, ok6 := digits(rest[1:3])
			om, ok7 := digits(rest[4:6])
			if !ok6 || !ok7 {
				return time.Time{}, false, "malformed zone offset"
			}
			if oh > 23 || om > 59 {
				return time.Time{}, false, "zone offset out of range"
			}
			offset = (oh*60 + om) * 60
			if rest[0] == '-' {
				offset = -offset
			}
		default:
			return time.Time{}, false, "malformed zone"
		}
	}
	switch {
	case month < 1 || month > 12:
		return time.Time{}, false, "month out of range"
	case day < 1 || day > daysIn(year, time.Month(month)):
		return time.Time{}, false, "day out of range"
	case hour > 23:
		return time.Time{}, false, "hour out of range"
	case minute > 59:
		return time.Time{}, false, "minute out of range"
	case sec > 59:
		return time.Time{}, false, "second out of range"
	}
	t = time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), dateOnly, ""
}

// daysIn returns the number of days of month in year.
func daysIn(year int, month time.Month) int {
	return time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// digits parses s as an unsigned decimal number of ASCII digits only.
//
// Like provider's atoi, but "" is no number; adapters never import each other, and
// strconv.Atoi would take a sign.
func digits(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := range len(s) {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// digitsPrefix parses the first n bytes of s as digits.
func digitsPrefix(s string, n int) (int, bool) {
	if len(s) < n {
		return 0, false
	}
	return digits(s[:n])
}
