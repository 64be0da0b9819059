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
		o.Fingerprint, buf = fingerprint(buf, &o.Plan, o.Zones)
	}
	return obs
}

// Fingerprinter computes the Observation.Fingerprint of single plans, reusing its
// buffers: ingest compares it with the stored fingerprint to leave out of a sync's
// batches the plans that the store holds as they are. The zero value is ready; it is
// not safe for concurrent use.
type Fingerprinter struct {
	zones, buf []byte
}

// Fingerprint returns the fingerprint that Observe gives p when p wins its batch.
func (f *Fingerprinter) Fingerprint(p Plan) int64 {
	validPlanText(&p) // p is a copy, and validPlanText copies the zones it changes
	f.zones = AppendZonesJSON(f.zones[:0], p.Zones)
	var sum int64
	sum, f.buf = fingerprint(f.buf, &p, f.zones)
	return sum
}

// fingerprint returns the fingerprint of p with its zones in storage form, and buf
// (reused) as it filled it.
func fingerprint(buf []byte, p *Plan, zones []byte) (int64, []byte) {
	buf = fingerprintInput(buf[:0], p, zones)
	sum := sha256.Sum256(buf)
	return int64(binary.BigEndian.Uint64(sum[:8])), buf
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

// Stored is what a store holds of a plan that decides how an observation applies to
// it (Decide); the zero value is a plan not stored.
type Stored struct {
	Exists      bool
	Revision    int64 // of the stored values
	EverOnline  bool
	Fingerprint int64
}

// Floor says where a batch stands among the syncs of its provider (see Decide). The
// zero value is an untracked batch: one that belongs to no sync.
type Floor struct {
	// Tracked is set for a batch of a sync (ingest.Batch.Tracked).
	Tracked bool
	// Revision is the highest revision of a sync of the batch's provider that had a
	// batch applied before this one, or confirmed: a tracked batch below it is late.
	Revision int64
}

// Write is what a store writes for one observation.
type Write int

// The writes of Decide.
const (
	WriteNothing  Write = iota
	WriteValues         // insert the plan, or replace all its values
	WriteState          // it becomes ever-online with the values stored: revision, ever_online and version move
	WriteRevision       // a newer observation of the same values: only the revision moves
)

// Decide is the rule of Store.UpsertPlans and ingest.BatchStore for one plan: what a
// store writes for observation o given the plan's stored row st and the floor of its
// batch, and the revision and ever-online flag the row has after it. Both stores call
// it, SQLite for each plan and PostgreSQL to leave out of its MERGE the plans it would
// not write.
//
//   - A new plan is inserted, and a newer observation with other values replaces the
//     stored ones, unless the observation is late (below).
//   - Ever-online is sticky: an online observation, late or not, makes the stored
//     values searchable.
//   - A newer observation of the same values moves only the revision, so that an
//     older one can never regress them; except in a tracked batch, which writes
//     nothing: the revision of the values stays, and the sync's place among its
//     provider's syncs does that job. A tracked batch whose revision is below a sync
//     of its provider that had a batch applied (a batch of an older sync, late) writes
//     no values over a stored plan: the newer sync observed the plan (unchanged,
//     writing nothing) or will (its batch is yet to come). So a re-sync of an
//     unchanged catalog writes no plan row at all.
func Decide(o *Observation, st Stored, f Floor) (w Write, revision int64, ever bool) {
	r := o.Plan.Revision
	ever = o.Online || st.EverOnline
	newer := !st.Exists || r > st.Revision
	late := f.Tracked && r < f.Revision
	switch {
	case !st.Exists || newer && !late && o.Fingerprint != st.Fingerprint:
		return WriteValues, r, ever
	case ever && !st.EverOnline:
		return WriteState, max(st.Revision, r), ever
	case newer && !f.Tracked:
		return WriteRevision, r, ever
	}
	return WriteNothing, st.Revision, ever
}
