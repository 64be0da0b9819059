// Package redact hides credentials in what boxoffice shows: error messages, logs and
// API responses. Every message that quotes a URL from the configuration or from a
// provider quotes it through URL.
package redact

import (
	"net/url"
	"strings"
)

// Mask replaces each hidden value.
const Mask = "xxxxx"

// URL returns raw, a URL or something meant to be one, with its credentials replaced
// by Mask: the password of its user information (all of it when there is no
// password, as a token alone is a secret too), and the values of query and fragment
// parameters whose names look secret (see SecretKey). It works on the text, not on a
// parse: a malformed URL is redacted as well as a valid one, and a password holding
// '/', '?', '#' or '@' hides everything up to the last '@', never less. A string
// without "://" is also read as keyword=value settings separated by spaces (a
// PostgreSQL connection string), whose secret-looking values are hidden.
func URL(raw string) string {
	rest := raw
	var b strings.Builder
	b.Grow(len(raw))
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		start := 0
		if i := strings.Index(raw, "://"); i >= 0 && i < at {
			start = i + len("://")
		}
		b.WriteString(raw[:start])
		if user, _, ok := strings.Cut(raw[start:at], ":"); ok && !strings.ContainsAny(user, "/?#") {
			b.WriteString(user)
			b.WriteByte(':')
		}
		b.WriteString(Mask)
		rest = raw[at:]
	}
	// The parameters start at the first '?' or '#' of what is left, or at once in
	// settings that are not a URL.
	q := strings.IndexAny(rest, "?#")
	switch {
	case !strings.Contains(raw, "://") && strings.Contains(rest, "="):
		q = 0
	case q < 0:
		b.WriteString(rest)
		return b.String()
	}
	b.WriteString(rest[:q])
	rest = rest[q:]
	for rest != "" {
		if strings.IndexByte(separators, rest[0]) >= 0 {
			b.WriteByte(rest[0])
			rest = rest[1:]
		}
		end := strings.IndexAny(rest, separators)
		if end < 0 {
			end = len(rest)
		}
		param := rest[:end]
		rest = rest[end:]
		key, _, hasValue := strings.Cut(param, "=")
		if hasValue && SecretKey(key) {
			b.WriteString(key)
			b.WriteByte('=')
			b.WriteString(Mask)
			continue
		}
		b.WriteString(param)
	}
	return b.String()
}

// separators end a parameter.
const separators = "?#&; \t\n"

// secretWords are the parts of a parameter name that make its value a secret.
var secretWords = []string{"key", "token", "secret", "pass", "pwd", "auth", "sig", "credential", "session", "cookie", "jwt"}

// SecretKey reports whether a parameter named key (URL-escaped or not, in any case)
// looks like it holds a secret: api_key, access_token, password, X-Amz-Signature,
// sslpassword, client_secret, auth… It errs on the side of hiding.
func SecretKey(key string) bool {
	if k, err := url.QueryUnescape(key); err == nil {
		key = k
	}
	key = strings.ToLower(key)
	for _, w := range secretWords {
		if strings.Contains(key, w) {
			return true
		}
	}
	return false
}
