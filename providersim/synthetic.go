package providersim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"iter"
	"math"
	"slices"
	"strconv"
	"time"

	"boxoffice/catalog"
	"boxoffice/provider"
)

// generatorVersion is part of every synthetic ETag. Bump it whenever a change to the
// generator changes the bytes served for a given Config and call, so that a client
// holding an ETag from an older binary does not get a wrong 304.
const generatorVersion = 1

// Shape of the synthetic catalog.
const (
	baseIDOffset   = 100_000 // base plan b has id 100000+b, clear of the samples' ids
	planIDOffset   = 1_000   // plan ids are 1000 and up, reused across base plans
	planIDRange    = 100     // plan ids of base plans with few plans are 1000 to 1099
	startDays      = 730     // plans start on one of the 730 days from 2021-01-01
	noOrganizerPct = 15      // percent of base plans without organizer_company_id
	dupZonePct     = 5       // percent of zones that repeat the previous zone's id
	soldOutZonePct = 10      // percent of zones with capacity 0
	maxCapacity    = 500
	minPrice       = 500   // cents
	maxPrice       = 15000 // cents
	priceStep      = 50    // cents
	dateLen        = len("2006-01-02T15:04:05")
	days1970To2021 = 18628 // days from 1970-01-01 to 2021-01-01
)

// Salts that make the hashes of different properties independent.
const (
	saltVanish      uint64 = 0x8a5cd789635d2dff
	saltInvalid     uint64 = 0x121fd2155c472f96
	saltBadMonth    uint64 = 0x3a6a0c5ab1d3b8a3
	saltStart       uint64 = 0xd1b54a32d192ed03
	saltTimePhase   uint64 = 0xaef17502108ef2d9
	saltTime        uint64 = 0x2b8c6f0b4c7e1a45
	saltPricePhase  uint64 = 0x5851f42d4c957f2d
	saltZone        uint64 = 0x94d049bb133111eb
	saltZonePrice   uint64 = 0xbf58476d1ce4e5b9
	saltTitle       uint64 = 0x6c62272e07bb0142
	saltOrganizer   uint64 = 0xcbf29ce484222325
	saltOffline     uint64 = 0x100000001b3c0ffe
	saltFlipPhase   uint64 = 0x9fb21c651e98df25
	saltFault       uint64 = 0x4f1bbcdcbfa53e0b
	saltErrorStatus uint64 = 0x7a1f3c5e9b2d4f61
	keyBase         uint64 = 0x9e3779b97f4a7c15
	keyPlan         uint64 = 0xc2b2ae3d27d4eb4f
	keyZone         uint64 = 0x165667b19e3779f9
	keyCall         uint64 = 0x27d4eb2f165667c5
)

// PlanStatus says how a plan of the synthetic catalog appears in one call's document.
type PlanStatus int

// The ways a plan appears in a document.
const (
	// Absent: the plan is not in the document (it vanished for this call).
	Absent PlanStatus = iota
	// Valid: the plan is in the document with valid data; a parser emits it.
	Valid
	// BadDates: the plan is in the document with start, end and sell_to on a day that
	// does not exist, such as 2021-09-31 or 2021-02-29; a parser skips it.
	BadDates
)

// String returns "absent", "valid" or "bad dates".
func (s PlanStatus) String() string {
	switch s {
	case Absent:
		return "absent"
	case Valid:
		return "valid"
	case BadDates:
		return "bad dates"
	}
	return "PlanStatus(" + strconv.Itoa(int(s)) + ")"
}

// Catalog is the synthetic provider catalog: Config.BasePlans base plans of
// Config.Plans plans of Config.Zones zones, generated from Config.Seed. What it serves
// at a call is a pure function of (seed, base plan, plan, call number), so a test can
// ask it what any call served without having seen the response. Call numbers start at 1.
//
// Identity: base plan b (0-based) has id 100000+b. Plan p of base plan b has id
// 1000 + (7b+p) mod max(Plans, 100): unique inside its base plan, reused across base
// plans like the real provider's 1642. Zone ids repeat inside a plan now and then
// (a numbered and an unnumbered part of one area, like the samples' 186). Titles and
// zone names have accents and, now and then, characters the XML must escape
// (Café & Co). Plans start between 2021-01-01 and 2023-01-01.
//
// Churn from call to call, each rate a fraction of Config:
//
//   - VanishRate: in each call, that fraction of plans is absent, chosen afresh per
//     call, so a vanished plan usually comes back on a later call. A base plan whose
//     plans are all absent is absent.
//   - PriceChangeRate: that fraction of plans gets new zone prices and capacities from
//     one call to the next. Each plan changes every 1/rate calls on average, at its
//     own phase, so the fraction is the same between any two consecutive calls.
//   - TimeChangeRate: the same for start (moved by up to an hour), end (a new
//     duration) and sell_to (10 minutes before the start).
//   - SellModeFlipRate: the same for the sell_mode of base plans; OfflineRate of them
//     start offline.
//   - InvalidDateRate: in each call, that fraction of plans is served with bad dates
//     (BadDates), chosen afresh per call.
//
// With all five churn rates at 0 every call serves the same document, and a repeated
// conditional request gets 304. A Catalog is immutable and safe for concurrent use.
type Catalog struct {
	cfg     Config
	seedKey uint64

	// Rates as 32-bit fixed-point fractions: 1<<32 is a rate of 1.
	vanish, invalid, priceRate, timeRate, flipRate, offline uint64

	numbers   []string // "0" to "999": zone ids, capacities, organizer ids
	prices    []string // "5.00" to "150.00" in steps of 0.50
	titles    []string
	zoneNames []string
}

// NewCatalog returns the synthetic catalog that cfg describes; only its Seed, size and
// churn fields matter. It panics if cfg is invalid: call cfg.Validate first.
func NewCatalog(cfg Config) *Catalog {
	if err := cfg.Validate(); err != nil {
		panic("providersim: invalid config: " + err.Error())
	}
	c := &Catalog{
		cfg:       cfg,
		seedKey:   mix(cfg.Seed ^ keyBase),
		vanish:    fixed(cfg.VanishRate),
		invalid:   fixed(cfg.InvalidDateRate),
		priceRate: fixed(cfg.PriceChangeRate),
		timeRate:  fixed(cfg.TimeChangeRate),
		flipRate:  fixed(cfg.SellModeFlipRate),
		offline:   fixed(cfg.OfflineRate),
		zoneNames: []string{
			"Platea", "Grada 2", "A28", "A42", "Amfiteatre", "Anfiteatro", "Palco",
			"Pista", "General", "VIP", "Tribuna", "Zona Niños & Familias",
		},
	}
	for i := range 1000 {
		c.numbers = append(c.numbers, strconv.Itoa(i))
	}
	for cents := minPrice; cents <= maxPrice; cents += priceStep {
		c.prices = append(c.prices, catalog.Money(cents).String())
	}
	artists := []string{
		"Camela", "Los Morancos", "Pantomima Full", "Café & Co", "Niña Pastori",
		"Rosalía", `Orquesta "La Única"`, "El Último de la Fila", "Mägo de Oz", "Estopa",
		"Vetusta Morla", "La Oreja de Van Gogh", "Joaquín Sabina", "Dúo Dinámico",
		"Love of Lesbian", "Fangoria", "Siniestro Total", "Zahara", "Sala <Jazz> L'Auditori",
		"Tributo a Juanito Valderrama",
	}
	formats := []string{
		" en concierto", " en directo", ": gira 2021", " — acústico", "",
		" (sesión doble)", " en el Teatro Real", ": 25 años",
	}
	for _, a := range artists {
		for _, f := range formats {
			c.titles = append(c.titles, a+f)
		}
	}
	return c
}

// fixed returns the 32-bit fixed-point form of a rate between 0 and 1.
func fixed(rate float64) uint64 {
	return uint64(math.Round(min(max(rate, 0), 1) * (1 << 32)))
}

// mix is SplitMix64's finaliser: a bijection whose output bits all depend on every
// input bit.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Keys identify a base plan, a plan and a zone; derive and deriveAt hash a key with a
// salt (and a call or epoch number) into the bits of one property. below and pct
// compare the top 32 bits of a hash with a fixed-point rate or a percentage: true with
// that probability. epoch counts the changes of a property by call: it steps up with
// probability rate from one call to the next, at the phase of each key.
func (c *Catalog) baseKey(b int) uint64      { return mix(c.seedKey ^ mix(uint64(b)+keyBase)) }
func planKey(bk uint64, p int) uint64        { return mix(bk ^ mix(uint64(p)+keyPlan)) }
func zoneKey(pk uint64, z int) uint64        { return mix(pk ^ mix(uint64(z)+keyZone)) }
func derive(key, salt uint64) uint64         { return mix(key ^ salt) }
func deriveAt(key, salt, n uint64) uint64    { return mix(derive(key, salt) + n*keyCall) }
func below(h, rate uint64) bool              { return h>>32 < rate }
func pct(h uint64, percent uint64) bool      { return h>>32 < percent<<32/100 }
func phase(key, salt uint64) uint64          { return derive(key, salt) >> 32 }
func callOf(call int) uint64                 { return uint64(max(call, 0)) }
func epoch(call int, rate, ph uint64) uint64 { return (callOf(call)*rate + ph) >> 32 }

// basePlanState is what a base plan looks like at one call.
type basePlanState struct {
	b         int
	key       uint64
	online    bool
	title     string
	organizer string // "" when the attribute is left out
}

func (c *Catalog) basePlanAt(call, b int) basePlanState {
	bk := c.baseKey(b)
	s := basePlanState{b: b, key: bk, title: c.titles[derive(bk, saltTitle)%uint64(len(c.titles))]}
	if h := derive(bk, saltOrganizer); !pct(h, noOrganizerPct) {
		s.organizer = c.numbers[1+h%50]
	}
	offline := below(derive(bk, saltOffline), c.offline)
	flips := epoch(call, c.flipRate, phase(bk, saltFlipPhase))
	s.online = offline == (flips%2 == 1)
	return s
}

func (s basePlanState) sellMode() catalog.SellMode {
	if s.online {
		return catalog.Online
	}
	return catalog.Offline
}

// planState is what a plan looks like at one call, before formatting. Times are in
// minutes from 2021-01-01T00:00.
type planState struct {
	p          int
	key        uint64
	status     PlanStatus
	id         int64
	start, end int64
	sellFrom   int64
	sellTo     int64
	priceEpoch uint64

	// Where the formatted id and dates are in the generator's arena.
	idOff, idEnd int
}

func (c *Catalog) planAt(call int, bs *basePlanState, p int) planState {
	pk := planKey(bs.key, p)
	s := planState{p: p, key: pk, id: int64(planIDOffset + (7*bs.b+p)%max(c.cfg.Plans, planIDRange))}
	if below(deriveAt(pk, saltVanish, callOf(call)), c.vanish) {
		return s // Absent
	}
	s.status = Valid
	if below(deriveAt(pk, saltInvalid, callOf(call)), c.invalid) {
		s.status = BadDates
	}
	h := derive(pk, saltStart)
	day := int64(h % startDays)
	start := day*1440 + 10*60 + int64(h>>16%27)*30 // 10:00 to 23:00
	s.sellFrom = (day - 30 - int64(h>>32%150)) * 1440
	ht := deriveAt(pk, saltTime, epoch(call, c.timeRate, phase(pk, saltTimePhase)))
	s.start = start + (int64(ht%5)-2)*30
	s.end = s.start + 30 + int64(ht>>8%22)*10
	s.sellTo = s.start - 10
	s.priceEpoch = epoch(call, c.priceRate, phase(pk, saltPricePhase))
	return s
}

// zoneState is what a zone looks like at one call.
type zoneState struct {
	id       int
	name     string
	numbered bool
	capacity int
	price    int // index into Catalog.prices
}

// zonesAt appends the zones of a plan to dst and reports whether the plan is sold out:
// it has zones and none has capacity left.
func (c *Catalog) zonesAt(dst []zoneState, s *planState) ([]zoneState, bool) {
	soldOut := c.cfg.Zones > 0
	for z := range c.cfg.Zones {
		zk := zoneKey(s.key, z)
		h := derive(zk, saltZone)
		var zs zoneState
		if z > 0 && pct(h, dupZonePct) {
			prev := dst[len(dst)-1]
			zs.id, zs.name, zs.numbered = prev.id, prev.name, !prev.numbered
		} else {
			zs.id = 1 + int(h%999)
			zs.name = c.zoneNames[h>>12%uint64(len(c.zoneNames))]
			zs.numbered = h&(1<<20) != 0
		}
		// Price, capacity and whether it is 0 come from separate bits of one hash.
		hp := deriveAt(zk, saltZonePrice, s.priceEpoch)
		zs.price = int(hp >> 32 % uint64(len(c.prices)))
		if hp&0xffff >= soldOutZonePct<<16/100 {
			zs.capacity = 1 + int(hp>>16&0xffff%maxCapacity)
			soldOut = false
		}
		dst = append(dst, zs)
	}
	return dst, soldOut
}

// generator formats base plans into reusable memory: a base plan costs one string
// allocation, holding its id and its plans' ids and dates, whatever its size.
type generator struct {
	cat   *Catalog
	bp    provider.BasePlanXML
	plans []planState
	zones []zoneState
	arena []byte
}

// fill sets g.bp to base plan b as served at call and reports whether it is served at
// all. g.bp stays valid until the next fill.
func (g *generator) fill(call, b int) bool {
	c := g.cat
	bs := c.basePlanAt(call, b)
	g.plans = g.plans[:0]
	for p := range c.cfg.Plans {
		if s := c.planAt(call, &bs, p); s.status != Absent {
			g.plans = append(g.plans, s)
		}
	}
	if len(g.plans) == 0 {
		return false
	}

	a := strconv.AppendInt(g.arena[:0], int64(baseIDOffset+b), 10)
	idEnd := len(a)
	for i := range g.plans {
		s := &g.plans[i]
		s.idOff = len(a)
		a = strconv.AppendInt(a, s.id, 10)
		s.idEnd = len(a)
		a = appendPlanDates(a, s)
	}
	g.arena = a
	str := string(a)

	bp := &g.bp
	bp.ID = str[:idEnd]
	bp.SellMode = string(bs.sellMode())
	bp.OrganizerCompanyID = bs.organizer
	bp.Title = bs.title
	if cap(bp.Plans) < len(g.plans) {
		bp.Plans = slices.Grow(bp.Plans[:cap(bp.Plans)], len(g.plans)-cap(bp.Plans))
	}
	bp.Plans = bp.Plans[:len(g.plans)]
	for i := range g.plans {
		s := &g.plans[i]
		pl := &bp.Plans[i]
		d := s.idEnd
		pl.ID = str[s.idOff:s.idEnd]
		pl.Start = str[d : d+dateLen]
		pl.End = str[d+dateLen : d+2*dateLen]
		pl.SellFrom = str[d+2*dateLen : d+3*dateLen]
		pl.SellTo = str[d+3*dateLen : d+4*dateLen]
		g.zones, pl.SoldOut = c.zonesAt(g.zones[:0], s)
		pl.Zones = pl.Zones[:0]
		for _, z := range g.zones {
			pl.Zones = append(pl.Zones, provider.ZoneXML{
				ID:       c.numbers[z.id],
				Capacity: c.numbers[z.capacity],
				Price:    c.prices[z.price],
				Name:     z.name,
				Numbered: z.numbered,
			})
		}
	}
	return true
}

// appendPlanDates appends the start, end, sell_from and sell_to of a plan, each
// dateLen bytes long. A plan with BadDates gets its start, end and sell_to on a day
// that does not exist in the year of its start, at their own times of day.
func appendPlanDates(a []byte, s *planState) []byte {
	if s.status != BadDates {
		a = appendDateTime(a, s.start)
		a = appendDateTime(a, s.end)
		a = appendDateTime(a, s.sellFrom)
		return appendDateTime(a, s.sellTo)
	}
	y, m, d := badDay(s)
	a = appendCivil(a, y, m, d, s.start)
	a = appendCivil(a, y, m, d, s.end)
	a = appendDateTime(a, s.sellFrom)
	return appendCivil(a, y, m, d, s.sellTo)
}

// badDay returns a day that does not exist: the 31st of a 30-day month, or February
// 29th of a common year (30th of a leap year).
func badDay(s *planState) (y, m, d int) {
	y, _, _ = civil(s.start)
	months := [...]int{2, 4, 6, 9, 11}
	m = months[derive(s.key, saltBadMonth)%uint64(len(months))]
	switch {
	case m != 2:
		return y, m, 31
	case y%4 == 0 && (y%100 != 0 || y%400 == 0):
		return y, m, 30
	}
	return y, m, 29
}

// civil returns the date of a time in minutes from 2021-01-01T00:00, with Howard
// Hinnant's days-to-civil algorithm.
func civil(minutes int64) (y, m, d int) {
	z := floorDiv(minutes, 1440) + days1970To2021 + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	m = int(mp + 3)
	if m > 12 {
		m -= 12
	}
	y = int(yoe + era*400)
	if m <= 2 {
		y++
	}
	return y, m, d
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// appendDateTime appends a time in minutes from 2021-01-01T00:00 as the provider
// writes it: 2021-06-30T21:00:00.
func appendDateTime(a []byte, minutes int64) []byte {
	y, m, d := civil(minutes)
	return appendCivil(a, y, m, d, minutes)
}

// appendCivil appends the date y-m-d with the time of day of minutes.
func appendCivil(a []byte, y, m, d int, minutes int64) []byte {
	tod := int(minutes - floorDiv(minutes, 1440)*1440)
	hh, mm := tod/60, tod%60
	return append(a,
		byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-',
		byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+hh/10), byte('0'+hh%10), ':',
		byte('0'+mm/10), byte('0'+mm%10), ':', '0', '0')
}

func timeOf(minutes int64) time.Time {
	return time.Unix((days1970To2021*1440+minutes)*60, 0).UTC()
}

// etag returns the strong ETag of the document served at call: a hash of everything
// that decides its bytes. Without churn every call serves the same document and so
// gets the same ETag.
func (c *Catalog) etag(call int) string {
	cfg := c.cfg
	key := fmt.Sprintf("synthetic/v%d seed=%d base-plans=%d plans=%d zones=%d offline=%d",
		generatorVersion, cfg.Seed, cfg.BasePlans, cfg.Plans, cfg.Zones, c.offline)
	if c.vanish|c.invalid|c.priceRate|c.timeRate|c.flipRate != 0 {
		key += fmt.Sprintf(" vanish=%d invalid=%d price=%d time=%d flip=%d call=%d",
			c.vanish, c.invalid, c.priceRate, c.timeRate, c.flipRate, call)
	}
	sum := sha256.Sum256([]byte(key))
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// BasePlan returns base plan b (0-based) as the document of call serves it, with wire
// values, and false when the call leaves it out because all its plans vanished.
func (c *Catalog) BasePlan(call, b int) (provider.BasePlanXML, bool) {
	g := &generator{cat: c}
	ok := g.fill(call, b)
	return g.bp, ok
}

// Plan returns plan p of base plan b (both 0-based) as call serves it, in the form a
// correct parser gives, and how it appears in the document. An Absent plan has only
// its identity; a BadDates plan has zero times. providerName goes into Provider and
// ID, as with provider.Parse; Revision, EverOnline and Version are zero.
func (c *Catalog) Plan(call, b, p int, providerName string) (catalog.Plan, PlanStatus) {
	bs := c.basePlanAt(call, b)
	return c.plan(call, &bs, p, providerName)
}

func (c *Catalog) plan(call int, bs *basePlanState, p int, providerName string) (catalog.Plan, PlanStatus) {
	s := c.planAt(call, bs, p)
	baseID := strconv.Itoa(baseIDOffset + bs.b)
	planID := strconv.FormatInt(s.id, 10)
	pl := catalog.Plan{
		ID:         catalog.NewID(providerName, baseID, planID),
		Provider:   providerName,
		BasePlanID: baseID,
		PlanID:     planID,
	}
	if s.status == Absent {
		return pl, Absent
	}
	pl.Title = bs.title
	pl.OrganizerCompanyID = bs.organizer
	pl.SellMode = bs.sellMode()
	if s.status == Valid {
		pl.StartsAt, pl.EndsAt = timeOf(s.start), timeOf(s.end)
		pl.SellFrom, pl.SellTo = timeOf(s.sellFrom), timeOf(s.sellTo)
	}
	zones, soldOut := c.zonesAt(nil, &s)
	pl.SoldOut = soldOut
	pl.Zones = make([]catalog.Zone, 0, len(zones))
	for _, z := range zones {
		pl.Zones = append(pl.Zones, catalog.Zone{
			ZoneID:   c.numbers[z.id],
			Name:     z.name,
			Capacity: int64(z.capacity),
			Price:    catalog.Money(minPrice + z.price*priceStep),
			Numbered: z.numbered,
		})
	}
	return pl, s.status
}

// Plans yields the Valid plans of the document of call, in document order: what a
// correct parser emits from it. See Plan for the fields.
func (c *Catalog) Plans(call int, providerName string) iter.Seq[catalog.Plan] {
	return func(yield func(catalog.Plan) bool) {
		for b := range c.cfg.BasePlans {
			bs := c.basePlanAt(call, b)
			for p := range c.cfg.Plans {
				pl, st := c.plan(call, &bs, p, providerName)
				if st == Valid && !yield(pl) {
					return
				}
			}
		}
	}
}

// Searchable yields, in document order, the plans that a correct ingest makes
// searchable after syncing the documents of calls, in that order: each plan served
// Valid at least once in an online base plan, with the values of its latest Valid
// appearance (SellMode included) and EverOnline set. Only pass the calls whose
// documents were served whole (see Server.Step). It costs len(calls) times Plans.
func (c *Catalog) Searchable(calls []int, providerName string) iter.Seq[catalog.Plan] {
	return func(yield func(catalog.Plan) bool) {
		states := make([]basePlanState, len(calls))
		for b := range c.cfg.BasePlans {
			for i, call := range calls {
				states[i] = c.basePlanAt(call, b)
			}
			for p := range c.cfg.Plans {
				var latest catalog.Plan
				everOnline := false
				for i, call := range calls {
					pl, st := c.plan(call, &states[i], p, providerName)
					if st != Valid {
						continue
					}
					latest = pl
					everOnline = everOnline || pl.SellMode == catalog.Online
				}
				if everOnline {
					latest.EverOnline = true
					if !yield(latest) {
						return
					}
				}
			}
		}
	}
}
