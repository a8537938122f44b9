// Package redact renders configuration that may carry secrets for people:
// a proxy or Git URL may hold a password or token in its user info.
package redact

import "net/url"

// Placeholder replaces the user info of a URL.
const Placeholder = "REDACTED"

// URL returns u as a string with any user info (user name and password)
// replaced by Placeholder, or "" for a nil u. The user name goes too: some
// proxies and Git hosts take a token as the user name.
func URL(u *url.URL) string {
	if u == nil {
		return ""
	}
	if u.User == nil {
		return u.String()
	}
	c := *u
	c.User = url.User(Placeholder)
	return c.String()
}
