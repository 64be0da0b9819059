package provider

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// BasePlanXML is a base_plan element of the provider's planList format with its
// attribute values as they travel on the wire, unescaped. Nothing is validated or
// parsed, so that a simulator can write what the real provider gets wrong, such as the
// date 2021-09-31T20:00:00. These are wire values, unlike catalog.Plan.
type BasePlanXML struct {
	ID                 string    // base_plan_id
	SellMode           string    // sell_mode: "online" or "offline"
	OrganizerCompanyID string    // organizer_company_id; the attribute is left out when empty
	Title              string    // title
	Plans              []PlanXML // the plan elements, in document order
}

// PlanXML is a plan element of a base plan, with wire values.
type PlanXML struct {
	ID       string    // plan_id: unique inside its base plan only
	Start    string    // plan_start_date, such as "2021-06-30T21:00:00"
	End      string    // plan_end_date
	SellFrom string    // sell_from
	SellTo   string    // sell_to
	SoldOut  bool      // sold_out
	Zones    []ZoneXML // the zone elements, in document order
}

// ZoneXML is a zone element of a plan, with wire values.
type ZoneXML struct {
	ID       string // zone_id: may repeat inside a plan
	Capacity string // capacity, such as "243"
	Price    string // price, such as "20.00"
	Name     string // name
	Numbered bool   // numbered
}

// layout is what differs between the documents a Writer writes: the fixed parts, and
// the names of the XML formats.
type layout struct {
	header, footer                     string
	basePlan, basePlanID, plan, planID string
	startsAt, endsAt                   string
	json                               bool
}

// The fixed parts of each document, laid out like the provider's samples: three
// spaces of indentation per level, attributes in the provider's order.
var layouts = map[string]*layout{
	FormatPlanList: {
		header: `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<planList xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.0" xsi:noNamespaceSchemaLocation="planList.xsd">` + "\n" +
			"   <output>\n",
		footer:   "   </output>\n</planList>\n",
		basePlan: "base_plan", basePlanID: "base_plan_id", plan: "plan", planID: "plan_id",
		startsAt: "plan_start_date", endsAt: "plan_end_date",
	},
	FormatEventList: {
		header: `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<eventList xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.0" xsi:noNamespaceSchemaLocation="eventList.xsd">` + "\n" +
			"   <output>\n",
		footer:   "   </output>\n</eventList>\n",
		basePlan: "base_event", basePlanID: "base_event_id", plan: "event", planID: "event_id",
		startsAt: "event_start_date", endsAt: "event_end_date",
	},
	FormatJSON: {
		header: "{\n  \"version\": \"1.0\",\n  \"base_plans\": [",
		footer: "\n  ]\n}\n",
		json:   true,
	},
}

// writerChunk is the buffered size at which the Writer passes its bytes on, so that
// the underlying writer sees a few large writes rather than many small ones.
const writerChunk = 32 << 10

// errWriterClosed is returned when a base plan is written after Close.
var errWriterClosed = errors.New("write base plan: writer closed")

// Writer streams a document of the provider's, one base plan at a time: planList, the
// provider's current format, unless NewFormatWriter chose another. Its memory is one base plan's bytes and a 32 KiB buffer, whatever the length
// of the document, and writing a base plan does not allocate once the buffer has grown
// to its size. The document's header goes out with the first base plan or with Close.
//
// The first error from the underlying writer sticks: every later call returns it. A
// Writer is not safe for concurrent use.
type Writer struct {
	w       io.Writer
	l       *layout
	buf     []byte
	started bool // the header is in buf or written
	written int  // base plans written
	closed  bool // the footer is in buf or written
	err     error
}

// NewWriter returns a Writer that writes a planList document to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, l: layouts[FormatPlanList], buf: make([]byte, 0, writerChunk+writerChunk/2)}
}

// NewFormatWriter returns a Writer that writes a document of format to w:
// FormatPlanList, FormatEventList or FormatJSON. In JSON, ids and names are strings,
// capacity and price numbers when their wire values are JSON numbers (strings
// otherwise, so that bad values still travel), sold_out and numbered booleans.
func NewFormatWriter(w io.Writer, format string) (*Writer, error) {
	l, ok := layouts[format]
	if !ok {
		return nil, fmt.Errorf("write: unknown format %q (want %s, %s or %s)", format, FormatPlanList, FormatEventList, FormatJSON)
	}
	return &Writer{w: w, l: l, buf: make([]byte, 0, writerChunk+writerChunk/2)}, nil
}

// WriteBasePlan appends one base_plan element with its plans and zones, escaping the
// attribute values. It passes buffered bytes on to the underlying writer once there
// are at least 32 KiB of them.
func (w *Writer) WriteBasePlan(bp BasePlanXML) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errWriterClosed
	}
	w.start()
	if w.l.json {
		w.buf = appendBasePlanJSON(w.buf, &bp, w.written == 0)
	} else {
		w.buf = appendBasePlanXML(w.buf, w.l, &bp)
	}
	w.written++
	if len(w.buf) >= writerChunk {
		return w.Flush()
	}
	return nil
}

func appendBasePlanXML(b []byte, l *layout, bp *BasePlanXML) []byte {
	b = append(b, "      <"...)
	b = append(b, l.basePlan...)
	b = append(b, ' ')
	b = append(b, l.basePlanID...)
	b = append(b, `="`...)
	b = appendAttrValue(b, bp.ID)
	b = append(b, `" sell_mode="`...)
	b = appendAttrValue(b, bp.SellMode)
	if bp.OrganizerCompanyID != "" {
		b = append(b, `" organizer_company_id="`...)
		b = appendAttrValue(b, bp.OrganizerCompanyID)
	}
	b = append(b, `" title="`...)
	b = appendAttrValue(b, bp.Title)
	b = append(b, "\">\n"...)
	for i := range bp.Plans {
		b = appendPlan(b, l, &bp.Plans[i])
	}
	b = append(b, "      </"...)
	b = append(b, l.basePlan...)
	return append(b, ">\n"...)
}

func appendPlan(b []byte, l *layout, p *PlanXML) []byte {
	b = append(b, "         <"...)
	b = append(b, l.plan...)
	b = append(b, ' ')
	b = append(b, l.startsAt...)
	b = append(b, `="`...)
	b = appendAttrValue(b, p.Start)
	b = append(b, `" `...)
	b = append(b, l.endsAt...)
	b = append(b, `="`...)
	b = appendAttrValue(b, p.End)
	b = append(b, `" `...)
	b = append(b, l.planID...)
	b = append(b, `="`...)
	b = appendAttrValue(b, p.ID)
	b = append(b, `" sell_from="`...)
	b = appendAttrValue(b, p.SellFrom)
	b = append(b, `" sell_to="`...)
	b = appendAttrValue(b, p.SellTo)
	b = append(b, `" sold_out="`...)
	b = strconv.AppendBool(b, p.SoldOut)
	b = append(b, "\">\n"...)
	for i := range p.Zones {
		z := &p.Zones[i]
		b = append(b, `            <zone zone_id="`...)
		b = appendAttrValue(b, z.ID)
		b = append(b, `" capacity="`...)
		b = appendAttrValue(b, z.Capacity)
		b = append(b, `" price="`...)
		b = appendAttrValue(b, z.Price)
		b = append(b, `" name="`...)
		b = appendAttrValue(b, z.Name)
		b = append(b, `" numbered="`...)
		b = strconv.AppendBool(b, z.Numbered)
		b = append(b, "\" />\n"...)
	}
	b = append(b, "         </"...)
	b = append(b, l.plan...)
	return append(b, ">\n"...)
}

// appendBasePlanJSON appends a base plan of the JSON format, one line for the base plan,
// each plan and each zone, after a comma unless it is the first.
func appendBasePlanJSON(b []byte, bp *BasePlanXML, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	b = append(b, "\n    {\"base_plan_id\": "...)
	b = appendJSONString(b, bp.ID)
	b = append(b, `, "sell_mode": `...)
	b = appendJSONString(b, bp.SellMode)
	if bp.OrganizerCompanyID != "" {
		b = append(b, `, "organizer_company_id": `...)
		b = appendJSONString(b, bp.OrganizerCompanyID)
	}
	b = append(b, `, "title": `...)
	b = appendJSONString(b, bp.Title)
	b = append(b, `, "plans": [`...)
	for i := range bp.Plans {
		p := &bp.Plans[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n      {\"plan_id\": "...)
		b = appendJSONString(b, p.ID)
		b = append(b, `, "plan_start_date": `...)
		b = appendJSONString(b, p.Start)
		b = append(b, `, "plan_end_date": `...)
		b = appendJSONString(b, p.End)
		b = append(b, `, "sell_from": `...)
		b = appendJSONString(b, p.SellFrom)
		b = append(b, `, "sell_to": `...)
		b = appendJSONString(b, p.SellTo)
		b = append(b, `, "sold_out": `...)
		b = strconv.AppendBool(b, p.SoldOut)
		b = append(b, `, "zones": [`...)
		for j := range p.Zones {
			z := &p.Zones[j]
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, "\n        {\"zone_id\": "...)
			b = appendJSONString(b, z.ID)
			b = append(b, `, "capacity": `...)
			b = appendJSONNumber(b, z.Capacity)
			b = append(b, `, "price": `...)
			b = appendJSONNumber(b, z.Price)
			b = append(b, `, "name": `...)
			b = appendJSONString(b, z.Name)
			b = append(b, `, "numbered": `...)
			b = strconv.AppendBool(b, z.Numbered)
			b = append(b, '}')
		}
		if len(p.Zones) > 0 {
			b = append(b, "\n      "...)
		}
		b = append(b, "]}"...)
	}
	if len(bp.Plans) > 0 {
		b = append(b, "\n    "...)
	}
	return append(b, "]}"...)
}

// appendJSONString appends s as a JSON string: quotes, backslashes and control
// characters escaped, each byte of invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, `\u00`...)
				b = append(b, hexDigits[c>>4], hexDigits[c&0xF])
			default:
				b = append(b, c)
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONNumber appends s as it is when it is a JSON number, else as a string.
func appendJSONNumber(b []byte, s string) []byte {
	if isJSONNumber(s) {
		return append(b, s...)
	}
	return appendJSONString(b, s)
}

// isJSONNumber reports whether s is a number as JSON writes them: -?int(.digits)?(e±digits)?
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// Flush writes the buffered bytes to the underlying writer. It does not flush the
// underlying writer itself (an http.Flusher, a bufio.Writer): that is the caller's
// choice.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.w.Write(w.buf)
	w.buf = w.buf[:0]
	if err != nil {
		w.err = err
	}
	return err
}

// Close ends the document, writing the header first if no base plan was written, and
// flushes. It does not close the underlying writer. Closing twice is harmless.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if !w.closed {
		w.start()
		w.buf = append(w.buf, w.l.footer...)
		w.closed = true
	}
	return w.Flush()
}

func (w *Writer) start() {
	if !w.started {
		w.buf = append(w.buf, w.l.header...)
		w.started = true
	}
}

// appendAttrValue appends s escaped for a double-quoted attribute value: the markup
// characters as entities; tab, newline and carriage return as character references,
// so that attribute-value normalisation keeps them; and each byte of invalid UTF-8 and
// each character that XML 1.0 does not allow (other control characters, U+FFFE) as
// U+FFFD. Values with nothing to escape, the common case, are copied as they are.
func appendAttrValue(b []byte, s string) []byte {
	for i := range len(s) {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '&' || c == '<' || c == '>' || c == '"' {
			return appendAttrValueSlow(append(b, s[:i]...), s[i:])
		}
	}
	return append(b, s...)
}

func appendAttrValueSlow(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == '&':
				b = append(b, "&amp;"...)
			case c == '<':
				b = append(b, "&lt;"...)
			case c == '>':
				b = append(b, "&gt;"...)
			case c == '"':
				b = append(b, "&quot;"...)
			case c == '\t':
				b = append(b, "&#x9;"...)
			case c == '\n':
				b = append(b, "&#xA;"...)
			case c == '\r':
				b = append(b, "&#xD;"...)
			case c < 0x20:
				b = append(b, "\uFFFD"...)
			default:
				b = append(b, c)
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || !allowedInXML(r) {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// allowedInXML reports whether XML 1.0 allows the non-ASCII rune r in a document.
func allowedInXML(r rune) bool {
	return r >= 0x80 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= utf8.MaxRune
}
