package catalog

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// Stores keep a plan's zones as one JSON array (SQLite's text column, PostgreSQL's
// jsonb), in the provider's order:
//
//	[{"zone_id":"1","name":"Platea","capacity":100,"price_cents":2000,"numbered":true}]
//
// Prices are integer cents, exact for any JSON reader. jsonb keeps the order of array
// elements, so duplicate zone ids stay where they were, but not the order of an object's
// keys nor its spacing: it returns `{"name": "Platea", "zone_id": "1", "capacity": 100,
// "numbered": true, "price_cents": 2000}`. The decoder's fast path reads that (any key
// order, any spacing); anything else, such as an escaped string, goes to encoding/json.

// storedZone is a Zone as the zones column holds it, for encoding/json.
type storedZone struct {
	ZoneID     string `json:"zone_id"`
	Name       string `json:"name"`
	Capacity   int64  `json:"capacity"`
	PriceCents int64  `json:"price_cents"`
	Numbered   bool   `json:"numbered"`
}

// AppendZonesJSON appends the storage form of zones to b; no zones is "[]". Invalid UTF-8 becomes
// U+FFFD, as encoding/json writes it.
func AppendZonesJSON(b []byte, zones []Zone) []byte {
	return appendZones(b, zones, false)
}

// appendZones appends zones as a JSON array of objects: in the storage form, or with
// wire true in the form encoding/json writes for a Zone (the price a decimal number
// under "price").
func appendZones(b []byte, zones []Zone, wire bool) []byte {
	b = append(b, '[')
	for i, z := range zones {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"zone_id":`...)
		b = appendJSONString(b, z.ZoneID)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, z.Name)
		b = append(b, `,"capacity":`...)
		b = strconv.AppendInt(b, z.Capacity, 10)
		if wire {
			b = append(b, `,"price":`...)
			b = z.Price.AppendText(b)
		} else {
			b = append(b, `,"price_cents":`...)
			b = strconv.AppendInt(b, int64(z.Price), 10)
		}
		b = append(b, `,"numbered":`...)
		b = strconv.AppendBool(b, z.Numbered)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendString appends s as a JSON string, escaping only what JSON requires.
func appendJSONString(b []byte, s string) []byte {
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

// DecodeZonesJSON decodes a zones column; "[]" is no zones, nil.
func DecodeZonesJSON(b []byte) ([]Zone, error) {
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
	zones := make([]Zone, len(in))
	for i, z := range in {
		zones[i] = Zone{ZoneID: z.ZoneID, Name: z.Name, Capacity: z.Capacity, Price: Money(z.PriceCents), Numbered: z.Numbered}
	}
	return zones, nil
}

// decodeZonesFast decodes an array of zone objects, each with exactly the five keys in
// any order, whose strings need no unescaping; ok is false for anything else.
func decodeZonesFast(b []byte) (zones []Zone, ok bool) {
	d := zoneDecoder{b: b}
	if !d.lit('[') {
		return nil, false
	}
	if d.lit(']') {
		return nil, d.end()
	}
	zones = make([]Zone, 0, bytes.Count(b, []byte{'{'})) // exact unless a string has a brace
	for {
		zones = append(zones, Zone{})
		if !d.zone(&zones[len(zones)-1], false, len(zones)-1) {
			return nil, false
		}
		if d.lit(']') {
			return zones, d.end()
		}
		if !d.lit(',') {
			return nil, false
		}
	}
}

// zoneDecoder reads b from its start; each method skips the JSON whitespace before what
// it reads and consumes what it reads on success. It reads the zones column and, with
// the plans' methods of plan_json.go, batches of plans.
type zoneDecoder struct {
	b []byte

	// slab holds the zones of the plans read so far and room for more (wireZones).
	slab []Zone

	// last holds the last string read into each slot (intern).
	last [slots]string
}

// The slots of zoneDecoder.last: the strings of a plan that the plans of a batch
// repeat (the provider's, the base plan's, the sell mode), and those of a plan's
// zones by their position in it, the last position standing for those after it.
const (
	slotProvider = iota
	slotBasePlanID
	slotTitle
	slotOrganizer
	slotSellMode
	slotZones // a zone's id, then its name (zoneSlot)

	zonePositions = 4
	slots         = slotZones + 2*zonePositions
)

// noSlot is the slot of strings that no other repeats: intern returns a new string.
const noSlot = -1

// zoneSlot returns the slot of the id of the zone at position i in its plan; its
// name's is the next.
func zoneSlot(i int) int { return slotZones + 2*min(i, zonePositions-1) }

// intern returns v as a string: the last string of slot when equal (no allocation; a
// batch of 20 000 plans has 200 base plans, which its plans repeat), else a new one,
// which becomes the slot's last; always new with noSlot.
func (d *zoneDecoder) intern(v []byte, slot int) string {
	if slot == noSlot {
		return string(v)
	}
	if s := d.last[slot]; s == string(v) {
		return s
	}
	s := string(v)
	d.last[slot] = s
	return s
}

func (d *zoneDecoder) skipSpace() {
	for len(d.b) > 0 && (d.b[0] == ' ' || d.b[0] == '\n' || d.b[0] == '\t' || d.b[0] == '\r') {
		d.b = d.b[1:]
	}
}

func (d *zoneDecoder) end() bool {
	d.skipSpace()
	return len(d.b) == 0
}

func (d *zoneDecoder) lit(c byte) bool {
	d.skipSpace()
	if len(d.b) == 0 || d.b[0] != c {
		return false
	}
	d.b = d.b[1:]
	return true
}

// zone reads one zone object into z with exactly its five keys, in any order: in the
// storage form, or with wire true in the form encoding/json writes for a Zone (the price
// a decimal number under "price", strings unquoted as encoding/json does, integers as
// JSON writes them). i is its position in its plan.
func (d *zoneDecoder) zone(z *Zone, wire bool, i int) bool {
	if !d.lit('{') {
		return false
	}
	var seen uint8
	for k := range 5 {
		if k > 0 && !d.lit(',') {
			return false
		}
		key, ok := d.raw()
		if !ok || !d.lit(':') {
			return false
		}
		var bit uint8
		switch string(key) {
		case "zone_id":
			bit, ok = 1, d.zoneText(&z.ZoneID, wire, zoneSlot(i))
		case "name":
			bit, ok = 2, d.zoneText(&z.Name, wire, zoneSlot(i)+1)
		case "capacity":
			bit = 4
			if wire {
				ok = d.strictInt(&z.Capacity)
			} else {
				ok = d.int(&z.Capacity)
			}
		case "price_cents":
			var cents int64
			bit, ok = 8, !wire && d.int(&cents)
			z.Price = Money(cents)
		case "price":
			bit, ok = 8, wire && d.money(&z.Price)
		case "numbered":
			bit, ok = 16, d.bool(&z.Numbered)
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
	return d.lit('}')
}

// zoneText reads a zone's string: in the wire form as encoding/json does (text), in
// the storage form only without escapes.
func (d *zoneDecoder) zoneText(s *string, wire bool, slot int) bool {
	if wire {
		return d.text(s, slot)
	}
	v, ok := d.raw()
	if ok {
		*s = d.intern(v, slot)
	}
	return ok
}

// raw reads a string without escapes or control characters, in valid UTF-8, and returns
// its bytes inside the quotes.
func (d *zoneDecoder) raw() ([]byte, bool) {
	d.skipSpace()
	if len(d.b) == 0 || d.b[0] != '"' {
		return nil, false
	}
	ascii := true
	for i := 1; i < len(d.b); i++ {
		switch c := d.b[i]; {
		case c == '"':
			v := d.b[1:i]
			if !ascii && !utf8.Valid(v) {
				return nil, false
			}
			d.b = d.b[i+1:]
			return v, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// int reads a decimal integer that fits an int64.
func (d *zoneDecoder) int(n *int64) bool {
	d.skipSpace()
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
	case i < len(d.b) && (d.b[i] == '.' || d.b[i] == 'e' || d.b[i] == 'E'):
		return false // not an integer literal: encoding/json decides
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
	d.skipSpace()
	switch {
	case bytes.HasPrefix(d.b, []byte("true")):
		*v, d.b = true, d.b[4:]
	case bytes.HasPrefix(d.b, []byte("false")):
		*v, d.b = false, d.b[5:]
	default:
		return false
	}
	return true
}
