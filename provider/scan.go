package provider

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// scanner reads the tokens of an XML document from a reader, as encoding/xml's
// Decoder.RawToken does with Strict set and xml.HTMLEntity as its entities: it accepts
// and rejects the same documents, with the same messages, and gives the same names,
// attribute values and text. It is several times faster: it scans a buffer of the
// document instead of reading it a byte at a time, hands out names and attribute
// values as slices of that buffer (decoded only when they hold an entity or a carriage
// return), and keeps no text. Its memory is bounded: a token longer than
// maxTokenBytes is an error (errTokenTooLong), so the buffer never holds more than
// that and one read.
//
// Like RawToken it checks the syntax of each token and nothing across tokens: the
// nesting of elements is the parser's (parser.endElement).
type scanner struct {
	r    io.Reader
	buf  []byte
	pos  int // start of the current token in buf
	n    int // length of the current token, consumed by the next call
	end  int // end of the data in buf
	rerr error

	line   int // line of buf[lineAt], from 1
	lineAt int

	// final is set once the reader has nothing more to give (rerr is set) or the
	// buffered token reached maxTokenBytes (long): running off the end of the buffer
	// is then the end of the token, not a reason to read more.
	final bool
	long  bool

	// The current token. name, attrs and text are valid until the next call.
	name    string // of a start or end tag, as written (prefix:local)
	attrs   []attr // of a start tag, in document order
	text    []byte // decoded character data of a text token
	empty   bool   // the start tag was <name/>: an end tag follows
	pending error  // returned by the next call: the document ended or failed inside a text

	scratch []byte            // decoded attribute values and text that needed decoding
	names   map[string]string // interned names, so that a name costs no allocation
	recent  [256]string       // names recently interned, by nameSlot: most lookups end here
}

// attr is one attribute of a start tag: its name as written and its decoded value.
// The value may alias the scanner's buffer: it is valid until the next token.
type attr struct {
	name  string
	value []byte
}

// tokenKind says what the scanner read. Comments, processing instructions and
// directives are tokenOther: they matter only for their syntax.
type tokenKind int8

const (
	tokenOther tokenKind = iota
	tokenStart
	tokenEnd
	tokenText
)

// scanError is a document that is not well-formed, at a line.
type scanError struct {
	line int
	msg  string
}

func (e *scanError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// errTokenTooLong stops the scanner when one token outgrows maxTokenBytes.
var errTokenTooLong = errors.New("token too long")

// errShort is what a token's scan returns when it ran off the end of the buffered data
// before the token's end; msg is the syntax error that makes when the data ends there.
type errShort struct{ msg string }

func (e errShort) Error() string { return e.msg }

var (
	shortEOF   = errShort{"unexpected EOF"}
	shortCDATA = errShort{"unexpected EOF in CDATA section"}
)

func newScanner(r io.Reader) *scanner {
	return &scanner{r: r, buf: make([]byte, readBufferSize), line: 1, names: make(map[string]string)}
}

// next reads the next token. Its errors: io.EOF at the end of the input; a *scanError
// for a document that is not well-formed; errTokenTooLong; or the reader's own error.
func (s *scanner) next() (tokenKind, error) {
	if s.empty {
		s.empty = false
		return tokenEnd, nil
	}
	s.pos += s.n
	s.n = 0
	if s.pending != nil {
		return tokenOther, s.pending
	}
	s.final, s.long = false, false
	for {
		s.scratch = s.scratch[:0]
		kind, n, err := s.scan()
		if err == nil {
			s.n = n
			return kind, nil
		}
		var short errShort
		if !errors.As(err, &short) {
			return kind, err
		}
		if s.final {
			return tokenOther, s.shortErr(short.msg)
		}
		s.more()
	}
}

// scan reads one token from buf[pos:end], at most maxTokenBytes of it, and returns its
// kind and length; errShort when it ran off the end of the data.
func (s *scanner) scan() (tokenKind, int, error) {
	tok := s.buf[s.pos:min(s.end, s.pos+maxTokenBytes)]
	if len(tok) == 0 {
		if s.final {
			return tokenOther, 0, s.rerr // io.EOF at the end of a document, or why the reader failed
		}
		return tokenOther, 0, shortEOF
	}
	if tok[0] != '<' {
		return s.scanText(tok)
	}
	if len(tok) < 2 {
		return tokenOther, 0, shortEOF
	}
	switch tok[1] {
	case '/':
		return s.scanEnd(tok)
	case '?':
		return s.scanProcInst(tok)
	case '!':
		if len(tok) < 3 {
			return tokenOther, 0, shortEOF
		}
		switch tok[2] {
		case '-':
			return s.scanComment(tok)
		case '[':
			return s.scanCDATA(tok)
		}
		return s.scanDirective(tok)
	}
	return s.scanStart(tok)
}

// more reads more of the input after the buffered data, moving the current token to
// the start of the buffer or growing it; it sets final when there is no more to read
// or the token is as long as it may be.
func (s *scanner) more() {
	if s.end-s.pos >= maxTokenBytes {
		s.final, s.long = true, true
		return
	}
	if s.rerr != nil {
		s.final = true
		return
	}
	if s.end == len(s.buf) {
		if s.pos > 0 {
			s.countLines(s.pos)
			n := copy(s.buf, s.buf[s.pos:s.end])
			s.pos, s.end, s.lineAt = 0, n, 0
		}
		if s.end == len(s.buf) {
			grown := make([]byte, min(2*len(s.buf), maxTokenBytes+readBufferSize))
			copy(grown, s.buf[:s.end])
			s.buf = grown
		}
	}
	// A long token is scanned again from its start after each read: reading at least
	// a quarter of what is buffered each time keeps that linear in its length.
	want, got := 1, 0
	if window := s.end - s.pos; window > 4<<10 {
		want = window / 4
	}
	for empty := 0; got < want && s.end < len(s.buf); {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		got += n
		if err != nil {
			s.rerr = err
			return
		}
		if n == 0 {
			if empty++; empty == 100 {
				s.rerr = io.ErrNoProgress
				return
			}
		}
	}
}

// shortErr is the error of a token cut short by the end of what could be read.
func (s *scanner) shortErr(msg string) error {
	switch {
	case s.long:
		return errTokenTooLong
	case errors.Is(s.rerr, io.EOF):
		return s.errAt(s.end-s.pos, msg)
	}
	return s.rerr
}

// failed reports whether the reader failed, rather than ended.
func (s *scanner) failed() bool { return s.rerr != nil && !errors.Is(s.rerr, io.EOF) && !s.long }

// countLines counts the lines of buf up to off.
func (s *scanner) countLines(off int) {
	if off > s.lineAt {
		s.line += bytes.Count(s.buf[s.lineAt:off], []byte{'\n'})
		s.lineAt = off
	}
}

// lineAfter returns the line of the end of the current token, where encoding/xml's
// InputPos would be after reading it.
func (s *scanner) lineAfter() int {
	s.countLines(s.pos + s.n)
	return s.line
}

// errAt returns a syntax error found after reading i bytes of the current token.
func (s *scanner) errAt(i int, msg string) error {
	s.countLines(s.pos)
	return &scanError{line: s.line + bytes.Count(s.buf[s.pos:s.pos+i], []byte{'\n'}), msg: msg}
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func skipSpace(tok []byte, i int) int {
	for i < len(tok) && isSpaceByte(tok[i]) {
		i++
	}
	return i
}

// isNameByte reports the bytes below utf8.RuneSelf that may be in a name, as
// encoding/xml's readName does; every byte from utf8.RuneSelf up may be too.
var isNameByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '_' || c == ':' || c == '.' || c == '-' || c >= utf8.RuneSelf
	}
	return t
}()

// readName reads a name at tok[i:] as encoding/xml's readName does and returns its end;
// ok is false when no name starts there, errShort when the data ends inside it.
func readName(tok []byte, i int) (end int, ok bool, err error) {
	if i >= len(tok) {
		return i, false, shortEOF
	}
	if !isNameByte[tok[i]] {
		return i, false, nil
	}
	for i++; i < len(tok); i++ {
		if !isNameByte[tok[i]] {
			return i, true, nil
		}
	}
	return i, false, shortEOF
}

// validName reports whether name is an XML name as encoding/xml's isName decides: an
// ASCII name must not start with a digit, '.' or '-'; any other name is checked by
// encoding/xml itself, which has the Unicode tables (a rare case).
func validName(name []byte) bool {
	ascii := true
	for _, c := range name {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		c := name[0]
		return c != '.' && c != '-' && (c < '0' || c > '9')
	}
	// A colon is valid anywhere in a name, and so is '_'; without colons the name is
	// one encoding/xml reads whole, as a start tag's.
	probe := "<" + strings.ReplaceAll(string(name), ":", "_") + ">"
	_, err := xml.NewDecoder(strings.NewReader(probe)).RawToken()
	return err == nil
}

// readTagName reads the name of a tag or attribute at tok[i:], as encoding/xml's nsname does,
// and returns it, interned, with its end; a name with more than one colon, or none,
// is the syntax error missing.
func (s *scanner) readTagName(tok []byte, i int, missing string) (string, int, error) {
	if i >= len(tok) {
		return "", 0, shortEOF
	}
	if !isNameByte[tok[i]] {
		return "", 0, s.errAt(i, missing)
	}
	end := i + 1
	for end < len(tok) && isNameByte[tok[end]] {
		end++
	}
	if end >= len(tok) {
		return "", 0, shortEOF
	}
	colons, ascii := 0, true
	for _, c := range tok[i:end] {
		if c == ':' {
			colons++
		} else if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	name := tok[i:end]
	if c := name[0]; ascii && (c == '.' || c == '-' || '0' <= c && c <= '9') || !ascii && !validName(name) {
		return "", 0, s.errAt(end, "invalid XML name: "+string(name))
	}
	if colons > 1 {
		return "", 0, s.errAt(end, missing)
	}
	return s.intern(name), end, nil
}

// intern returns b as a string, the same one for the same bytes, up to a bounded number
// of names.
func (s *scanner) intern(b []byte) string {
	slot := &s.recent[(len(b)*31+int(b[0])*7+int(b[len(b)-1]))&255]
	if *slot == string(b) {
		return *slot
	}
	name, ok := s.names[string(b)]
	if !ok {
		name = string(b)
		if len(s.names) < 1024 {
			s.names[name] = name
		}
	}
	*slot = name
	return name
}

// localName returns the part of a name after its prefix, as encoding/xml's nsname
// splits it.
func localName(name string) string {
	if space, local, ok := strings.Cut(name, ":"); ok && space != "" && local != "" {
		return local
	}
	return name
}

func (s *scanner) scanStart(tok []byte) (tokenKind, int, error) {
	name, i, err := s.readTagName(tok, 1, "expected element name after <")
	if err != nil {
		return tokenOther, 0, err
	}
	s.name = name
	s.attrs = s.attrs[:0]
	for {
		i = skipSpace(tok, i)
		if i >= len(tok) {
			return tokenOther, 0, shortEOF
		}
		switch tok[i] {
		case '/':
			if i+1 >= len(tok) {
				return tokenOther, 0, shortEOF
			}
			if tok[i+1] != '>' {
				return tokenOther, 0, s.errAt(i+2, "expected /> in element")
			}
			s.empty = true
			return tokenStart, i + 2, nil
		case '>':
			return tokenStart, i + 1, nil
		}
		var a attr
		a.name, i, err = s.readTagName(tok, i, "expected attribute name in element")
		if err != nil {
			return tokenOther, 0, err
		}
		i = skipSpace(tok, i)
		if i >= len(tok) {
			return tokenOther, 0, shortEOF
		}
		if tok[i] != '=' {
			return tokenOther, 0, s.errAt(i+1, "attribute name without = in element")
		}
		i = skipSpace(tok, i+1)
		if i >= len(tok) {
			return tokenOther, 0, shortEOF
		}
		q := tok[i]
		if q != '"' && q != '\'' {
			return tokenOther, 0, s.errAt(i+1, "unquoted or missing attribute value in element")
		}
		a.value, i, err = s.attrValue(tok, i+1, q)
		if err != nil {
			return tokenOther, 0, err
		}
		s.attrs = append(s.attrs, a)
	}
}

// attrValue reads a quoted value at tok[i:] up to its closing quote q, and returns it
// decoded and the index after the quote.
func (s *scanner) attrValue(tok []byte, i int, q byte) ([]byte, int, error) {
	for j := i; j < len(tok); j++ {
		switch c := tok[j]; {
		case c == q:
			return tok[i:j], j + 1, nil
		case c == '&' || c == '<' || c == '\r' || c >= utf8.RuneSelf || c < ' ' && c != '\t' && c != '\n':
			return s.decodeText(tok, i, int(q), false)
		}
	}
	if s.final {
		return s.decodeText(tok, i, int(q), false) // what is there may be invalid before it ends
	}
	return nil, 0, shortEOF
}

func (s *scanner) scanEnd(tok []byte) (tokenKind, int, error) {
	name, i, err := s.readTagName(tok, 2, "expected element name after </")
	if err != nil {
		return tokenOther, 0, err
	}
	i = skipSpace(tok, i)
	if i >= len(tok) {
		return tokenOther, 0, shortEOF
	}
	if tok[i] != '>' {
		return tokenOther, 0, s.errAt(i+1, "invalid characters between </"+localName(name)+" and >")
	}
	s.name = name
	return tokenEnd, i + 1, nil
}

// scanText reads character data up to the next '<' or the end of the input.
func (s *scanner) scanText(tok []byte) (tokenKind, int, error) {
	end := bytes.IndexByte(tok, '<')
	if end < 0 && !s.final {
		return tokenOther, 0, shortEOF
	}
	if end < 0 {
		end = len(tok)
	}
	plain := true
	for _, c := range tok[:end] {
		if !isSpaceByte(c) {
			plain = false
			break
		}
	}
	n := end
	if plain {
		s.text = tok[:end]
	} else {
		text, i, err := s.decodeText(tok, 0, -1, false)
		if err != nil {
			return tokenOther, 0, err
		}
		s.text, n = text, i
	}
	if s.final && n == len(tok) && (s.long || s.failed()) {
		// Cut short by the limit or a failing reader: the text read is a token, and
		// the next call reports why it ended, as encoding/xml does.
		s.pending = s.shortErr("")
	}
	return tokenText, n, nil
}

// decodeText reads text at tok[i:] as encoding/xml's Decoder.text does: up to the
// quote when quote >= 0 (an attribute value, the quote consumed), up to ]]> when cdata
// (consumed), else up to '<' (not consumed) or the end of the input. It replaces
// entities (except in CDATA) and line ends, and checks that the result is UTF-8 made
// of XML characters. It returns the text, in s.scratch, and its end.
func (s *scanner) decodeText(tok []byte, i int, quote int, cdata bool) ([]byte, int, error) {
	var b0, b1 byte
	trunc := 0
	closed := false
	start := len(s.scratch)
	out := s.scratch
Input:
	for {
		if i >= len(tok) {
			if !s.final {
				return nil, 0, shortEOF
			}
			if cdata {
				return nil, 0, shortCDATA
			}
			break Input
		}
		b := tok[i]
		i++
		if quote < 0 && b0 == ']' && b1 == ']' && b == '>' {
			if cdata {
				trunc = 2
				break Input
			}
			return nil, 0, s.errAt(i, "unescaped ]]> not in CDATA section")
		}
		if b == '<' && !cdata {
			if quote >= 0 {
				return nil, 0, s.errAt(i, "unescaped < inside quoted string")
			}
			i--
			break Input
		}
		if quote >= 0 && b == byte(quote) {
			closed = true
			break Input
		}
		if b == '&' && !cdata {
			var err error
			if out, i, err = s.entity(tok, i, out); err != nil {
				return nil, 0, err
			}
			b0, b1 = 0, 0
			continue Input
		}
		switch {
		case b == '\r':
			out = append(out, '\n')
		case b1 == '\r' && b == '\n':
		default:
			out = append(out, b)
		}
		b0, b1 = b1, b
	}
	s.scratch = out
	data := out[start : len(out)-trunc]
	for buf := data; len(buf) > 0; {
		r, size := utf8.DecodeRune(buf)
		if r == utf8.RuneError && size == 1 {
			return nil, 0, s.shortOr(i, tok, "invalid UTF-8")
		}
		buf = buf[size:]
		if !isInCharacterRange(r) {
			return nil, 0, s.shortOr(i, tok, fmt.Sprintf("illegal character code %U", r))
		}
	}
	if quote >= 0 && !closed {
		return nil, 0, shortEOF // the value ran to the end of the input: it is cut short
	}
	return data, i, nil
}

// shortOr is the syntax error msg after reading i bytes of tok, unless the reader
// failed there, which is the error then.
func (s *scanner) shortOr(i int, tok []byte, msg string) error {
	if i >= len(tok) && s.final && s.failed() {
		return s.rerr
	}
	return s.errAt(i, msg)
}

// entity reads the entity after an '&' at tok[i-1], as encoding/xml does, and appends
// its text to out; it returns out and the index after the entity.
func (s *scanner) entity(tok []byte, i int, out []byte) ([]byte, int, error) {
	before := len(out)
	out = append(out, '&')
	if i >= len(tok) {
		return nil, 0, shortEOF
	}
	b := tok[i]
	i++
	var (
		text     string
		haveText bool
	)
	if b == '#' {
		out = append(out, b)
		if i >= len(tok) {
			return nil, 0, shortEOF
		}
		b = tok[i]
		i++
		base := 10
		if b == 'x' {
			base = 16
			out = append(out, b)
			if i >= len(tok) {
				return nil, 0, shortEOF
			}
			b = tok[i]
			i++
		}
		digits := len(out)
		for '0' <= b && b <= '9' || base == 16 && ('a' <= b && b <= 'f' || 'A' <= b && b <= 'F') {
			out = append(out, b)
			if i >= len(tok) {
				return nil, 0, shortEOF
			}
			b = tok[i]
			i++
		}
		if b != ';' {
			i--
		} else {
			n, err := strconv.ParseUint(string(out[digits:]), base, 64)
			out = append(out, ';')
			if err == nil && n <= unicode.MaxRune {
				text, haveText = string(rune(n)), true
			}
		}
	} else {
		i--
		end, ok, err := readName(tok, i)
		if err != nil {
			return nil, 0, err
		}
		if ok {
			out = append(out, tok[i:end]...)
		}
		i = end
		if i >= len(tok) {
			return nil, 0, shortEOF
		}
		b = tok[i]
		i++
		if b != ';' {
			i--
		} else {
			name := out[before+1:]
			out = append(out, ';')
			if len(name) > 0 && validName(name) {
				var r rune
				if r, haveText = xmlEntity[string(name)]; haveText {
					text = string(r)
				} else {
					text, haveText = xml.HTMLEntity[string(name)]
				}
			}
		}
	}
	if haveText {
		return append(out[:before], text...), i, nil
	}
	ent := string(out[before:])
	if ent[len(ent)-1] != ';' {
		ent += " (no semicolon)"
	}
	return nil, 0, s.errAt(i, "invalid character entity "+ent)
}

// xmlEntity are the entities every XML document may use.
var xmlEntity = map[string]rune{"lt": '<', "gt": '>', "amp": '&', "apos": '\'', "quot": '"'}

// isInCharacterRange reports whether r is an XML character (the Char production).
func isInCharacterRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

func (s *scanner) scanCDATA(tok []byte) (tokenKind, int, error) {
	for k := range len("CDATA[") {
		if 3+k >= len(tok) {
			return tokenOther, 0, shortEOF
		}
		if tok[3+k] != "CDATA["[k] {
			return tokenOther, 0, s.errAt(3+k+1, "invalid <![ sequence")
		}
	}
	if !bytes.Contains(tok[9:], []byte("]]>")) && !s.final {
		return tokenOther, 0, shortCDATA
	}
	text, n, err := s.decodeText(tok, 9, -1, true)
	if err != nil {
		return tokenOther, 0, err
	}
	s.text = text
	return tokenText, n, nil
}

func (s *scanner) scanComment(tok []byte) (tokenKind, int, error) {
	if len(tok) < 4 {
		return tokenOther, 0, shortEOF
	}
	if tok[3] != '-' {
		return tokenOther, 0, s.errAt(4, "invalid sequence <!- not part of <!--")
	}
	k := bytes.Index(tok[4:], []byte("--"))
	if k < 0 || 4+k+2 >= len(tok) {
		return tokenOther, 0, shortEOF
	}
	end := 4 + k + 2
	if tok[end] != '>' {
		return tokenOther, 0, s.errAt(end+1, `invalid sequence "--" not allowed in comments`)
	}
	return tokenOther, end + 1, nil
}

func (s *scanner) scanProcInst(tok []byte) (tokenKind, int, error) {
	end, ok, err := readName(tok, 2)
	if err != nil {
		return tokenOther, 0, err
	}
	if !ok {
		return tokenOther, 0, s.errAt(end, "expected target name after <?")
	}
	target := tok[2:end]
	if !validName(target) {
		return tokenOther, 0, s.errAt(end, "invalid XML name: "+string(target))
	}
	i := skipSpace(tok, end)
	k := bytes.Index(tok[i:], []byte("?>"))
	if k < 0 {
		return tokenOther, 0, shortEOF
	}
	n := i + k + 2
	if string(target) == "xml" {
		content := string(tok[i : i+k])
		if ver := procInst("version", content); ver != "" && ver != "1.0" {
			return tokenOther, 0, s.errAt(n, fmt.Sprintf("xml: unsupported version %q; only version 1.0 is supported", ver))
		}
		if enc := procInst("encoding", content); enc != "" && !strings.EqualFold(enc, "utf-8") {
			return tokenOther, 0, s.errAt(n, fmt.Sprintf("xml: encoding %q declared but Decoder.CharsetReader is nil", enc))
		}
	}
	return tokenOther, n, nil
}

// scanDirective reads a <!DOCTYPE …> or other directive as encoding/xml does: up to
// the first '>' outside quotes and nested angle brackets, with comments inside.
func (s *scanner) scanDirective(tok []byte) (tokenKind, int, error) {
	i := 3 // past <! and the directive's first byte, which is taken as is
	var inquote byte
	depth := 0
	next := func() (byte, bool) {
		if i >= len(tok) {
			return 0, false
		}
		i++
		return tok[i-1], true
	}
	for {
		b, ok := next()
		if !ok {
			return tokenOther, 0, shortEOF
		}
		if inquote == 0 && b == '>' && depth == 0 {
			return tokenOther, i, nil
		}
	handle:
		switch {
		case b == inquote:
			inquote = 0
		case inquote != 0:
		case b == '\'' || b == '"':
			inquote = b
		case b == '>':
			depth--
		case b == '<':
			for k := range len("!--") {
				if b, ok = next(); !ok {
					return tokenOther, 0, shortEOF
				}
				if b != "!--"[k] {
					depth++
					goto handle
				}
			}
			var c0, c1 byte
			for {
				if b, ok = next(); !ok {
					return tokenOther, 0, shortEOF
				}
				if c0 == '-' && c1 == '-' && b == '>' {
					break
				}
				c0, c1 = c1, b
			}
		}
	}
}

// procInst returns the value of param in the content of an <?xml …?> declaration, as
// encoding/xml reads it (its procInst, copied).
func procInst(param, s string) string {
	param += "="
	lenp := len(param)
	i := 0
	var sep byte
	for i < len(s) {
		sub := s[i:]
		k := strings.Index(sub, param)
		if k < 0 || lenp+k >= len(sub) {
			return ""
		}
		i += lenp + k + 1
		if c := sub[lenp+k]; c == '\'' || c == '"' {
			sep = c
			break
		}
	}
	if sep == 0 {
		return ""
	}
	j := strings.IndexByte(s[i:], sep)
	if j < 0 {
		return ""
	}
	return s[i : i+j]
}
