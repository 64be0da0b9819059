package catalog

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SellMode says whether a base plan is sold online at the moment it was observed.
type SellMode string

// The sell modes the provider publishes.
const (
	Online  SellMode = "online"
	Offline SellMode = "offline"
)

// Plan is one dated occurrence of a base plan with its latest known values.
type Plan struct {
	ID                 ID        `json:"id"`
	Provider           string    `json:"provider"`
	BasePlanID         string    `json:"base_plan_id"`
	PlanID             string    `json:"plan_id"`
	Title              string    `json:"title"`
	OrganizerCompanyID string    `json:"organizer_company_id,omitempty"` // empty when the provider omits it
	SellMode           SellMode  `json:"sell_mode"`                      // as last observed
	StartsAt           time.Time `json:"starts_at"`                      // provider wall clock, as UTC
	EndsAt             time.Time `json:"ends_at"`
	SellFrom           time.Time `json:"sell_from"`
	SellTo             time.Time `json:"sell_to"`
	SoldOut            bool      `json:"sold_out"`
	Zones              []Zone    `json:"zones"`

	// Revision orders observations of the same plan: the later one wins. Ingest sets it
	// to the start of the sync that observed the plan, in Unix nanoseconds.
	Revision int64 `json:"revision"`

	// EverOnline and Version are kept by stores: EverOnline is true once any observation
	// had SellMode Online, Version is the catalog version of the plan's last change.
	EverOnline bool  `json:"ever_online,omitempty"`
	Version    int64 `json:"version,omitempty"`
}

// Zone is a sellable area of a plan. Zone ids are not unique inside a plan.
type Zone struct {
	ZoneID   string `json:"zone_id"`
	Name     string `json:"name"`
	Capacity int64  `json:"capacity"`
	Price    Money  `json:"price"`
	Numbered bool   `json:"numbered"`
}

// PriceRange returns the lowest and highest zone price; ok is false when the plan has no
// zones, which the API shows as null prices.
func (p Plan) PriceRange() (lo, hi Money, ok bool) {
	for i, z := range p.Zones {
		if i == 0 || z.Price < lo {
			lo = z.Price
		}
		if i == 0 || z.Price > hi {
			hi = z.Price
		}
	}
	return lo, hi, len(p.Zones) > 0
}

// Validate reports what makes a plan unusable: missing identity, an end before its
// start, or a negative price or capacity. Parsers call it before emitting a plan.
func (p Plan) Validate() error {
	switch {
	case p.Provider == "":
		return errors.New("missing provider")
	case p.BasePlanID == "":
		return errors.New("missing base_plan_id")
	case p.PlanID == "":
		return errors.New("missing plan_id")
	case p.SellMode != Online && p.SellMode != Offline:
		return fmt.Errorf("sell_mode: unknown value %q", p.SellMode)
	case p.StartsAt.IsZero() || p.EndsAt.IsZero():
		return errors.New("missing start or end")
	case p.EndsAt.Before(p.StartsAt):
		return fmt.Errorf("end %s is before start %s", p.EndsAt.Format(time.DateTime), p.StartsAt.Format(time.DateTime))
	}
	for i, z := range p.Zones {
		if z.Price < 0 {
			return fmt.Errorf("zone %d: negative price", i)
		}
		if z.Capacity < 0 {
			return fmt.Errorf("zone %d: negative capacity", i)
		}
	}
	return nil
}

// ID identifies a plan: a UUIDv5 in namespace PlanNamespace of the name
// "<provider>/<base_plan_id>/<plan_id>".
type ID [16]byte

// PlanNamespace is the UUID namespace of plan IDs. Changing it changes every ID.
var PlanNamespace = ID{0x37, 0xb1, 0xa1, 0x03, 0xf5, 0x53, 0x48, 0xea, 0x88, 0xbc, 0xab, 0xd8, 0xf2, 0xc3, 0xfd, 0x29}

// NewID returns the stable ID of a plan.
func NewID(provider, basePlanID, planID string) ID {
	var buf [128]byte // the usual name fits, so hashing allocates nothing
	name := append(buf[:0], PlanNamespace[:]...)
	name = append(append(append(append(append(name, provider...), '/'), basePlanID...), '/'), planID...)
	sum := sha1.Sum(name)
	var id ID
	copy(id[:], sum[:])
	id[6] = id[6]&0x0f | 0x50 // version 5
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}

// String returns the canonical lowercase form, xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
// Its lexical order is the byte order of the ID.
func (id ID) String() string {
	return string(id.AppendText(make([]byte, 0, 36)))
}

// AppendText appends the canonical form to b.
func (id ID) AppendText(b []byte) []byte {
	var buf [36]byte
	hex.Encode(buf[0:8], id[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], id[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], id[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], id[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], id[10:])
	return append(b, buf[:]...)
}

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return id.AppendText(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler for the canonical form.
func (id *ID) UnmarshalText(b []byte) error {
	parsed, ok := parseID(b)
	if !ok {
		return fmt.Errorf("id %q: not a UUID", b)
	}
	*id = parsed
	return nil
}

// ParseID parses the canonical form of an ID.
func ParseID(s string) (ID, error) {
	id, ok := parseID(s)
	if !ok {
		return ID{}, fmt.Errorf("id %q: not a UUID", s)
	}
	return id, nil
}

// parseID parses the canonical form of an ID without allocating: the worker reads one
// for each plan of a batch (DecodePlansJSON).
func parseID[S string | []byte](s S) (ID, bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return ID{}, false
	}
	var h [32]byte
	copy(h[0:8], s[0:8])
	copy(h[8:12], s[9:13])
	copy(h[12:16], s[14:18])
	copy(h[16:20], s[19:23])
	copy(h[20:], s[24:])
	var id ID
	if _, err := hex.Decode(id[:], h[:]); err != nil {
		return ID{}, false
	}
	return id, true
}

// Money is an amount in cents. Prices are exact: no float ever holds one.
type Money int64

// ParseMoney parses a decimal amount with at most two decimals, such as "20", "20.5"
// or "20.00". More decimals, signs other than a leading minus, exponents and
// non-numbers are errors, never rounded.
func ParseMoney(s string) (Money, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	neg := strings.HasPrefix(whole, "-")
	if neg {
		whole = whole[1:]
	}
	// The errors quote a copy of s, so that s does not escape: a caller's string(b) then
	// needs no allocation (the worker parses two prices for each plan of a batch).
	if whole == "" || !allDigits(whole) || (hasDot && (len(frac) == 0 || len(frac) > 2 || !allDigits(frac))) {
		return 0, fmt.Errorf("not a price with at most two decimals: %q", strings.Clone(s))
	}
	units, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || units > (1<<62)/100 {
		return 0, fmt.Errorf("price out of range: %q", strings.Clone(s))
	}
	cents := units * 100
	if hasDot {
		f, _ := strconv.ParseInt(frac, 10, 64)
		if len(frac) == 1 {
			f *= 10
		}
		cents += f
	}
	if neg {
		cents = -cents
	}
	return Money(cents), nil
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String formats the amount with two decimals: "20.00".
func (m Money) String() string { return string(m.AppendText(nil)) }

// AppendText appends the amount with two decimals, a valid JSON number.
func (m Money) AppendText(b []byte) []byte {
	v := uint64(m)
	if m < 0 {
		b = append(b, '-')
		v = -v // two's complement: right for math.MinInt64 too
	}
	b = strconv.AppendUint(b, v/100, 10)
	b = append(b, '.', byte('0'+v%100/10), byte('0'+v%10))
	return b
}

// MarshalJSON writes the amount as a JSON number with two decimals.
func (m Money) MarshalJSON() ([]byte, error) { return m.AppendText(nil), nil }

// UnmarshalJSON reads an amount written by MarshalJSON.
func (m *Money) UnmarshalJSON(b []byte) error {
	v, err := ParseMoney(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
