package provider

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"boxoffice/catalog"
	"boxoffice/ingest"
)

// Limits that keep a hostile document from exhausting memory, and the number of skip
// reasons kept for the log.
const (
	maxAttrLen     = 4 << 10   // bytes in an attribute the parser reads; more skips the plan
	maxZones       = 10_000    // zones in one plan; more skips the plan
	maxTokenBytes  = 256 << 10 // bytes in one token (a tag with its attributes, a text run); more is malformed
	maxDepth       = 64        // open elements; deeper is malformed
	maxSkipReasons = 20        // reasons kept in Stats.SkipReasons
	readBufferSize = 32 << 10  // bytes read from the source at a time
)

// timeLayout is the provider's wall-clock time: no zone, read as UTC.
const timeLayout = "2006-01-02T15:04:05"

// Stats says what Parse made of a document.
type Stats struct {
	Format      string   // the root element: "planList", or the legacy "eventList"
	Parsed      int      // plans emitted
	Skipped     int      // plans skipped for bad data
	SkipReasons []string // the first 20 reasons: `plan 444/1642: plan_start_date: parsing time "2021-09-31T20:00:00": day out of range`
}

// format holds the names that differ between the current and the legacy document.
type format struct {
	root, basePlan, plan string // elements
	basePlanID, planID   string // attributes
	startsAt, endsAt     string
}

var formats = []format{
	{root: "planList", basePlan: "base_plan", plan: "plan", basePlanID: "base_plan_id", planID: "plan_id", startsAt: "plan_start_date", endsAt: "plan_end_date"},
	{root: "eventList", basePlan: "base_event", plan: "event", basePlanID: "base_event_id", planID: "event_id", startsAt: "event_start_date", endsAt: "event_end_date"},
}

// The depths, counted from 1 at the root, of the elements that Parse reads.
const (
	depthRoot = 1 + iota
	depthOutput
	depthBasePlan
	depthPlan
	depthZone
)

// Parse reads one provider document from r and calls emit with every valid plan, in
// document order, as soon as the plan's end tag is read. Plans with bad data are
// skipped and counted in Stats; see the package documentation for the rules.
//
// Parse returns an error wrapping ingest.ErrMalformed when the document is not
// well-formed XML or not a plan list; the reader's error, wrapped but not as
// ErrMalformed, when r fails; and emit's error, as is, when emit fails. In every case
// it stops at once, and Stats counts what happened until then. A nil error means that
// the whole document was read, up to r's io.EOF.
//
// providerName is the first part of every plan's ID and its Provider field. Parse
// leaves Revision, EverOnline and Version zero.
func Parse(r io.Reader, providerName string, emit func(catalog.Plan) error) (Stats, error) {
	return parseXML(r, providerName, emit, formats)
}

// parseXML is Parse accepting only the formats of roots.
func parseXML(r io.Reader, providerName string, emit func(catalog.Plan) error, roots []format) (Stats, error) {
	p := parser{
		sc:      newScanner(r),
		roots:   roots,
		builder: builder{provider: providerName, emit: emit},
	}
	err := p.run()
	return p.stats, err
}

// parser is the state of one Parse call.
type parser struct {
	sc    *scanner
	roots []format // the formats whose root elements the document may have

	open     []string // open elements as written, root first, at most maxDepth
	known    int      // depth of the deepest open element that Parse reads; the rest are ignored
	rootDone bool     // the root element was closed

	builder
}

// builder turns the attributes of base plans, plans and zones into plans, by the
// rules of the package documentation, whatever the syntax they were read from: the
// XML parser and the JSON one share it.
type builder struct {
	provider string
	emit     func(catalog.Plan) error
	stats    Stats

	f *format // the document's names, known once the root was read

	base    basePlan
	plan    catalog.Plan   // the plan being read, without its zones
	zones   []catalog.Zone // the zones read so far, reused from plan to plan
	planErr error          // why the plan being read will be skipped, or nil
}

// basePlan holds the attributes of the base plan being read.
type basePlan struct {
	id, title, organizer string
	sellMode             catalog.SellMode
	err                  error // why each of its plans will be skipped, or nil
}

func (p *parser) run() error {
	for {
		kind, err := p.sc.next()
		if err != nil {
			return p.stop(err)
		}
		switch kind {
		case tokenStart:
			err = p.startElement(p.sc.name, p.sc.attrs)
		case tokenEnd:
			err = p.endElement(p.sc.name)
		case tokenText:
			if len(p.open) == 0 && !isSpace(p.sc.text, p.f == nil) {
				err = p.malformed("text outside the root element")
			}
		}
		if err != nil {
			return err
		}
	}
}

// stop turns the scanner's error into Parse's: nil at the end of a complete document.
func (p *parser) stop(err error) error {
	var se *scanError
	switch {
	case errors.Is(err, errTokenTooLong):
		return p.malformed(fmt.Sprintf("token longer than %d bytes", maxTokenBytes))
	case errors.As(err, &se):
		return fmt.Errorf("%w: line %d: %s", ingest.ErrMalformed, se.line, se.msg)
	case !errors.Is(err, io.EOF):
		return fmt.Errorf("read document: %w", err)
	case p.f == nil:
		return fmt.Errorf("%w: no root element", ingest.ErrMalformed)
	case len(p.open) > 0:
		return p.malformed(fmt.Sprintf("unexpected EOF inside <%s>", limited(p.open[len(p.open)-1])))
	}
	return nil
}

func (p *parser) malformed(msg string) error {
	return fmt.Errorf("%w: line %d: %s", ingest.ErrMalformed, p.sc.lineAfter(), msg)
}

func (p *parser) startElement(name string, attrs []attr) error {
	depth := len(p.open) + 1
	switch {
	case depth == depthRoot && p.rootDone:
		return p.malformed(fmt.Sprintf("element <%s> after the root element", limited(name)))
	case depth == depthRoot:
		for i := range p.roots {
			if name == p.roots[i].root {
				p.f = &p.roots[i]
			}
		}
		if p.f == nil {
			return p.malformed(fmt.Sprintf("root element <%s> is not %s", limited(name), rootNames(p.roots)))
		}
		p.stats.Format = p.f.root
	case depth > maxDepth:
		return p.malformed(fmt.Sprintf("elements nested more than %d deep", maxDepth))
	}
	if a, ok := repeatedAttr(attrs); ok {
		return p.malformed(fmt.Sprintf("attribute %s repeated in <%s>", limited(a), limited(name)))
	}
	p.open = append(p.open, name)
	if p.known != depth-1 {
		return nil
	}
	switch {
	case depth == depthRoot:
	case depth == depthOutput && name == "output":
	case depth == depthBasePlan && name == p.f.basePlan:
		p.startBasePlan(attrs)
	case depth == depthPlan && name == p.f.plan:
		p.startPlan(attrs)
	case depth == depthZone && name == "zone":
		p.addZone(attrs)
	default:
		return nil // unknown: ignored with everything inside it
	}
	p.known = depth
	return nil
}

func (p *parser) endElement(name string) error {
	if len(p.open) == 0 {
		return p.malformed(fmt.Sprintf("unexpected end element </%s>", limited(name)))
	}
	depth := len(p.open)
	if top := p.open[depth-1]; top != name {
		return p.malformed(fmt.Sprintf("element <%s> closed by </%s>", limited(top), limited(name)))
	}
	p.open = p.open[:depth-1]
	if p.known != depth {
		return nil
	}
	p.known = depth - 1
	switch depth {
	case depthRoot:
		p.rootDone = true
	case depthPlan:
		return p.endPlan()
	}
	return nil
}

func (p *builder) startBasePlan(attrs []attr) {
	b := basePlan{}
	var err error
	for _, a := range attrs {
		if len(a.value) == 0 {
			continue // an empty attribute counts as absent
		}
		switch a.name {
		case p.f.basePlanID:
			b.id, err = readAttr(a, err)
		case "title":
			b.title, err = readAttr(a, err)
		case "organizer_company_id":
			b.organizer, err = readAttr(a, err)
		case "sell_mode":
			switch catalog.SellMode(a.value) {
			case catalog.Online:
				b.sellMode = catalog.Online
			case catalog.Offline:
				b.sellMode = catalog.Offline
			default:
				err = firstErr(err, "sell_mode: unknown value %q", limited(string(a.value)))
			}
		}
	}
	switch {
	case err != nil:
	case b.id == "":
		err = missing(p.f.basePlanID)
	case b.sellMode == "":
		err = missing("sell_mode")
	case b.title == "":
		err = missing("title")
	}
	b.err = err
	p.base = b
}

func (p *builder) startPlan(attrs []attr) {
	p.plan = catalog.Plan{
		Provider:           p.provider,
		BasePlanID:         p.base.id,
		Title:              p.base.title,
		OrganizerCompanyID: p.base.organizer,
		SellMode:           p.base.sellMode,
	}
	p.zones = p.zones[:0]
	err := p.base.err
	for _, a := range attrs {
		if len(a.value) == 0 {
			continue // an empty attribute counts as absent
		}
		switch a.name {
		case p.f.planID:
			p.plan.PlanID, err = readAttr(a, err)
		case p.f.startsAt:
			p.plan.StartsAt, err = timeAttr(a, err)
		case p.f.endsAt:
			p.plan.EndsAt, err = timeAttr(a, err)
		case "sell_from":
			p.plan.SellFrom, err = timeAttr(a, err)
		case "sell_to":
			p.plan.SellTo, err = timeAttr(a, err)
		case "sold_out":
			p.plan.SoldOut, err = boolAttr(a, err)
		}
	}
	switch {
	case err != nil:
	case p.plan.PlanID == "":
		err = missing(p.f.planID)
	case p.plan.StartsAt.IsZero():
		err = missing(p.f.startsAt)
	case p.plan.EndsAt.IsZero():
		err = missing(p.f.endsAt)
	}
	p.planErr = err
}

func (p *builder) addZone(attrs []attr) {
	if p.planErr != nil {
		return
	}
	if len(p.zones) == maxZones {
		p.planErr = fmt.Errorf("more than %d zones", maxZones)
		return
	}
	var (
		z                  catalog.Zone
		err                error
		hasPrice, hasCapac bool
	)
	for _, a := range attrs {
		if len(a.value) == 0 {
			continue // an empty attribute counts as absent
		}
		switch a.name {
		case "zone_id":
			z.ZoneID, err = readAttr(a, err)
		case "name":
			z.Name, err = readAttr(a, err)
		case "numbered":
			z.Numbered, err = boolAttr(a, err)
		case "capacity":
			hasCapac = true
			z.Capacity, err = capacityAttr(a, err)
		case "price":
			hasPrice = true
			z.Price, err = priceAttr(a, err)
		}
	}
	switch {
	case err != nil:
	case z.ZoneID == "":
		err = missing("zone_id")
	case !hasCapac:
		err = missing("capacity")
	case !hasPrice:
		err = missing("price")
	}
	if err != nil {
		if z.ZoneID != "" {
			p.planErr = fmt.Errorf("zone %s: %w", z.ZoneID, err)
		} else {
			p.planErr = fmt.Errorf("zone #%d: %w", len(p.zones)+1, err)
		}
		return
	}
	p.zones = append(p.zones, z)
}

// endPlan emits the plan just read, or counts it as skipped.
func (p *builder) endPlan() error {
	if p.planErr == nil {
		// A fresh slice: emit's caller may keep the plan while p.zones is reused.
		p.plan.Zones = make([]catalog.Zone, len(p.zones))
		copy(p.plan.Zones, p.zones)
		p.plan.ID = catalog.NewID(p.provider, p.plan.BasePlanID, p.plan.PlanID)
		p.planErr = p.plan.Validate()
	}
	if p.planErr != nil {
		p.stats.Skipped++
		if len(p.stats.SkipReasons) < maxSkipReasons {
			p.stats.SkipReasons = append(p.stats.SkipReasons,
				fmt.Sprintf("plan %s/%s: %v", orUnknown(p.plan.BasePlanID), orUnknown(p.plan.PlanID), p.planErr))
		}
		return nil
	}
	if err := p.emit(p.plan); err != nil {
		return err
	}
	p.stats.Parsed++
	return nil
}

// The attribute readers below take the error so far and keep the first one, so that
// a plan's reason is its first bad attribute in document order. They return the zero
// value of a bad attribute.

func readAttr(a attr, err error) (string, error) {
	if len(a.value) > maxAttrLen {
		return "", firstErr(err, "%s: longer than %d bytes", a.name, maxAttrLen)
	}
	return string(a.value), err
}

func timeAttr(a attr, err error) (time.Time, error) {
	if len(a.value) > maxAttrLen {
		return time.Time{}, firstErr(err, "%s: longer than %d bytes", a.name, maxAttrLen)
	}
	t, perr := parseTimeBytes(a.value)
	if perr != nil {
		return time.Time{}, firstErr(err, "%s: %w", a.name, perr)
	}
	return t, err
}

func boolAttr(a attr, err error) (bool, error) {
	switch string(a.value) {
	case "true", "1":
		return true, err
	case "false", "0":
		return false, err
	}
	return false, firstErr(err, "%s: not a boolean: %q", a.name, limited(string(a.value)))
}

func capacityAttr(a attr, err error) (int64, error) {
	n, ok := smallUint(a.value)
	if !ok {
		var perr error
		if n, perr = strconv.ParseInt(string(a.value), 10, 64); perr != nil {
			return 0, firstErr(err, "%s: not an integer: %q", a.name, limited(string(a.value)))
		}
	}
	if n < 0 {
		return 0, firstErr(err, "%s: negative: %d", a.name, n)
	}
	return n, err
}

func priceAttr(a attr, err error) (catalog.Money, error) {
	if len(a.value) > maxAttrLen {
		return 0, firstErr(err, "%s: longer than %d bytes", a.name, maxAttrLen)
	}
	if m, ok := smallPrice(a.value); ok {
		return m, err
	}
	m, perr := catalog.ParseMoney(string(a.value))
	switch {
	case perr != nil:
		return 0, firstErr(err, "%s: %w", a.name, perr)
	case m < 0:
		return 0, firstErr(err, "%s: negative: %s", a.name, m)
	}
	return m, err
}

// smallUint parses 1 to 18 ASCII digits, which always fit an int64: the common case,
// without the allocation of a string for strconv.
func smallUint(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// smallPrice parses the common price, 1 to 15 digits with an optional dot and one or
// two decimals, as catalog.ParseMoney does; anything else is left to ParseMoney.
func smallPrice(b []byte) (catalog.Money, bool) {
	whole, frac := b, []byte(nil)
	if i := bytes.IndexByte(b, '.'); i >= 0 {
		whole, frac = b[:i], b[i+1:]
		if len(frac) == 0 || len(frac) > 2 {
			return 0, false
		}
	}
	if len(whole) > 15 {
		return 0, false
	}
	units, ok := smallUint(whole)
	if !ok {
		return 0, false
	}
	cents := units * 100
	if frac != nil {
		f, ok := smallUint(frac)
		if !ok {
			return 0, false
		}
		if len(frac) == 1 {
			f *= 10
		}
		cents += f
	}
	return catalog.Money(cents), true
}

// firstErr returns err, or a new error when err is nil.
func firstErr(err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	return fmt.Errorf(format, args...)
}

func missing(attr string) error { return errors.New("missing " + attr) }

// limited cuts a value that goes into an error message to a readable length.
func limited(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func orUnknown(id string) string {
	if id == "" {
		return "?"
	}
	return id
}

// parseTimeBytes is parseTime on bytes; only an unusual time costs a string.
func parseTimeBytes(b []byte) (time.Time, error) {
	if t, ok := fastTime(b); ok {
		return t, nil
	}
	return time.Parse(timeLayout, string(b))
}

// parseTime reads the provider's wall-clock format as UTC. The common case is parsed
// by hand, which is several times faster than time.Parse; anything else, including
// every error, goes through time.Parse, so results and messages are time.Parse's.
func parseTime(s string) (time.Time, error) {
	if t, ok := fastTime([]byte(s)); ok {
		return t, nil
	}
	return time.Parse(timeLayout, s)
}

// fastTime parses the common form of timeLayout by hand; ok is false for anything
// else, valid or not, which time.Parse then reads.
func fastTime(s []byte) (time.Time, bool) {
	if len(s) != len(timeLayout) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := atoi(s[0:4])
	month, ok2 := atoi(s[5:7])
	day, ok3 := atoi(s[8:10])
	hour, ok4 := atoi(s[11:13])
	minute, ok5 := atoi(s[14:16])
	sec, ok6 := atoi(s[17:19])
	if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 &&
		month >= 1 && month <= 12 && day >= 1 && day <= daysIn(month, year) &&
		hour <= 23 && minute <= 59 && sec <= 59 {
		return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC), true
	}
	return time.Time{}, false
}

// atoi parses a short run of ASCII digits.
func atoi(s []byte) (int, bool) {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// rootNames lists the root elements of fs for a message: "<planList> or <eventList>".
func rootNames(fs []format) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = "<" + f.root + ">"
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// repeatedAttr returns an attribute name that appears twice, which XML forbids.
func repeatedAttr(attrs []attr) (string, bool) {
	if len(attrs) <= 16 {
		for i := 1; i < len(attrs); i++ {
			for j := range i {
				if attrs[i].name == attrs[j].name {
					return attrs[i].name, true
				}
			}
		}
		return "", false
	}
	seen := make(map[string]struct{}, len(attrs))
	for _, a := range attrs {
		if _, ok := seen[a.name]; ok {
			return a.name, true
		}
		seen[a.name] = struct{}{}
	}
	return "", false
}

// isSpace reports whether text is XML white space; bom allows a leading byte order
// mark, which only the start of a document may have.
func isSpace(text []byte, bom bool) bool {
	if bom && len(text) >= 3 && text[0] == 0xEF && text[1] == 0xBB && text[2] == 0xBF {
		text = text[3:]
	}
	for _, c := range text {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}
