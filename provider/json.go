package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"boxoffice/catalog"
	"boxoffice/ingest"
)

// ParseJSON reads one document of the JSON format from r and calls emit with every
// valid plan, in document order, as soon as the plan's object ends: a Parser, like
// Parse, with the same rules, limits and errors (see the package documentation and
// docs/PROVIDER.md for the format). Stats.Format is FormatJSON.
//
// The JSON format mirrors planList: an object whose "base_plans" array holds base
// plans with the attributes of base_plan as fields and their "plans" last; each plan
// has the attributes of plan as fields and its "zones" last; each zone has the
// attributes of zone. A value may be a string as in XML; ids, capacity and price may
// also be numbers (kept as written), sold_out and numbered booleans; null and "" are
// absent. Streaming needs "plans" and "zones" to come after the fields they belong
// with: a base plan's or a plan's field after them makes the document malformed, as
// does a repeated field.
func ParseJSON(r io.Reader, providerName string, emit func(catalog.Plan) error) (Stats, error) {
	in := &jsonReader{r: r}
	dec := json.NewDecoder(in)
	dec.UseNumber()
	in.dec = dec
	p := jsonParser{dec: dec, in: in, builder: builder{provider: providerName, emit: emit, f: &formats[0]}}
	err := p.run()
	return p.stats, err
}

// jsonParser is the state of one ParseJSON call.
type jsonParser struct {
	dec   *json.Decoder
	in    *jsonReader
	depth int // open objects and arrays
	attrs []attr
	builder
}

// jsonField says which JSON values a field takes, beyond null.
type jsonField uint8

const (
	jsonString       jsonField = iota // a string
	jsonStringNumber                  // a string or a number, kept as written
	jsonStringBool                    // a string or a boolean
)

// The fields the parser reads, by object, with the values each takes. A field that is
// absent here is ignored with its value, whatever it holds.
var (
	basePlanFields = map[string]jsonField{"base_plan_id": jsonStringNumber, "sell_mode": jsonString,
		"title": jsonString, "organizer_company_id": jsonStringNumber}
	planFields = map[string]jsonField{"plan_id": jsonStringNumber, "plan_start_date": jsonString, "plan_end_date": jsonString,
		"sell_from": jsonString, "sell_to": jsonString, "sold_out": jsonStringBool}
	zoneFields = map[string]jsonField{"zone_id": jsonStringNumber, "capacity": jsonStringNumber, "price": jsonStringNumber,
		"name": jsonString, "numbered": jsonStringBool}
)

func (p *jsonParser) run() error {
	tok, err := p.token()
	if err != nil {
		if errors.Is(err, errNoDocument) {
			return fmt.Errorf("%w: empty document", ingest.ErrMalformed)
		}
		return err
	}
	if tok != json.Delim('{') {
		return p.malformed("the document is not a JSON object")
	}
	p.stats.Format = FormatJSON
	found := false
	for p.dec.More() {
		key, err := p.key()
		if err != nil {
			return err
		}
		if key != "base_plans" {
			if err := p.skip(); err != nil {
				return err
			}
			continue
		}
		if found {
			return p.malformed(`"base_plans" repeated`)
		}
		found = true
		if err := p.array("base_plans", p.basePlan); err != nil {
			return err
		}
	}
	if _, err := p.token(); err != nil { // the closing brace
		return err
	}
	if !found {
		return p.malformed(`no "base_plans" array`)
	}
	switch _, err := p.dec.Token(); {
	case err == nil:
		return p.malformed("data after the document")
	case !errors.Is(err, io.EOF):
		return p.stop(err)
	}
	return nil
}

// array reads an array as the value of field, calling each for every element.
func (p *jsonParser) array(field string, each func() error) error {
	tok, err := p.token()
	if err != nil {
		return err
	}
	if tok != json.Delim('[') {
		return p.malformed(fmt.Sprintf("%q is not an array", field))
	}
	for p.dec.More() {
		if err := each(); err != nil {
			return err
		}
	}
	_, err = p.token() // the closing bracket
	return err
}

// object reads an object whose fields are fields, collecting their values into
// p.attrs, until the field last (whose value it leaves unread: lastSeen true), unless
// last is "", or the end of the object. A value of the wrong type keeps the first such reason in bad.
func (p *jsonParser) object(what string, fields map[string]jsonField, last string) (lastSeen bool, bad error, err error) {
	tok, err := p.token()
	if err != nil {
		return false, nil, err
	}
	if tok != json.Delim('{') {
		return false, nil, p.malformed(what + " is not an object")
	}
	p.attrs = p.attrs[:0]
	for p.dec.More() {
		key, err := p.key()
		if err != nil {
			return false, nil, err
		}
		if last != "" && key == last {
			return true, bad, nil
		}
		kind, ok := fields[key]
		if !ok {
			if err := p.skip(); err != nil {
				return false, nil, err
			}
			continue
		}
		for _, a := range p.attrs {
			if a.name == key {
				return false, nil, p.malformed(fmt.Sprintf("field %q repeated in %s", key, what))
			}
		}
		v, present, why, err := p.value(kind)
		if err != nil {
			return false, nil, err
		}
		if why != "" && bad == nil {
			bad = fmt.Errorf("%s: %s", key, why)
		}
		_ = present // null and a bad value are kept as "", which counts as absent, for the repeat check
		p.attrs = append(p.attrs, attr{name: key, value: []byte(v)})
	}
	_, err = p.token() // the closing brace
	return false, bad, err
}

// rest reads the fields of an object after its last one, which must all be unknown,
// and its closing brace.
func (p *jsonParser) rest(what string, fields map[string]jsonField, last string) error {
	for p.dec.More() {
		key, err := p.key()
		if err != nil {
			return err
		}
		if _, known := fields[key]; known || key == last {
			return p.malformed(fmt.Sprintf("field %q of %s after %q", key, what, last))
		}
		if err := p.skip(); err != nil {
			return err
		}
	}
	_, err := p.token()
	return err
}

func (p *jsonParser) basePlan() error {
	hasPlans, bad, err := p.object("a base plan", basePlanFields, "plans")
	if err != nil {
		return err
	}
	p.startBasePlan(p.attrs)
	if bad != nil {
		p.base.err = bad
	}
	if !hasPlans {
		return nil
	}
	if err := p.array("plans", p.planObject); err != nil {
		return err
	}
	return p.rest("a base plan", basePlanFields, "plans")
}

func (p *jsonParser) planObject() error {
	hasZones, bad, err := p.object("a plan", planFields, "zones")
	if err != nil {
		return err
	}
	p.startPlan(p.attrs)
	if bad != nil && p.base.err == nil {
		p.planErr = bad
	}
	if hasZones {
		if err := p.array("zones", p.zone); err != nil {
			return err
		}
		if err := p.rest("a plan", planFields, "zones"); err != nil {
			return err
		}
	}
	return p.endPlan()
}

func (p *jsonParser) zone() error {
	_, bad, err := p.object("a zone", zoneFields, "")
	if err != nil {
		return err
	}
	if bad != nil {
		if p.planErr == nil {
			p.planErr = fmt.Errorf("zone #%d: %w", len(p.zones)+1, bad)
		}
		return nil
	}
	p.addZone(p.attrs)
	return nil
}

// value reads a field's value as its text: present false for null; a value of another
// type than kind takes is skipped and its reason returned in why.
func (p *jsonParser) value(kind jsonField) (text string, present bool, why string, err error) {
	tok, err := p.token()
	if err != nil {
		return "", false, "", err
	}
	switch v := tok.(type) {
	case nil:
		return "", false, "", nil
	case string:
		return v, true, "", nil
	case json.Number:
		if kind == jsonStringNumber {
			return string(v), true, "", nil
		}
		return "", false, "not a string: " + limited(string(v)), nil
	case bool:
		if kind == jsonStringBool {
			if v {
				return "true", true, "", nil
			}
			return "false", true, "", nil
		}
		return "", false, fmt.Sprintf("not a string: %t", v), nil
	case json.Delim: // an object or an array
		if err := p.skipOpened(); err != nil {
			return "", false, "", err
		}
		return "", false, "not a string", nil
	}
	return "", false, "", p.malformed(fmt.Sprintf("unexpected token %v", tok))
}

// key reads an object's key.
func (p *jsonParser) key() (string, error) {
	tok, err := p.token()
	if err != nil {
		return "", err
	}
	key, ok := tok.(string)
	if !ok {
		return "", p.malformed(fmt.Sprintf("unexpected token %v", tok))
	}
	return key, nil
}

// skip reads a value of any type and everything inside it.
func (p *jsonParser) skip() error {
	tok, err := p.token()
	if err != nil {
		return err
	}
	if _, ok := tok.(json.Delim); ok {
		return p.skipOpened()
	}
	return nil
}

// skipOpened reads the rest of an object or an array whose opening token was read.
func (p *jsonParser) skipOpened() error {
	for depth := 1; depth > 0; {
		tok, err := p.token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

// errNoDocument is token's error at the end of input outside any value.
var errNoDocument = errors.New("no document")

// token reads the next token, keeping count of the nesting, and turns the decoder's
// errors into ParseJSON's.
func (p *jsonParser) token() (json.Token, error) {
	tok, err := p.dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) && !p.in.failed && p.depth == 0 {
			return nil, errNoDocument
		}
		return nil, p.stop(err)
	}
	switch tok {
	case json.Delim('{'), json.Delim('['):
		p.depth++
		if p.depth > maxDepth {
			return nil, p.malformed(fmt.Sprintf("objects and arrays nested more than %d deep", maxDepth))
		}
	case json.Delim('}'), json.Delim(']'):
		p.depth--
	}
	return tok, nil
}

// stop turns the decoder's error into ParseJSON's.
//
// Alike parser.stop in shape only: encoding/json's errors, not encoding/xml's.
func (p *jsonParser) stop(err error) error {
	var se *json.SyntaxError
	switch {
	case p.in.failed:
		return fmt.Errorf("read document: %w", err)
	case errors.Is(err, errTokenTooLong):
		return p.malformed(fmt.Sprintf("token longer than %d bytes", maxTokenBytes))
	case errors.As(err, &se):
		return p.malformed(se.Error()) // se.Offset counts from the start of the last value, not of the document
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return p.malformed("unexpected end of the document")
	}
	return p.malformed(err.Error())
}

func (p *jsonParser) malformed(msg string) error {
	return fmt.Errorf("%w: offset %d: %s", ingest.ErrMalformed, p.dec.InputOffset(), msg)
}

// jsonReader feeds the decoder, which buffers a whole token before it returns it: it
// hands out no more than maxTokenBytes past the end of the last token, which caps the
// decoder's memory, and it records whether the source failed, which tells a broken
// connection from a broken document.
type jsonReader struct {
	r      io.Reader
	dec    *json.Decoder
	read   int64 // bytes handed to the decoder
	zeros  int   // reads in a row that returned nothing
	failed bool  // the source returned an error other than io.EOF
}

func (j *jsonReader) Read(b []byte) (int, error) {
	room := int64(maxTokenBytes) - (j.read - j.dec.InputOffset())
	if room <= 0 {
		return 0, errTokenTooLong
	}
	if int64(len(b)) > room {
		b = b[:room]
	}
	n, err := j.r.Read(b)
	j.read += int64(n)
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		j.failed = true
	case n > 0:
		j.zeros = 0
	case err == nil:
		if j.zeros++; j.zeros >= 100 {
			j.failed = true
			return 0, io.ErrNoProgress
		}
	}
	return n, err
}
