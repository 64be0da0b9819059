package httpapi

import (
	"time"
	"unicode/utf8"

	"boxoffice/catalog"
)

// EncodeEvent returns plan p as the spec's EventSummary JSON object, such as
// {"id":"…","title":"…","start_date":"2021-06-30","start_time":"21:00:00",
// "end_date":"2021-06-30","end_time":"22:00:00","min_price":15.00,"max_price":30.00}.
// Dates and times are the provider's wall clock (the plan's UTC fields); prices are
// null when the plan has no zones. It is the catalog.Encoder the wiring passes to
// catalog.NewSearcher, so a plan is encoded once per change, never per request.
func EncodeEvent(p catalog.Plan) []byte {
	var lo, hi [24]byte
	minPrice, maxPrice := append(lo[:0], "null"...), append(hi[:0], "null"...)
	if l, h, ok := p.PriceRange(); ok {
		minPrice, maxPrice = l.AppendText(lo[:0]), h.AppendText(hi[:0])
	}
	// Exact unless the title needs escapes: the index keeps these for every plan.
	b := make([]byte, 0, encodedFixedLen+len(p.Title)+2+len(minPrice)+len(maxPrice))
	b = append(b, `{"id":"`...)
	b = p.ID.AppendText(b)
	b = append(b, `","title":`...)
	b = appendString(b, p.Title)
	start, end := p.StartsAt.UTC(), p.EndsAt.UTC()
	b = append(b, `,"start_date":"`...)
	b = start.AppendFormat(b, time.DateOnly)
	b = append(b, `","start_time":"`...)
	b = start.AppendFormat(b, time.TimeOnly)
	b = append(b, `","end_date":"`...)
	b = end.AppendFormat(b, time.DateOnly)
	b = append(b, `","end_time":"`...)
	b = end.AppendFormat(b, time.TimeOnly)
	b = append(b, `","min_price":`...)
	b = append(b, minPrice...)
	b = append(b, `,"max_price":`...)
	b = append(b, maxPrice...)
	b = append(b, '}')
	if cap(b)-len(b) > 32 { // grown for escapes: give back the slack
		b = append(make([]byte, 0, len(b)), b...)
	}
	return b
}

// encodedFixedLen is the length of an encoded event without its title and prices:
// keys, punctuation, the id, two dates and two times.
const encodedFixedLen = len(`{"id":"","title":,"start_date":"","start_time":"","end_date":"","end_time":"","min_price":,"max_price":}`) +
	36 + 2*len(time.DateOnly) + 2*len(time.TimeOnly)

// appendString appends s as a quoted JSON string, byte for byte what encoding/json
// writes: invalid UTF-8 becomes U+FFFD, and control characters, <, >, & and U+2028/9
// are escaped, so the document is safe to embed in HTML or JavaScript.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
