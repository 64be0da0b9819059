package sqlite

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"boxoffice/catalog"
)

// The zones column holds a plan's zones as a JSON array, in the provider's order:
//
//	[{"zone_id":"1","name":"Platea","capacity":100,"price_cents":2000,"numbered":true}]
//
// Prices are integer cents, exact for any JSON reader (SQLite's json functions
// included), where catalog.Money's decimal form would be read as a float. The codec is
// hand-written because decoding the zones of every plan dominated loading the catalog
// with encoding/json; anything its fast path does not expect, such as an escaped
// string, is decoded by encoding/json instead.

// storedZone is a catalog.Zone as the zones column holds it, for encoding/json.
type storedZone struct {
	ZoneID     string `json:"zone_id"`
	Name       string `json:"name"`
	Capacity   int64  `json:"capacity"`
	PriceCents int64  `json:"price_cents"`
	Numbered   bool   `json:"numbered"`
}

// appendZones appends the JSON of zones to b; no zones is "[]". Invalid UTF-8 becomes
// U+FFFD, as encoding/json writes it.
func appendZones(b []byte, zones []catalog.Zone) []byte {
	b = append(b, '[')
	for i, z := range zones {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"zone_id":`...)
		b = appendString(b, z.ZoneID)
		b = append(b, `,"name":`...)
		b = appendString(b, z.Name)
		b = append(b, `,"capacity":`...)
		b = strconv.AppendInt(b, z.Capacity, 10)
		b = append(b, `,"price_cents":`...)
		b = strconv.AppendInt(b, int64(z.Price), 10)
		b = append(b, `,"numbered":`...)
		b = strconv.AppendBool(b, z.Numbered)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendString appends s as a JSON string, escaping only what JSON requires.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}

// decodeZones decodes a zones column; "[]" is no zones, nil.
func decodeZones(b []byte) ([]catalog.Zone, error) {
	if zones, ok := decodeZonesFast(b); ok {
		return zones, nil
	}
	var in []storedZone
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, nil
	}
	zones := make([]catalog.Zone, len(in))
	for i, z := range in {
		zones[i] = catalog.Zone{ZoneID: z.ZoneID, Name: z.Name, Capacity: z.Capacity, Price: catalog.Money(z.PriceCents), Numbered: z.Numbered}
	}
	return zones, nil
}

// decodeZonesFast decodes exactly what appendZones writes when no string needed an
// escape; ok is false for anything else.
func decodeZonesFast(b []byte) (zones []catalog.Zone, ok bool) {
	d := zoneDecoder{b: b}
	if !d.lit("[") {
		return nil, false
	}
	if d.lit("]") {
		return nil, d.end()
	}
	zones = make([]catalog.Zone, 0, 1+bytes.Count(b, []byte(`},{`)))
	for {
		var z catalog.Zone
		var price int64
		if !d.lit(`{"zone_id":`) || !d.str(&z.ZoneID) ||
			!d.lit(`,"name":`) || !d.str(&z.Name) ||
			!d.lit(`,"capacity":`) || !d.int(&z.Capacity) ||
			!d.lit(`,"price_cents":`) || !d.int(&price) ||
			!d.lit(`,"numbered":`) || !d.bool(&z.Numbered) || !d.lit("}") {
			return nil, false
		}
		z.Price = catalog.Money(price)
		zones = append(zones, z)
		if d.lit("]") {
			return zones, d.end()
		}
		if !d.lit(",") {
			return nil, false
		}
	}
}

// zoneDecoder reads b from its start; each method consumes what it reads on success.
type zoneDecoder struct{ b []byte }

func (d *zoneDecoder) end() bool { return len(d.b) == 0 }

func (d *zoneDecoder) lit(s string) bool {
	if len(d.b) < len(s) || string(d.b[:len(s)]) != s {
		return false
	}
	d.b = d.b[len(s):]
	return true
}

// str reads a string without escapes or control characters, in valid UTF-8.
func (d *zoneDecoder) str(s *string) bool {
	if len(d.b) == 0 || d.b[0] != '"' {
		return false
	}
	end := bytes.IndexByte(d.b[1:], '"')
	if end < 0 {
		return false
	}
	v := d.b[1 : 1+end]
	for _, c := range v {
		if c == '\\' || c < 0x20 {
			return false
		}
	}
	if !utf8.Valid(v) {
		return false
	}
	*s = string(v)
	d.b = d.b[2+end:]
	return true
}

// int reads a decimal integer that fits an int64.
func (d *zoneDecoder) int(n *int64) bool {
	i, neg := 0, false
	if len(d.b) > 0 && d.b[0] == '-' {
		i, neg = 1, true
	}
	start := i
	var u uint64
	for ; i < len(d.b) && d.b[i] >= '0' && d.b[i] <= '9'; i++ {
		if u > (math.MaxUint64-9)/10 {
			return false
		}
		u = u*10 + uint64(d.b[i]-'0')
	}
	switch {
	case i == start:
		return false
	case neg && u <= 1<<63:
		*n = -int64(u) // -1<<63 included: the negation wraps to itself
	case !neg && u < 1<<63:
		*n = int64(u)
	default:
		return false
	}
	d.b = d.b[i:]
	return true
}

func (d *zoneDecoder) bool(v *bool) bool {
	switch {
	case d.lit("true"):
		*v = true
	case d.lit("false"):
		*v = false
	default:
		return false
	}
	return true
}
