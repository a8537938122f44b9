// Package quote renders text that tenants wrote (annotation values, names in
// manifests) for errors, logs and terminals: quoted, with every control,
// format and invalid byte escaped, and cut to a short prefix, so a hostile
// value can neither forge lines, move a terminal's cursor nor make an error
// too large for a Kubernetes status condition.
package quote

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxBytes is how much of a value Tenant shows. Longer values are cut there
// and say how long they were, so an error stays a few KiB whatever the input.
const MaxBytes = 256

// Tenant returns s in single quotes, escaped and cut to MaxBytes of its
// bytes: 'arn:aws:iam::…', with \n, \x1b, \u202e and the like spelled out,
// and ' and \ escaped so the quoted form is unambiguous.
func Tenant(s string) string {
	cut := ""
	if len(s) > MaxBytes {
		// Back up to a rune boundary so a cut never invents an invalid byte.
		n := MaxBytes
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		cut = fmt.Sprintf("… (%d bytes in all)", len(s))
		s = s[:n]
	}
	var b strings.Builder
	b.Grow(len(s) + 2 + len(cut))
	b.WriteByte('\'')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\'' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case strconv.IsPrint(r):
			b.WriteRune(r)
		default:
			// strconv's rune quoting spells out \n, \t, \x1b, \u202e, ...
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	b.WriteByte('\'')
	b.WriteString(cut)
	return b.String()
}
