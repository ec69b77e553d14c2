// Package redact hides secrets in what is printed, saved and logged: the
// one place that knows how a credential inside a URL is redacted, used by
// the configuration (tracking URI, S3 endpoint), the MLflow client and the
// S3 store's messages.
package redact

import (
	"net/url"
	"strings"
)

// Redacted is what a secret is printed, saved and logged as.
const Redacted = "REDACTED"

// URL returns s with the user-info of a URL (user:password@) replaced
// by REDACTED@, so that a tracking URI or S3 endpoint with credentials in it
// can be printed, saved and logged. Strings that are not URLs with user-info
// ("", "host:port", "http://host:port") are returned unchanged; a string
// that looks like one but does not parse is redacted up to its last '@'.
func URL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	authority, path, _ := strings.Cut(rest, "/")
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return s
	}
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = url.User(Redacted)
		return u.String()
	}
	out := scheme + "://" + Redacted + "@" + authority[at+1:]
	if path != "" || strings.HasPrefix(rest[len(authority):], "/") {
		out += "/" + path
	}
	return out
}
