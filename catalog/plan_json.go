package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"time"
)

// AppendJSON appends p's JSON encoding to b: the object encoding/json writes for a Plan
// (the same keys in the same order, omitempty alike, times in RFC 3339 with
// nanoseconds, prices with two decimals), which encoding/json decodes back to p. It
// escapes only what JSON requires, not '<', '>' and '&' as encoding/json does, and
// writes invalid UTF-8 as U+FFFD like it. It is the wire form of plan batches, written
// several times faster than by reflection. Like encoding/json, it fails on a time whose
// year is outside 0–9999.
func (p *Plan) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"id":"`...)
	b = p.ID.AppendText(b)
	b = append(b, `","provider":`...)
	b = appendJSONString(b, p.Provider)
	b = append(b, `,"base_plan_id":`...)
	b = appendJSONString(b, p.BasePlanID)
	b = append(b, `,"plan_id":`...)
	b = appendJSONString(b, p.PlanID)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, p.Title)
	if p.OrganizerCompanyID != "" {
		b = append(b, `,"organizer_company_id":`...)
		b = appendJSONString(b, p.OrganizerCompanyID)
	}
	b = append(b, `,"sell_mode":`...)
	b = appendJSONString(b, string(p.SellMode))
	for _, t := range []struct {
		key string
		t   time.Time
	}{{`,"starts_at":"`, p.StartsAt}, {`,"ends_at":"`, p.EndsAt}, {`,"sell_from":"`, p.SellFrom}, {`,"sell_to":"`, p.SellTo}} {
		if y := t.t.Year(); y < 0 || y > 9999 {
			return b, fmt.Errorf("plan %s: %s: year %d outside of 0–9999", p.ID, t.key[2:len(t.key)-3], y)
		}
		b = append(b, t.key...)
		b = t.t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = append(b, `,"sold_out":`...)
	b = strconv.AppendBool(b, p.SoldOut)
	b = append(b, `,"zones":`...)
	if p.Zones == nil {
		b = append(b, "null"...)
	} else {
		b = appendZones(b, p.Zones, true)
	}
	b = append(b, `,"revision":`...)
	b = strconv.AppendInt(b, p.Revision, 10)
	if p.EverOnline {
		b = append(b, `,"ever_online":true`...)
	}
	if p.Version != 0 {
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, p.Version, 10)
	}
	return append(b, '}'), nil
}

// DecodePlansJSON decodes a JSON array of plans as encoding/json decodes it into a
// []Plan, several times faster for the form AppendJSON writes: objects of the known
// keys in any order and with any spacing, integers without fraction or exponent
// (strings with escapes are unquoted by encoding/json alone). Anything else (an
// unknown key, a null where a value was expected) goes to encoding/json, whose result
// or error it returns. With two cores or more, it decodes a large array in two halves
// at once (see parallelMin).
func DecodePlansJSON(b []byte) ([]Plan, error) {
	halves := parallelMin
	if runtime.GOMAXPROCS(0) < 2 {
		halves = math.MaxInt
	}
	if plans, ok := decodePlansFast(b, halves); ok {
		return plans, nil
	}
	var plans []Plan
	if err := json.Unmarshal(b, &plans); err != nil {
		return nil, err
	}
	return plans, nil
}

// parallelMin is the size of an array's elements from which decodePlansFast decodes
// them in two halves, each on its own goroutine: about 250 plans, 0.6 ms of decoding,
// where a goroutine costs a microsecond. The worker decodes a batch (up to 20 000 plans,
// 11 MB, on the embedded broker) on its single goroutine while the store waits for it.
const parallelMin = 128 << 10

// decodePlansFast decodes an array of plan objects in the form DecodePlansJSON reads
// fast, in halves at once when its elements take parallelMin bytes or more and it can be
// cut between two plans (decodeHalves); ok is false for anything else, even valid JSON,
// which encoding/json then reads.
func decodePlansFast(b []byte, parallelMin int) (plans []Plan, ok bool) {
	d := zoneDecoder{b: b}
	if d.null() {
		return nil, d.end()
	}
	if !d.lit('[') {
		return nil, false
	}
	if d.lit(']') {
		return []Plan{}, d.end() // encoding/json's result for "[]": empty, not nil
	}
	if len(d.b) >= parallelMin {
		if plans, ok := decodeHalves(d.b); ok {
			return plans, true
		}
	}
	plans, ok = d.planElements(make([]Plan, 0, countPlans(d.b)), false)
	if !ok || !d.end() {
		return nil, false
	}
	return plans, true
}

// planBoundary is where decodeHalves cuts: between two plans as AppendJSON writes them.
var planBoundary = []byte(`},{"id":"`)

// decodeHalves decodes b, the elements of an array of plans and what follows them (its
// closing bracket, spaces), in two halves at once: the half up to a planBoundary near
// the middle on this goroutine, the rest on another, both into one slice. It returns
// what the sequential decoder returns, or false where the sequential decoder might not
// accept b: the first half is read exactly as the sequential decoder reads it (nothing
// it reads looks past a plan's closing brace), so if it ends right after a plan, the
// sequential decoder is then in the same place, after a plan, before the comma.
func decodeHalves(b []byte) ([]Plan, bool) {
	mid := len(b) / 2
	i := bytes.Index(b[mid:], planBoundary)
	if i < 0 {
		return nil, false
	}
	cut := mid + i + 1 // the comma between the halves
	head, tail := b[:cut], b[cut+1:]
	nHead, nTail := countPlans(head), countPlans(tail)
	all := make([]Plan, 0, nHead+nTail)
	var (
		tailPlans []Plan
		tailOK    bool
		panicked  any
	)
	done := make(chan struct{})
	go func() { // stops once it has read the tail
		defer close(done)
		defer func() { panicked = recover() }() // raised again on the caller's goroutine
		d := zoneDecoder{b: tail}
		tailPlans, tailOK = d.planElements(all[nHead:nHead:nHead+nTail], false)
		tailOK = tailOK && d.end()
	}()
	d := zoneDecoder{b: head}
	headPlans, headOK := d.planElements(all[:0:nHead], true)
	<-done
	if panicked != nil {
		panic(panicked)
	}
	switch {
	case !headOK || !tailOK:
		return nil, false
	case len(headPlans) == nHead && len(tailPlans) <= nTail: // each half where it was put
		return all[:nHead+len(tailPlans)], true
	}
	return slices.Concat(headPlans, tailPlans), true
}

// planStart starts a plan as AppendJSON writes it, its id first. In valid JSON it can
// only open an object whose first key is id (a quote after a brace would end a string),
// and in the form DecodePlansJSON reads fast only a plan has an id.
var planStart = []byte(`{"id":"`)

// minPlanLen is the length of the shortest plan object with an id.
const minPlanLen = len(`{"id":"00000000-0000-0000-0000-000000000000"}`)

// countPlans returns the number of plans in b for the decoder's capacity: that of their
// starts, exact in AppendJSON's form (2 ms for 20 000 plans, 11 MB; 8 ms with the
// quote of the id key first, too frequent a byte to look for), where appending to a
// slice grown as it filled allocated five times the final slice (growing by a quarter
// at that size): 1.4 GB in a cold ingest of 1M plans, and its copies 1 s of CPU. Bounded
// by what b can hold, so that invalid input cannot make it allocate much more than its
// size.
func countPlans(b []byte) int {
	return min(bytes.Count(b, planStart), len(b)/minPlanLen+1)
}

// planElements reads plan objects separated by commas into plans, from an array's first
// element up to its closing bracket, which it reads, or with open up to the end of d.b
// right after a plan (where decodeHalves cuts).
func (d *zoneDecoder) planElements(plans []Plan, open bool) ([]Plan, bool) {
	for {
		plans = append(plans, Plan{})
		if !d.plan(&plans[len(plans)-1]) {
			return nil, false
		}
		switch {
		case open && len(d.b) == 0:
			return plans, true
		case d.lit(']'):
			return plans, !open
		case !d.lit(','):
			return nil, false
		}
	}
}

// plan reads one plan object into p; each key at most once, absent ones left zero.
func (d *zoneDecoder) plan(p *Plan) bool {
	if !d.lit('{') {
		return false
	}
	if d.lit('}') {
		return true
	}
	var seen uint32
	for {
		key, ok := d.raw()
		if !ok || !d.lit(':') {
			return false
		}
		var bit uint32
		switch string(key) {
		case "id":
			bit, ok = 1<<0, d.id(&p.ID)
		case "provider":
			bit, ok = 1<<1, d.text(&p.Provider, slotProvider)
		case "base_plan_id":
			bit, ok = 1<<2, d.text(&p.BasePlanID, slotBasePlanID)
		case "plan_id":
			bit, ok = 1<<3, d.text(&p.PlanID, noSlot)
		case "title":
			bit, ok = 1<<4, d.text(&p.Title, slotTitle)
		case "organizer_company_id":
			bit, ok = 1<<5, d.text(&p.OrganizerCompanyID, slotOrganizer)
		case "sell_mode":
			bit, ok = 1<<6, d.text((*string)(&p.SellMode), slotSellMode)
		case "starts_at":
			bit, ok = 1<<7, d.time(&p.StartsAt)
		case "ends_at":
			bit, ok = 1<<8, d.time(&p.EndsAt)
		case "sell_from":
			bit, ok = 1<<9, d.time(&p.SellFrom)
		case "sell_to":
			bit, ok = 1<<10, d.time(&p.SellTo)
		case "sold_out":
			bit, ok = 1<<11, d.bool(&p.SoldOut)
		case "zones":
			bit, ok = 1<<12, d.wireZones(&p.Zones)
		case "revision":
			bit, ok = 1<<13, d.strictInt(&p.Revision)
		case "ever_online":
			bit, ok = 1<<14, d.bool(&p.EverOnline)
		case "version":
			bit, ok = 1<<15, d.strictInt(&p.Version)
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if d.lit('}') {
			return true
		}
		if !d.lit(',') {
			return false
		}
	}
}

// wireZones reads a plan's zones as encoding/json writes them for []Zone (the price a
// decimal number): null is none (nil), [] an empty slice. The zones of successive plans
// share the decoder's slab (zoneSlab), each plan's capped to its own.
func (d *zoneDecoder) wireZones(zones *[]Zone) bool {
	if d.null() {
		*zones = nil
		return true
	}
	start := len(d.slab)
	if !d.elements(func() bool {
		if len(d.slab) == cap(d.slab) {
			n := len(d.slab) - start // this plan's zones so far move to the new slab
			slab := make([]Zone, n, max(min(2*cap(d.slab), zoneSlab), 16, 2*n))
			copy(slab, d.slab[start:])
			d.slab, start = slab, 0
		}
		d.slab = append(d.slab, Zone{})
		return d.zone(&d.slab[len(d.slab)-1], true, len(d.slab)-1-start)
	}) {
		return false
	}
	if len(d.slab) == start {
		*zones = []Zone{}
		return true
	}
	*zones = d.slab[start:len(d.slab):len(d.slab)]
	return true
}

// zoneSlab is the most zones a slab of wireZones holds (28 KiB): a batch of 20 000 plans
// of two zones allocates about 80 slabs where it allocated 80 000 times (per plan, a
// slice grown twice and each zone), 335 MB of a cold ingest of 1M plans. A plan kept beyond its batch keeps its slab
// alive, at most zoneSlab zones and their strings.
const zoneSlab = 512

// elements reads a JSON array, each of its elements by each.
func (d *zoneDecoder) elements(each func() bool) bool {
	if !d.lit('[') {
		return false
	}
	if d.lit(']') {
		return true
	}
	for {
		if !each() {
			return false
		}
		if d.lit(']') {
			return true
		}
		if !d.lit(',') {
			return false
		}
	}
}

// null reads the literal null.
func (d *zoneDecoder) null() bool {
	d.skipSpace()
	if !bytes.HasPrefix(d.b, []byte("null")) {
		return false
	}
	d.b = d.b[4:]
	return true
}

// number reads a JSON number literal and returns its bytes; integer reports that it
// has no fraction and no exponent.
func (d *zoneDecoder) number() (lit []byte, integer, ok bool) {
	d.skipSpace()
	b, i := d.b, 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return nil, false, false
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		if i = skipDigits(b, i+1); b[i-1] == '.' {
			return nil, false, false // no digit after the point
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		if i = skipDigits(b, i); i == start {
			return nil, false, false
		}
	}
	d.b = b[i:]
	return b[:i], integer, true
}

// skipDigits returns the index of the first byte at or after i in b that is not a
// decimal digit.
func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// strictInt reads an integer literal of JSON's grammar (no leading zeros) that fits
// an int64.
func (d *zoneDecoder) strictInt(n *int64) bool {
	lit, integer, ok := d.number()
	if !ok || !integer {
		return false
	}
	v, err := strconv.ParseInt(string(lit), 10, 64)
	if err != nil {
		return false
	}
	*n = v
	return true
}

// money reads a price as Money.UnmarshalJSON does, from a JSON number.
func (d *zoneDecoder) money(m *Money) bool {
	lit, _, ok := d.number()
	if !ok {
		return false
	}
	v, err := ParseMoney(string(lit))
	if err != nil {
		return false
	}
	*m = v
	return true
}

// id reads an ID in its canonical form, as ID.UnmarshalText does.
func (d *zoneDecoder) id(id *ID) bool {
	v, ok := d.raw()
	if !ok {
		return false
	}
	return id.UnmarshalText(v) == nil
}

// time reads a time as time.Time.UnmarshalJSON does: RFC 3339, strictly.
func (d *zoneDecoder) time(t *time.Time) bool {
	v, ok := d.raw()
	if !ok {
		return false
	}
	return t.UnmarshalText(v) == nil
}

// text reads a JSON string as encoding/json does: in place when it has no escapes and
// is valid UTF-8 (shared with the last string of its slot when equal, see intern), else
// by encoding/json itself (escapes, invalid UTF-8 as U+FFFD).
func (d *zoneDecoder) text(s *string, slot int) bool {
	if v, ok := d.raw(); ok {
		*s = d.intern(v, slot)
		return true
	}
	// raw refused it: find where the string ends, its escapes skipped.
	if len(d.b) == 0 || d.b[0] != '"' {
		return false
	}
	for i := 1; i < len(d.b); i++ {
		switch c := d.b[i]; {
		case c == '\\':
			i++
		case c < 0x20:
			return false
		case c == '"':
			if json.Unmarshal(d.b[:i+1], s) != nil {
				return false
			}
			d.b = d.b[i+1:]
			return true
		}
	}
	return false
}
