package catalog

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"time"
	"unicode/utf8"
)

// Observation is one plan of a batch as a store applies it: the batch's occurrences of
// a plan ID folded by the rules of Store.UpsertPlans, with the stored forms a store
// compares and writes.
type Observation struct {
	Plan        Plan   // the occurrence whose values win: highest revision, the first on a tie
	Online      bool   // any occurrence was Online: enough to make the plan ever-online
	Zones       []byte // Plan.Zones in their storage form (AppendZonesJSON)
	Fingerprint int64  // of the values a store keeps, not of Revision, EverOnline or Version
}

// Observe folds batch into one Observation per plan ID, in the order of first
// occurrence. Stores call it so that every store applies a batch the same way.
//
// Text that is not valid UTF-8 (a provider's bytes in another encoding) is stored
// with each invalid byte replaced by U+FFFD, as encoding/json writes it: Observe
// replaces it in the winning occurrence's strings and zones, so every store keeps the
// same text, the products' IDs derive from it, and no batch is refused for it.
func Observe(batch []Plan) []Observation {
	at := make(map[ID]int, len(batch))
	obs := make([]Observation, 0, len(batch))
	for _, p := range batch {
		if i, ok := at[p.ID]; ok {
			o := &obs[i]
			o.Online = o.Online || p.SellMode == Online
			if p.Revision > o.Plan.Revision {
				o.Plan = p
			}
			continue
		}
		at[p.ID] = len(obs)
		obs = append(obs, Observation{Plan: p, Online: p.SellMode == Online})
	}
	var buf []byte
	for i := range obs {
		o := &obs[i]
		validPlanText(&o.Plan)
		o.Zones = AppendZonesJSON(make([]byte, 0, 2+96*len(o.Plan.Zones)), o.Plan.Zones)
		buf = fingerprintInput(buf[:0], &o.Plan, o.Zones)
		sum := sha256.Sum256(buf)
		o.Fingerprint = int64(binary.BigEndian.Uint64(sum[:8]))
	}
	return obs
}

// fingerprintInput appends to b an unambiguous encoding of the values of p as stored
// (times at second precision), so equal inputs mean equal stored values.
func fingerprintInput(b []byte, p *Plan, zones []byte) []byte {
	for _, s := range []string{p.Provider, p.BasePlanID, p.PlanID, p.Title, p.OrganizerCompanyID, string(p.SellMode)} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, t := range []time.Time{p.StartsAt, p.EndsAt, p.SellFrom, p.SellTo} {
		b = binary.AppendVarint(b, t.Unix())
	}
	if p.SoldOut {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return append(b, zones...)
}

// validPlanText replaces the invalid UTF-8 in p's strings (see validText). p's zones
// are copied before any is changed: they are the batch's.
func validPlanText(p *Plan) {
	for _, f := range []*string{&p.Provider, &p.BasePlanID, &p.PlanID, &p.Title, &p.OrganizerCompanyID} {
		*f = validText(*f)
	}
	p.SellMode = SellMode(validText(string(p.SellMode)))
	copied := false
	for i, z := range p.Zones {
		if utf8.ValidString(z.ZoneID) && utf8.ValidString(z.Name) {
			continue
		}
		if !copied {
			p.Zones, copied = append([]Zone(nil), p.Zones...), true
		}
		p.Zones[i].ZoneID, p.Zones[i].Name = validText(z.ZoneID), validText(z.Name)
	}
}

// validText returns s with each byte that is not part of valid UTF-8 replaced by
// U+FFFD, as encoding/json and AppendZonesJSON write it; s itself when it is valid.
func validText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
