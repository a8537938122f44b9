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

// MaxErrorBytes bounds an error message made safe by Error: Kubernetes
// refuses a status condition message over 32 KiB, and a person reads the
// first lines anyway.
const MaxErrorBytes = 4 << 10

// Tenant returns s in single quotes, escaped and cut to MaxBytes of its
// bytes: 'arn:aws:iam::…', with \n, \x1b, \u202e and the like spelled out,
// and ' and \ escaped so the quoted form is unambiguous.
func Tenant(s string) string {
	var b strings.Builder
	b.Grow(min(len(s), MaxBytes) + 2)
	b.WriteByte('\'')
	rest := write(&b, s, MaxBytes, true)
	b.WriteByte('\'')
	b.WriteString(rest)
	return b.String()
}

// Clean returns s with every control, format and invalid byte escaped (no
// quotes added), cut to max bytes of s: for text that is mostly ours but
// may carry a tenant's, such as a message from an upstream library or a
// cell of a table.
func Clean(s string, max int) string {
	if isClean(s) && len(s) <= max {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), max))
	b.WriteString(write(&b, s, max, false))
	return b.String()
}

// Error returns err with a message made safe by Clean and cut to
// MaxErrorBytes, or err itself when its message already is. errors.Is and
// errors.As see through it.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if isClean(msg) && len(msg) <= MaxErrorBytes {
		return err
	}
	return &cleanError{msg: Clean(msg, MaxErrorBytes), err: err}
}

type cleanError struct {
	msg string
	err error
}

func (e *cleanError) Error() string { return e.msg }
func (e *cleanError) Unwrap() error { return e.err }

// isClean reports whether s is valid UTF-8 with only printable runes
// (spaces included).
func isClean(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

// write writes the escaped form of at most max bytes of s to b, and
// returns what to append after any closing quote: a note of the full
// length when s was cut.
func write(b *strings.Builder, s string, max int, quoting bool) string {
	cut := ""
	if len(s) > max {
		// Back up to a rune boundary so a cut never invents an invalid byte.
		n := max
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		cut = fmt.Sprintf("… (%d bytes in all)", len(s))
		s = s[:n]
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(b, `\x%02x`, s[i])
		case quoting && (r == '\'' || r == '\\'):
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
	return cut
}
