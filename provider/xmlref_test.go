package provider

// The parser as it was on encoding/xml, kept as the reference that the scanner's parser
// must agree with (FuzzParse): the same plans, counts and errors for every document.

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"boxoffice/catalog"
	"boxoffice/ingest"
)

// parseReference is Parse on encoding/xml's Decoder.RawToken.
func parseReference(r io.Reader, providerName string, emit func(catalog.Plan) error) (Stats, error) {
	p := refParser{
		in:      &refByteReader{r: r, buf: make([]byte, readBufferSize)},
		roots:   formats,
		builder: builder{provider: providerName, emit: emit},
	}
	p.dec = xml.NewDecoder(p.in)
	p.dec.Entity = xml.HTMLEntity
	err := p.run()
	return p.stats, err
}

// refAttrs gives the builder the attributes of the reference's start elements, without
// the prefixed ones, which the builder does not know.
func refAttrs(attrs []xml.Attr) []attr {
	out := make([]attr, 0, len(attrs))
	for _, a := range attrs {
		if a.Name.Space == "" {
			out = append(out, attr{name: a.Name.Local, value: []byte(a.Value)})
		}
	}
	return out
}

// parser is the state of one Parse call.
type refParser struct {
	in    *refByteReader
	dec   *xml.Decoder
	roots []format // the formats whose root elements the document may have

	open     []xml.Name // open elements, root first, at most maxDepth
	known    int        // depth of the deepest open element that Parse reads; the rest are ignored
	rootDone bool       // the root element was closed

	builder
}

func (p *refParser) run() error {
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
func (p *refParser) stop(err error) error {
	var se *xml.SyntaxError
	switch {
	case p.in.failed:
		// The decoder stops at its first error, so this one is the reader's.
		return fmt.Errorf("read document: %w", err)
	case errors.Is(err, errRefTokenTooLong):
		return p.malformed(fmt.Sprintf("token longer than %d bytes", maxTokenBytes))
	case errors.As(err, &se):
		return fmt.Errorf("%w: line %d: %s", ingest.ErrMalformed, se.Line, se.Msg)
	case !errors.Is(err, io.EOF):
		return p.malformed(err.Error()) // an unsupported XML version or encoding
	case p.f == nil:
		return fmt.Errorf("%w: no root element", ingest.ErrMalformed)
	case len(p.open) > 0:
		return p.malformed(fmt.Sprintf("unexpected EOF inside <%s>", refQualified(p.open[len(p.open)-1])))
	}
	return nil
}

func (p *refParser) malformed(msg string) error {
	line, _ := p.dec.InputPos()
	return fmt.Errorf("%w: line %d: %s", ingest.ErrMalformed, line, msg)
}

func (p *refParser) startElement(t xml.StartElement) error {
	depth := len(p.open) + 1
	switch {
	case depth == depthRoot && p.rootDone:
		return p.malformed(fmt.Sprintf("element <%s> after the root element", refQualified(t.Name)))
	case depth == depthRoot:
		for i := range p.roots {
			if t.Name.Space == "" && t.Name.Local == p.roots[i].root {
				p.f = &p.roots[i]
			}
		}
		if p.f == nil {
			return p.malformed(fmt.Sprintf("root element <%s> is not %s", refQualified(t.Name), rootNames(p.roots)))
		}
		p.stats.Format = p.f.root
	case depth > maxDepth:
		return p.malformed(fmt.Sprintf("elements nested more than %d deep", maxDepth))
	}
	if name, ok := refRepeatedAttr(t.Attr); ok {
		return p.malformed(fmt.Sprintf("attribute %s repeated in <%s>", refQualified(name), refQualified(t.Name)))
	}
	p.open = append(p.open, t.Name)
	if p.known != depth-1 || t.Name.Space != "" {
		return nil
	}
	switch {
	case depth == depthRoot:
	case depth == depthOutput && t.Name.Local == "output":
	case depth == depthBasePlan && t.Name.Local == p.f.basePlan:
		p.startBasePlan(refAttrs(t.Attr))
	case depth == depthPlan && t.Name.Local == p.f.plan:
		p.startPlan(refAttrs(t.Attr))
	case depth == depthZone && t.Name.Local == "zone":
		p.addZone(refAttrs(t.Attr))
	default:
		return nil // unknown: ignored with everything inside it
	}
	p.known = depth
	return nil
}

func (p *refParser) endElement(t xml.EndElement) error {
	if len(p.open) == 0 {
		return p.malformed(fmt.Sprintf("unexpected end element </%s>", refQualified(t.Name)))
	}
	depth := len(p.open)
	if top := p.open[depth-1]; top != t.Name {
		return p.malformed(fmt.Sprintf("element <%s> closed by </%s>", refQualified(top), refQualified(t.Name)))
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

// refRepeatedAttr returns an attribute name that appears twice, which XML forbids.
func refRepeatedAttr(attrs []xml.Attr) (xml.Name, bool) {
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

// refQualified returns a name as written in the document, prefix:local.
func refQualified(n xml.Name) string {
	if n.Space == "" {
		return limited(n.Local)
	}
	return limited(n.Space + ":" + n.Local)
}

// errRefTokenTooLong stops the decoder when one token outgrows maxTokenBytes.
var errRefTokenTooLong = errors.New("token too long")

// refByteReader buffers the source for the decoder, which reads one byte at a time
// through io.ByteReader. It refuses to hand out more bytes than the parser allows,
// which caps the size of a token, and it records whether the source failed, which
// tells a broken connection from a broken document.
type refByteReader struct {
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
func (b *refByteReader) allow(n int64) {
	b.limit = b.base + int64(b.pos) + n
	b.stop = int(min(int64(b.end), b.limit-b.base))
}

// ReadByte implements io.ByteReader.
func (b *refByteReader) ReadByte() (byte, error) {
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
	return 0, errRefTokenTooLong
}

// Read implements io.Reader, which xml.NewDecoder asks for; the decoder itself only
// calls ReadByte. It observes the same allowance.
func (b *refByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.pos == b.end {
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	if b.pos >= b.stop {
		return 0, errRefTokenTooLong
	}
	n := copy(p, b.buf[b.pos:b.stop])
	b.pos += n
	return n, nil
}

// fill reads the next chunk of the source into buf, which must be drained.
func (b *refByteReader) fill() error {
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
