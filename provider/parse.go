package provider

import (
	"encoding/xml"
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
		in:      &byteReader{r: r, buf: make([]byte, readBufferSize)},
		roots:   roots,
		builder: builder{provider: providerName, emit: emit},
	}
	p.dec = xml.NewDecoder(p.in)
	p.dec.Entity = xml.HTMLEntity
	err := p.run()
	return p.stats, err
}

// parser is the state of one Parse call.
type parser struct {
	in    *byteReader
	dec   *xml.Decoder
	roots []format // the formats whose root elements the document may have

	open     []xml.Name // open elements, root first, at most maxDepth
	known    int        // depth of the deepest open element that Parse reads; the rest are ignored
	rootDone bool       // the root element was closed

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
		p.in.allow(maxTokenBytes)
		tok, err := p.dec.RawToken()
		if err != nil {
			return p.stop(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			err = p.startElement(t)
		case xml.EndElement:
			err = p.endElement(t)
		case xml.CharData:
			if len(p.open) == 0 && !isSpace(t, p.f == nil) {
				err = p.malformed("text outside the root element")
			}
		}
		if err != nil {
			return err
		}
	}
}

// stop turns the decoder's error into Parse's: nil at the end of a complete document.
func (p *parser) stop(err error) error {
	var se *xml.SyntaxError
	switch {
	case p.in.failed:
		// The decoder stops at its first error, so this one is the reader's.
		return fmt.Errorf("read document: %w", err)
	case errors.Is(err, errTokenTooLong):
		return p.malformed(fmt.Sprintf("token longer than %d bytes", maxTokenBytes))
	case errors.As(err, &se):
		return fmt.Errorf("%w: line %d: %s", ingest.ErrMalformed, se.Line, se.Msg)
	case !errors.Is(err, io.EOF):
		return p.malformed(err.Error()) // an unsupported XML version or encoding
	case p.f == nil:
		return fmt.Errorf("%w: no root element", ingest.ErrMalformed)
	case len(p.open) > 0:
		return p.malformed(fmt.Sprintf("unexpected EOF inside <%s>", qualified(p.open[len(p.open)-1])))
	}
	return nil
}

func (p *parser) malformed(msg string) error {
	line, _ := p.dec.InputPos()
	return fmt.Errorf("%w: line %d: %s", ingest.ErrMalformed, line, msg)
}

func (p *parser) startElement(t xml.StartElement) error {
	depth := len(p.open) + 1
	switch {
	case depth == depthRoot && p.rootDone:
		return p.malformed(fmt.Sprintf("element <%s> after the root element", qualified(t.Name)))
	case depth == depthRoot:
		for i := range p.roots {
			if t.Name.Space == "" && t.Name.Local == p.roots[i].root {
				p.f = &p.roots[i]
			}
		}
		if p.f == nil {
			return p.malformed(fmt.Sprintf("root element <%s> is not %s", qualified(t.Name), rootNames(p.roots)))
		}
		p.stats.Format = p.f.root
	case depth > maxDepth:
		return p.malformed(fmt.Sprintf("elements nested more than %d deep", maxDepth))
	}
	if name, ok := repeatedAttr(t.Attr); ok {
		return p.malformed(fmt.Sprintf("attribute %s repeated in <%s>", qualified(name), qualified(t.Name)))
	}
	p.open = append(p.open, t.Name)
	if p.known != depth-1 || t.Name.Space != "" {
		return nil
	}
	switch {
	case depth == depthRoot:
	case depth == depthOutput && t.Name.Local == "output":
	case depth == depthBasePlan && t.Name.Local == p.f.basePlan:
		p.startBasePlan(t.Attr)
	case depth == depthPlan && t.Name.Local == p.f.plan:
		p.startPlan(t.Attr)
	case depth == depthZone && t.Name.Local == "zone":
		p.addZone(t.Attr)
	default:
		return nil // unknown: ignored with everything inside it
	}
	p.known = depth
	return nil
}

func (p *parser) endElement(t xml.EndElement) error {
	if len(p.open) == 0 {
		return p.malformed(fmt.Sprintf("unexpected end element </%s>", qualified(t.Name)))
	}
	depth := len(p.open)
	if top := p.open[depth-1]; top != t.Name {
		return p.malformed(fmt.Sprintf("element <%s> closed by </%s>", qualified(top), qualified(t.Name)))
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

func (p *builder) startBasePlan(attrs []xml.Attr) {
	b := basePlan{}
	var err error
	for _, a := range attrs {
		if a.Name.Space != "" || a.Value == "" {
			continue
		}
		switch a.Name.Local {
		case p.f.basePlanID:
			b.id, err = readAttr(a, err)
		case "title":
			b.title, err = readAttr(a, err)
		case "organizer_company_id":
			b.organizer, err = readAttr(a, err)
		case "sell_mode":
			switch catalog.SellMode(a.Value) {
			case catalog.Online:
				b.sellMode = catalog.Online
			case catalog.Offline:
				b.sellMode = catalog.Offline
			default:
				err = firstErr(err, "sell_mode: unknown value %q", limited(a.Value))
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

func (p *builder) startPlan(attrs []xml.Attr) {
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
		if a.Name.Space != "" || a.Value == "" {
			continue
		}
		switch a.Name.Local {
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

func (p *builder) addZone(attrs []xml.Attr) {
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
		if a.Name.Space != "" || a.Value == "" {
			continue
		}
		switch a.Name.Local {
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

func readAttr(a xml.Attr, err error) (string, error) {
	if len(a.Value) > maxAttrLen {
		return "", firstErr(err, "%s: longer than %d bytes", a.Name.Local, maxAttrLen)
	}
	return a.Value, err
}

func timeAttr(a xml.Attr, err error) (time.Time, error) {
	if len(a.Value) > maxAttrLen {
		return time.Time{}, firstErr(err, "%s: longer than %d bytes", a.Name.Local, maxAttrLen)
	}
	t, perr := parseTime(a.Value)
	if perr != nil {
		return time.Time{}, firstErr(err, "%s: %w", a.Name.Local, perr)
	}
	return t, err
}

func boolAttr(a xml.Attr, err error) (bool, error) {
	switch a.Value {
	case "true", "1":
		return true, err
	case "false", "0":
		return false, err
	}
	return false, firstErr(err, "%s: not a boolean: %q", a.Name.Local, limited(a.Value))
}

func capacityAttr(a xml.Attr, err error) (int64, error) {
	n, perr := strconv.ParseInt(a.Value, 10, 64)
	switch {
	case perr != nil:
		return 0, firstErr(err, "%s: not an integer: %q", a.Name.Local, limited(a.Value))
	case n < 0:
		return 0, firstErr(err, "%s: negative: %d", a.Name.Local, n)
	}
	return n, err
}

func priceAttr(a xml.Attr, err error) (catalog.Money, error) {
	if len(a.Value) > maxAttrLen {
		return 0, firstErr(err, "%s: longer than %d bytes", a.Name.Local, maxAttrLen)
	}
	m, perr := catalog.ParseMoney(a.Value)
	switch {
	case perr != nil:
		return 0, firstErr(err, "%s: %w", a.Name.Local, perr)
	case m < 0:
		return 0, firstErr(err, "%s: negative: %s", a.Name.Local, m)
	}
	return m, err
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

// parseTime reads the provider's wall-clock format as UTC. The common case is parsed
// by hand, which is several times faster than time.Parse; anything else, including
// every error, goes through time.Parse, so results and messages are time.Parse's.
func parseTime(s string) (time.Time, error) {
	if len(s) == len(timeLayout) && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' {
		year, ok1 := atoi(s[0:4])
		month, ok2 := atoi(s[5:7])
		day, ok3 := atoi(s[8:10])
		hour, ok4 := atoi(s[11:13])
		minute, ok5 := atoi(s[14:16])
		sec, ok6 := atoi(s[17:19])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 &&
			month >= 1 && month <= 12 && day >= 1 && day <= daysIn(month, year) &&
			hour <= 23 && minute <= 59 && sec <= 59 {
			return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC), nil
		}
	}
	return time.Parse(timeLayout, s)
}

// atoi parses a short run of ASCII digits.
func atoi(s string) (int, bool) {
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
func repeatedAttr(attrs []xml.Attr) (xml.Name, bool) {
	if len(attrs) <= 16 {
		for i := 1; i < len(attrs); i++ {
			for j := range i {
				if attrs[i].Name == attrs[j].Name {
					return attrs[i].Name, true
				}
			}
		}
		return xml.Name{}, false
	}
	seen := make(map[xml.Name]struct{}, len(attrs))
	for _, a := range attrs {
		if _, ok := seen[a.Name]; ok {
			return a.Name, true
		}
		seen[a.Name] = struct{}{}
	}
	return xml.Name{}, false
}

// qualified returns a name as written in the document, prefix:local.
func qualified(n xml.Name) string {
	if n.Space == "" {
		return limited(n.Local)
	}
	return limited(n.Space + ":" + n.Local)
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

// errTokenTooLong stops the decoder when one token outgrows maxTokenBytes.
var errTokenTooLong = errors.New("token too long")

// byteReader buffers the source for the decoder, which reads one byte at a time
// through io.ByteReader. It refuses to hand out more bytes than the parser allows,
// which caps the size of a token, and it records whether the source failed, which
// tells a broken connection from a broken document.
type byteReader struct {
	r      io.Reader
	buf    []byte
	pos    int   // next byte of buf to hand out
	end    int   // end of the data in buf
	stop   int   // min(end, where the allowance ends): ReadByte's fast path stops here
	base   int64 // input offset of buf[0]
	limit  int64 // input offset where the allowance ends
	err    error // the source's error, returned once buf is drained
	failed bool  // ReadByte returned err and err is not io.EOF
}

// allow lets the decoder read n more bytes from here on.
func (b *byteReader) allow(n int64) {
	b.limit = b.base + int64(b.pos) + n
	b.stop = int(min(int64(b.end), b.limit-b.base))
}

// ReadByte implements io.ByteReader.
func (b *byteReader) ReadByte() (byte, error) {
	if b.pos < b.stop {
		c := b.buf[b.pos]
		b.pos++
		return c, nil
	}
	if b.pos == b.end {
		if err := b.fill(); err != nil {
			return 0, err
		}
		if b.pos < b.stop {
			c := b.buf[b.pos]
			b.pos++
			return c, nil
		}
	}
	return 0, errTokenTooLong
}

// Read implements io.Reader, which xml.NewDecoder asks for; the decoder itself only
// calls ReadByte. It observes the same allowance.
func (b *byteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.pos == b.end {
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	if b.pos >= b.stop {
		return 0, errTokenTooLong
	}
	n := copy(p, b.buf[b.pos:b.stop])
	b.pos += n
	return n, nil
}

// fill reads the next chunk of the source into buf, which must be drained.
func (b *byteReader) fill() error {
	b.base += int64(b.end)
	b.pos, b.end, b.stop = 0, 0, 0
	for range 100 {
		if b.err != nil {
			b.failed = !errors.Is(b.err, io.EOF)
			return b.err
		}
		n, err := b.r.Read(b.buf)
		b.end, b.err = n, err
		if n > 0 {
			b.stop = int(min(int64(n), b.limit-b.base))
			return nil
		}
	}
	b.err = io.ErrNoProgress
	b.failed = true
	return b.err
}
