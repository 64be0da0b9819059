package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
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
// and others get 403: an operator who exposes the API must set API_KEYS. Behind a
// reverse proxy on the same host every client looks local, so set API_KEYS there too;
// X-Forwarded-For is never trusted.
func (h *Handler) requireKey(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(h.apiKeys) == 0 {
			if !isLoopback(r.RemoteAddr) {
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

// validKey reports whether token is one of the API keys, comparing with every key in
// constant time.
func (h *Handler) validKey(token string) bool {
	sum := sha256.Sum256([]byte(token))
	match := 0
	for _, k := range h.apiKeys {
		match |= subtle.ConstantTimeCompare(sum[:], k[:])
	}
	return match == 1
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
