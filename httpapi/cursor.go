package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strconv"
	"sync"

	"boxoffice/catalog"
)

// The paginated search's query parameters.
const (
	paramLimit  = "limit"
	paramCursor = "cursor"
)

// maxLimit is the largest page a paginated search answers.
const maxLimit = 1000

// MinCursorKeyBytes is the shortest key Config.CursorKey accepts: 128 bits.
const MinCursorKeyBytes = 16

// A cursor is opaque to clients: base64url (unpadded) of
//
//	format (1 byte, cursorFormat) | version | from | to | start (8 bytes each, big endian) | id (16) | mac (16)
//
// where mac is HMAC-SHA256 of everything before it under the API's cursor key, cut to
// 128 bits. It binds the page to the catalog version the first page was read at and to
// the window (from and to as searchKey holds them), and resumes after the position
// (start, id) of the previous page's last plan.
const (
	cursorFormat   = 1
	cursorBodyLen  = 1 + 4*8 + 16
	cursorMACLen   = 16
	cursorLen      = cursorBodyLen + cursorMACLen
	cursorTextLen  = (cursorLen*8 + 5) / 6 // base64 without padding
	cursorAdvice   = "start again from the first page, without a cursor"
	limitAdvice    = "give a whole number from 1 to 1000"
	cursorNotOurs  = "not a cursor of this API, or altered"
	cursorNeedsLim = "give limit with it (1 to 1000)"
)

// errCursorExpired marks a cursor whose catalog version is no longer kept: 410.
var errCursorExpired = errors.New("cursor expired")

// cursor is a decoded cursor: the snapshot and window a paginated search reads, and
// where its next page starts.
type cursor struct {
	version  int64
	from, to int64 // the window, as searchKey holds it
	after    catalog.Position
}

// cursorCodec encodes and checks cursors under one key. It is safe for concurrent use.
type cursorCodec struct {
	macs sync.Pool // hash.Hash: HMAC-SHA256 under the key
}

// newCursorCodec returns a codec whose cursors are signed with key.
func newCursorCodec(key []byte) *cursorCodec {
	key = append([]byte(nil), key...)
	c := &cursorCodec{}
	c.macs.New = func() any { return hmac.New(sha256.New, key) }
	return c
}

// sum returns the MAC of body.
func (c *cursorCodec) sum(body []byte) [cursorMACLen]byte {
	m := c.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(body)
	var full [sha256.Size]byte
	m.Sum(full[:0])
	c.macs.Put(m)
	return [cursorMACLen]byte(full[:cursorMACLen])
}

// appendCursor appends cur's text to b.
func (c *cursorCodec) appendCursor(b []byte, cur cursor) []byte {
	var raw [cursorLen]byte
	raw[0] = cursorFormat
	binary.BigEndian.PutUint64(raw[1:], uint64(cur.version))
	binary.BigEndian.PutUint64(raw[9:], uint64(cur.from))
	binary.BigEndian.PutUint64(raw[17:], uint64(cur.to))
	binary.BigEndian.PutUint64(raw[25:], uint64(cur.after.Start))
	copy(raw[33:], cur.after.ID[:])
	mac := c.sum(raw[:cursorBodyLen])
	copy(raw[cursorBodyLen:], mac[:])
	return base64.RawURLEncoding.AppendEncode(b, raw[:])
}

// decode reads a cursor's text. Anything but a cursor this codec made, unaltered, is
// an error, which says so and nothing more.
func (c *cursorCodec) decode(s string) (cursor, error) {
	var raw [cursorLen]byte
	if len(s) != cursorTextLen {
		return cursor{}, errors.New(cursorNotOurs)
	}
	if n, err := base64.RawURLEncoding.Decode(raw[:], []byte(s)); err != nil || n != cursorLen {
		return cursor{}, errors.New(cursorNotOurs)
	}
	mac := c.sum(raw[:cursorBodyLen])
	if !hmac.Equal(mac[:], raw[cursorBodyLen:]) || raw[0] != cursorFormat {
		return cursor{}, errors.New(cursorNotOurs)
	}
	return cursor{
		version: int64(binary.BigEndian.Uint64(raw[1:])),
		from:    int64(binary.BigEndian.Uint64(raw[9:])),
		to:      int64(binary.BigEndian.Uint64(raw[17:])),
		after: catalog.Position{
			Start: int64(binary.BigEndian.Uint64(raw[25:])),
			ID:    catalog.ID(raw[33:cursorBodyLen]),
		},
	}, nil
}

// pageRequest is what the limit and cursor parameters ask for: a page of at most
// limit plans, after cur when it is set.
type pageRequest struct {
	limit int
	cur   *cursor
}

// parsePage reads the limit and cursor parameters of a search of win: paged is false
// when neither is given (the search answers the whole window, as it always did). A
// cursor must come with limit, be one this API made, unaltered, and be for win. Errors
// wrap ErrBadRequest and name the parameter.
func (c *cursorCodec) parsePage(q url.Values, win catalog.Window) (pr pageRequest, paged bool, err error) {
	lims, curs := q[paramLimit], q[paramCursor]
	if len(lims) == 0 && len(curs) == 0 {
		return pageRequest{}, false, nil
	}
	switch {
	case len(lims) > 1:
		return pageRequest{}, true, badRequest(fmt.Errorf("%s: given %d times; give it once", paramLimit, len(lims)))
	case len(curs) > 1:
		return pageRequest{}, true, badRequest(fmt.Errorf("%s: given %d times; give it once", paramCursor, len(curs)))
	case len(lims) == 0:
		return pageRequest{}, true, badRequest(fmt.Errorf("%s: %s", paramCursor, cursorNeedsLim))
	}
	n, err := strconv.Atoi(lims[0])
	if err != nil || n < 1 || n > maxLimit || lims[0][0] == '+' {
		return pageRequest{}, true, badRequest(fmt.Errorf("%s: %q: not a page size; %s", paramLimit, lims[0], limitAdvice))
	}
	pr.limit = n
	if len(curs) == 0 || curs[0] == "" {
		return pr, true, nil
	}
	cur, err := c.decode(curs[0])
	if err != nil {
		return pageRequest{}, true, badRequest(fmt.Errorf("%s: %w; %s", paramCursor, err, cursorAdvice))
	}
	if k := newSearchKey(0, win); k.from != cur.from || k.to != cur.to {
		return pageRequest{}, true, badRequest(fmt.Errorf("%s: made for another window; give the starts_at and ends_at of its first page, or %s",
			paramCursor, cursorAdvice))
	}
	pr.cur = &cur
	return pr, true, nil
}
