package annotation

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/identitychain/auth/internal/quote"
)

// MaxValueBytes is the largest annotation value Decode parses, checked
// before any parsing. It is sized for the largest legitimate value: the
// aws.auth.fluxcd.io/assume-role annotation with every field at STS's
// limits (50 session tags of 128-character keys and 256-character values,
// all transitive, a 2,048-character session policy, 10 policy ARNs, a
// 1,224-character external ID) is 31,319 bytes (TestLargestAssumeRoleValue
// in package aws); only IAM paths of hundreds of characters on every ARN
// would take it past the limit, and then it is refused as too large. 32 KiB
// is an eighth of the 256 KiB Kubernetes allows for all annotations of an
// object together, and small enough that parsing any value, hostile or
// not, allocates well under a MiB.
const MaxValueBytes = 32 << 10

// MaxTokens is how many YAML tokens a value may hold: words (text followed
// by a space or tab) and the indicators ',', '[', ']', '{', '}', '&', '*',
// '!', '|', '>', and '-', '?', ':' where they can separate nodes. Each node
// costs yaml.v3 a few hundred bytes and about a microsecond, and each word
// of a scalar an allocation; at 2,048 the worst value allocated 660 KB, at
// 1,024 it allocates 430 KB in half the time. Tokens are counted before
// parsing, inside quoted text too, so a session policy written as a JSON
// string counts its brackets and commas: the largest legitimate value
// counts 640 (tag values full of spaces would count more).
const MaxTokens = 1024

// MaxNesting is how many distinct indentation columns a value may use.
// Nested levels cost the YAML parser more than flat ones; legitimate values
// use fewer than ten.
const MaxNesting = 64

// MaxBrackets is how many flow collections ('[' and '{') a value may open,
// nested or not: a dense 2,048-character session policy written as JSON
// opens about 80.
const MaxBrackets = 128

// prescan checks what can be checked on the bytes of value, so that the YAML
// parser only ever sees text it parses quickly and into one meaning. It
// allocates nothing unless it fails.
func prescan(value string) error {
	if len(value) > MaxValueBytes {
		return &Error{Reason: fmt.Sprintf("the value is %d bytes, more than the limit of %d: shorten it",
			len(value), MaxValueBytes)}
	}
	if strings.TrimSpace(value) == "" {
		return &Error{Reason: "the value is empty: remove the annotation or set its fields"}
	}
	var s scan
	s.line, s.lead = 1, true
	for i := 0; i < len(value); {
		if !s.lead && ordinary[value[i]] {
			// Most bytes are text; skipping them here keeps prescan a few
			// percent of the parse it guards.
			j := i + 1
			for j < len(value) && ordinary[value[j]] {
				j++
			}
			s.col += j - i
			i = j
			continue
		}
		n, err := s.step(value, i)
		if err == nil {
			err = s.limits()
		}
		if err != nil {
			return err
		}
		i += n
	}
	return nil
}

func (s *scan) limits() error {
	switch {
	case s.tokens > MaxTokens:
		return &Error{Line: s.line, Reason: fmt.Sprintf(
			"the value has more than %d YAML tokens (words, and ',', ':', '-', brackets and the like) by line %d: "+
				"write fewer items", MaxTokens, s.line)}
	case s.opens > MaxBrackets:
		return &Error{Line: s.line, Reason: fmt.Sprintf(
			"the value opens more than %d '[' or '{' by line %d: write fewer flow lists and mappings",
			MaxBrackets, s.line)}
	}
	return nil
}

// ordinary marks the printable ASCII bytes step does nothing with but count
// columns, outside a line's leading part.
var ordinary = func() (t [256]bool) {
	for b := 0x21; b < 0x7f; b++ {
		t[b] = true
	}
	for _, b := range []byte("[]{},&*|>!-?:") {
		t[b] = false
	}
	return t
}()

// scan is the state of prescan. The block columns bound the depth of the
// YAML parser's indentation stack: every level it opens starts at the first
// column of a line or just after a leading '-', '?' or ':' indicator, and
// open levels have distinct columns. Counting such columns for every line,
// comments and scalar text aside, over-counts but never under-counts.
type scan struct {
	line    int  // 1-based, for errors
	col     int  // byte column in the line
	lead    bool // still in the line's leading indentation and indicators
	tokens  int
	opens   int
	columns int
	seen    [MaxValueBytes/64 + 1]uint64 // block columns used
}

func (s *scan) step(v string, i int) (int, error) {
	b := v[i]
	switch {
	case b == '\n' || b == '\r':
		n := 1
		if b == '\r' && i+1 < len(v) && v[i+1] == '\n' {
			n = 2
		}
		s.line, s.col, s.lead = s.line+1, 0, true
		return n, nil
	case b == ' ' || b == '\t':
		if !s.lead && !isBlank(v[i-1]) {
			// A blank after text within a line ends a word, which costs
			// yaml.v3 an allocation in a scalar.
			s.tokens++
		}
		s.col++
		return 1, nil
	case b < 0x20 || b == 0x7f:
		return 0, s.refuse(v, i, 1, "a control character", "")
	}
	if s.lead {
		if n, err := s.leading(v, i); n > 0 || err != nil {
			return n, err
		}
	}
	if b >= utf8.RuneSelf {
		return s.nonASCII(v, i)
	}
	prev := byte(' ')
	if i > 0 {
		prev = v[i-1]
	}
	switch b {
	case '[', '{':
		s.opens++
		s.tokens++
	case ']', '}', ',', '&', '*', '|', '>':
		s.tokens++
	case '!':
		s.tokens++
		// yaml.v3 drops the non-specific tag '!' from its nodes, so Decode
		// could not refuse it later; it turns a plain 'true' into a string.
		if mayStartToken(prev) && separates(v, i+1) {
			return 0, &Error{Line: s.line, Reason: fmt.Sprintf(
				"line %d: a '!' standing alone is a YAML tag to some readers: tags are not allowed, remove it", s.line)}
		}
	case '-', '?', ':':
		if separates(v, i+1) || (b != '-' && mayStartToken(prev)) {
			s.tokens++
		}
	}
	s.col++
	return 1, nil
}

// leading is called on the first character of a line that is not
// indentation, and on the first after each leading indicator ('- ', '? ',
// ': ', and '--- ' at the start of a line), so that compact nesting such as
// '- - - a: b' counts its columns. It consumes document markers whole and
// reports how many bytes it consumed.
func (s *scan) leading(v string, i int) (int, error) {
	b := v[i]
	switch {
	case b == '#':
		s.lead = false
		return 0, nil
	case b == '%' && s.col == 0:
		return 0, &Error{Line: s.line, Reason: fmt.Sprintf(
			"line %d: YAML directives ('%%YAML', '%%TAG') are not allowed: remove the line", s.line)}
	}
	if !s.mark(s.col) {
		return 0, &Error{Line: s.line, Reason: fmt.Sprintf(
			"the value uses more than %d indentation columns at line %d: nest it less deeply", MaxNesting, s.line)}
	}
	switch {
	case s.col == 0 && (strings.HasPrefix(v[i:], "---") || strings.HasPrefix(v[i:], "...")) && separates(v, i+3):
		// The first character after a document marker may open a level.
		s.tokens++
		s.col += 3
		return 3, nil
	case (b == '-' || b == '?' || b == ':') && separates(v, i+1) && !flowIndicator(v, i+1):
		// So may the first after a leading block indicator.
	default:
		s.lead = false
	}
	return 0, nil
}

// mark records column c as a block column and reports whether the number of
// distinct ones is still within MaxNesting.
func (s *scan) mark(c int) bool {
	w, bit := c/64, uint64(1)<<(c%64)
	if s.seen[w]&bit == 0 {
		s.seen[w] |= bit
		s.columns++
	}
	return s.columns <= MaxNesting
}

// nonASCII checks one multi-byte character: YAML 1.2 allows only printable
// characters, and those on which YAML readers disagree are refused too.
func (s *scan) nonASCII(v string, i int) (int, error) {
	r, n := utf8.DecodeRuneInString(v[i:])
	switch {
	case r == utf8.RuneError && n == 1:
		return 0, s.refuse(v, i, 1, "a byte that is not UTF-8", "")
	case r >= 0x80 && r <= 0x9f:
		// Includes NEL (U+0085), a line break to YAML 1.1 and yaml.v3 but not to YAML 1.2.
		return 0, s.refuse(v, i, n, "a control character", "")
	case r == 0x2028 || r == 0x2029:
		return 0, s.refuse(v, i, n, "a line or paragraph separator", "which YAML 1.1 readers take for a line break")
	case r == 0xfeff:
		return 0, s.refuse(v, i, n, "a byte order mark", "")
	case r == 0xfffe || r == 0xffff:
		return 0, s.refuse(v, i, n, "a noncharacter", "")
	}
	s.col += n
	return n, nil
}

func (s *scan) refuse(v string, i, n int, what, why string) error {
	if why != "" {
		why = ", " + why
	}
	return &Error{Line: s.line, Reason: fmt.Sprintf("line %d holds %s (%s)%s: remove it",
		s.line, what, quote.Tenant(v[i:i+n]), why)}
}

// separates reports whether the character at i, if any, ends an indicator
// before it: a blank, a line break, the end, or a flow indicator.
func separates(v string, i int) bool {
	if i >= len(v) {
		return true
	}
	switch v[i] {
	case ' ', '\t', '\r', '\n', ',', '[', ']', '{', '}':
		return true
	}
	return false
}

func isBlank(b byte) bool {
	return b == ' ' || b == '\t' || b == '\r' || b == '\n'
}

func flowIndicator(v string, i int) bool {
	return i < len(v) && strings.IndexByte(",[]{}", v[i]) >= 0
}

// mayStartToken reports whether a token can start right after prev: after a
// blank, a line start or an indicator, but not inside a plain word.
func mayStartToken(prev byte) bool {
	switch prev {
	case ' ', '\t', '\r', '\n', ',', '[', ']', '{', '}', ':', '?', '"', '\'':
		return true
	}
	return false
}
