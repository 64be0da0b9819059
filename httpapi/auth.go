package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// hashKeys returns the SHA-256 of each non-empty key. Comparing hashes takes the same
// time whatever the presented key's length, so neither a key nor its length leaks.
func hashKeys(keys []string) [][32]byte {
	var out [][32]byte
	for _, k := range keys {
		if k != "" {
			out = append(out, sha256.Sum256([]byte(k)))
		}
	}
	return out
}

// requireKey guards a write endpoint. With API keys configured, a request needs
// "Authorization: Bearer <key>" with one of them, or gets 401 with WWW-Authenticate:
// Bearer. With none, only loopback clients (by the connection's address) are served
// and others get 403, unless Config.AllowUnauthenticatedWrites opens them to every
// client: an operator who exposes the API must set API_KEYS. Behind a reverse proxy on
// the same host every client looks local, so set API_KEYS there too; X-Forwarded-For
// never counts here (TRUSTED_PROXIES applies to rate limits only).
func (h *Handler) requireKey(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(h.apiKeys) == 0 {
			if !h.openWrites && !isLoopback(r.RemoteAddr) {
				h.writeError(w, r, fmt.Errorf("%w: write endpoints serve only loopback clients while API_KEYS is not set; "+
					"set API_KEYS on the server and send Authorization: Bearer <key>", errForbidden))
				return
			}
			next(w, r)
			return
		}
		token, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			h.writeError(w, r, fmt.Errorf("%w: missing API key; send Authorization: Bearer <key>", errUnauthorized))
			return
		}
		if !h.validKey(token) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			h.writeError(w, r, fmt.Errorf("%w: invalid API key", errUnauthorized))
			return
		}
		next(w, r)
	}
}

// validKey reports whether token is one of the API keys.
func (h *Handler) validKey(token string) bool { return h.keyOf(token) >= 0 }

// keyOf returns the index of token among the API keys, or -1, comparing with every
// key in constant time.
func (h *Handler) keyOf(token string) int {
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i, k := range h.apiKeys {
		if subtle.ConstantTimeCompare(sum[:], k[:]) == 1 {
			found = i
		}
	}
	return found
}

// keyNames names each API key in the shared rate limits by a prefix of its hash, never
// the key.
func keyNames(hashes [][32]byte) []string {
	names := make([]string, len(hashes))
	for i, h := range hashes {
		names[i] = hex.EncodeToString(h[:8])
	}
	return names
}

// bearerToken returns the token of an Authorization header "Bearer <token>"; the
// scheme is case-insensitive (RFC 9110).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// isLoopback reports whether remoteAddr, an http.Request's "host:port" (or a bare
// address), is a loopback IPv4 or IPv6 address, IPv4-mapped ones included.
func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Unmap().IsLoopback()
}

// requireJSON guards an endpoint that reads a JSON body. A request that declares a
// media type other than application/json (with no charset, or utf-8), or that carries
// a body without declaring one, gets 415 with Accept-Post: application/json. A request
// with neither a body nor a Content-Type passes (POST /api/v1/recalculate needs none).
// Browsers send cross-site form posts as form or text/plain types, so they never get
// through: a page elsewhere cannot post to the API on a visitor's behalf.
func (h *Handler) requireJSON(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := checkJSONType(r.Header.Get("Content-Type"), r.ContentLength); err != nil {
			w.Header()["Accept-Post"] = acceptPostJSON
			h.writeError(w, r, err)
			return
		}
		next(w, r)
	}
}

// acceptPostJSON is the Accept-Post of a 415, shared and never modified.
var acceptPostJSON = []string{"application/json"}

// checkJSONType reports whether a request with the Content-Type header contentType and
// a body of length bytes (-1: unknown) may be read as JSON; the error says why not.
func checkJSONType(contentType string, length int64) error {
	if contentType == "" {
		if length == 0 {
			return nil
		}
		return fmt.Errorf("%w: a request body needs Content-Type: application/json", errUnsupportedMediaType)
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return fmt.Errorf("%w: Content-Type %q; send application/json", errUnsupportedMediaType, truncate(contentType, 64))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fmt.Errorf("%w: charset %q; send application/json in UTF-8", errUnsupportedMediaType, truncate(cs, 32))
	}
	return nil
}

// errUnsupportedMediaType is a body of a type the endpoint does not read: 415.
var errUnsupportedMediaType = errors.New("unsupported media type")
