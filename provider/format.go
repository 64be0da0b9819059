package provider

import (
	"bufio"
	"fmt"
	"io"
	"mime"
	"strings"

	"boxoffice/catalog"
	"boxoffice/ingest"
)

// Parser is the port behind which each document format sits: it reads one document
// from r and calls emit with every valid plan, in document order, skipping and
// counting plans with bad data, by the rules of the package documentation. Its errors
// are Parse's: ingest.ErrMalformed (wrapped) for a document that is not of its format
// or not well-formed, the reader's error (wrapped, not ErrMalformed) when r fails, and
// emit's error as is. Every format gives the same catalog.Plan values for the same
// content, so that nothing past the parser knows which one a provider speaks.
type Parser interface {
	Parse(r io.Reader, providerName string, emit func(catalog.Plan) error) (Stats, error)
}

// ParserFunc is a function that is a Parser.
type ParserFunc func(r io.Reader, providerName string, emit func(catalog.Plan) error) (Stats, error)

// Parse calls f.
func (f ParserFunc) Parse(r io.Reader, providerName string, emit func(catalog.Plan) error) (Stats, error) {
	return f(r, providerName, emit)
}

// The names of the formats, as PROVIDERS and the providers file name them, and as
// Stats.Format reports them. FormatAuto names none: the format of each response is
// detected (see Detect).
const (
	FormatAuto      = "auto"
	FormatPlanList  = "planList"
	FormatEventList = "eventList"
	FormatJSON      = "json"
)

// named are the formats a provider may be configured with, by name. A new format is a
// Parser, a line here, and a line in families when its documents can be told apart
// from the others'.
var named = map[string]Parser{
	FormatPlanList:  xmlParser(formats[0:1]),
	FormatEventList: xmlParser(formats[1:2]),
	FormatJSON:      ParserFunc(ParseJSON),
}

// family is a set of formats whose documents Detect recognises by their Content-Type or
// their first byte, and the parser that reads any of them.
type family struct {
	name   string   // for messages
	media  []string // media types that announce the family; a +suffix counts too
	suffix string   // structured syntax suffix, such as "+xml"
	start  byte     // the first byte of its documents, past white space
	parser Parser
}

var families = []family{
	{name: "XML", media: []string{"application/xml", "text/xml"}, suffix: "+xml", start: '<', parser: ParserFunc(Parse)},
	{name: "JSON", media: []string{"application/json", "text/json"}, suffix: "+json", start: '{', parser: ParserFunc(ParseJSON)},
}

// xmlParser returns the XML parser that accepts the roots of fs only.
func xmlParser(fs []format) Parser {
	return ParserFunc(func(r io.Reader, providerName string, emit func(catalog.Plan) error) (Stats, error) {
		return parseXML(r, providerName, emit, fs)
	})
}

// Formats returns the names a provider's format may be configured with, FormatAuto
// first.
func Formats() []string {
	return []string{FormatAuto, FormatPlanList, FormatEventList, FormatJSON}
}

// CheckFormat reports whether name is one of Formats; "" counts as FormatAuto. Its error
// lists the known names.
func CheckFormat(name string) error {
	if name == "" || name == FormatAuto {
		return nil
	}
	if _, ok := named[name]; ok {
		return nil
	}
	return fmt.Errorf("unknown format %q (want %s)", name, strings.Join(Formats(), ", "))
}

// maxLeadingSpace is how much white space Detect reads past before a document's first
// byte; more makes the document malformed.
const maxLeadingSpace = 4 << 10

// Detect returns the parser of a document from the response's Content-Type and the
// document's first byte past white space and a UTF-8 byte order mark, which it peeks at
// in br: '<' is XML (planList or eventList, told apart by the root element), '{' is
// JSON. When that byte is neither, a Content-Type that names a family (application/xml,
// text/xml, application/json, or a +xml or +json type) chooses its parser, which then
// reports the document malformed in its own terms; otherwise the document is
// malformed. The first byte wins over a Content-Type that says otherwise: providers
// mislabel their documents more often than they send XML that starts with '{'.
//
// Errors: ingest.ErrMalformed for a document of no known family, or one empty or all
// white space; br's error when it fails.
func Detect(contentType string, br *bufio.Reader) (Parser, error) {
	first, err := firstByte(br)
	if err != nil {
		return nil, err
	}
	for _, f := range families {
		if first == f.start {
			return f.parser, nil
		}
	}
	media, _, _ := mime.ParseMediaType(contentType)
	for _, f := range families {
		for _, m := range f.media {
			if media == m {
				return f.parser, nil
			}
		}
		if f.suffix != "" && strings.HasSuffix(media, f.suffix) {
			return f.parser, nil
		}
	}
	if first == 0 {
		return nil, fmt.Errorf("%w: empty document", ingest.ErrMalformed)
	}
	return nil, fmt.Errorf("%w: Content-Type %q and a document that starts with %q: neither XML nor JSON",
		ingest.ErrMalformed, limited(contentType), rune(first))
}

// firstByte returns the first byte of br past white space and a UTF-8 byte order mark,
// without consuming anything; 0 when the document ends before one. br's buffer must
// hold more than maxLeadingSpace bytes.
func firstByte(br *bufio.Reader) (byte, error) {
	start := 0
	b, err := br.Peek(3)
	switch {
	case err != nil && err != io.EOF:
		return 0, fmt.Errorf("read document: %w", err)
	case len(b) == 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF:
		start = 3
	}
	for i := start; ; i++ {
		if i-start >= maxLeadingSpace {
			return 0, fmt.Errorf("%w: more than %d bytes of white space before the document", ingest.ErrMalformed, maxLeadingSpace)
		}
		b, err := br.Peek(i + 1)
		switch {
		case err == io.EOF:
			return 0, nil
		case err != nil:
			return 0, fmt.Errorf("read document: %w", err)
		}
		if c := b[i]; c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return c, nil
		}
	}
}
