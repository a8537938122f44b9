package auth

import (
	"fmt"
	"strings"
)

// globSeparators are the characters a '*' never matches: they separate the
// account, path and name of an ARN and the name and project of an email,
// so a tenant-chosen value cannot stretch a rule across them.
const globSeparators = "/:@"

// Placeholders a target glob may hold, expanded to the object's namespace
// and ServiceAccount name before matching.
const (
	placeholderNamespace      = "{namespace}"
	placeholderServiceAccount = "{serviceAccount}"
)

// glob is a pattern in which only '*' is special. It is kept as the
// literal pieces between its stars, so text put into a piece (a
// placeholder's value) is always literal.
type glob struct {
	text   string   // as written, for messages
	pieces []string // len(pieces)-1 stars sit between them
}

// parseGlob checks a pattern of the policy: only '*' is special, and
// placeholders only where allowed. Every other glob syntax is refused, so
// an operator never writes a pattern that means more than it seems to.
func parseGlob(text string, placeholders bool) (glob, error) {
	switch {
	case text == "":
		return glob{}, fmt.Errorf("is empty")
	case strings.Contains(text, "**"):
		return glob{}, fmt.Errorf("has '**': only a single '*' is special, and it never matches %s",
			quoteSeparators())
	case strings.ContainsAny(text, "?[]"):
		return glob{}, fmt.Errorf("has %s: only '*' is special in a pattern",
			quoteChar(text[strings.IndexAny(text, "?[]")]))
	}
	rest := text
	if placeholders {
		rest = strings.ReplaceAll(strings.ReplaceAll(rest, placeholderNamespace, ""), placeholderServiceAccount, "")
	}
	if i := strings.IndexAny(rest, "{}"); i >= 0 {
		if !placeholders {
			return glob{}, fmt.Errorf("has %s: namespace patterns take no placeholders", quoteChar(rest[i]))
		}
		return glob{}, fmt.Errorf("has %s outside a placeholder: the placeholders are %s and %s",
			quoteChar(rest[i]), placeholderNamespace, placeholderServiceAccount)
	}
	return glob{text: text, pieces: strings.Split(text, "*")}, nil
}

func quoteChar(c byte) string { return "'" + string(c) + "'" }

func quoteSeparators() string { return "'/', ':' or '@'" }

// expand returns g with its placeholders replaced by namespace and name.
// The values land inside pieces, so a '*' in them would match only itself.
func (g glob) expand(namespace, name string) glob {
	if !strings.Contains(g.text, "{") {
		return g
	}
	r := strings.NewReplacer(placeholderNamespace, namespace, placeholderServiceAccount, name)
	pieces := make([]string, len(g.pieces))
	for i, p := range g.pieces {
		pieces[i] = r.Replace(p)
	}
	return glob{text: r.Replace(g.text), pieces: pieces}
}

// match reports whether s matches g, each '*' matching any run of
// characters other than globSeparators. It takes the leftmost place for
// each piece: a star's run then is as short as it can be, which leaves the
// most text to the pieces after it and the fewest separators to the star,
// so no other choice could match where it fails. Time is linear in s for
// each piece, whatever the tenant writes.
func (g glob) match(s string) bool {
	if len(g.pieces) == 1 {
		return s == g.pieces[0]
	}
	first, last := g.pieces[0], g.pieces[len(g.pieces)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	pos, end := len(first), len(s)-len(last)
	for _, p := range g.pieces[1 : len(g.pieces)-1] {
		i := strings.Index(s[pos:end], p)
		if i < 0 || strings.ContainsAny(s[pos:pos+i], globSeparators) {
			return false
		}
		pos += i + len(p)
	}
	return !strings.ContainsAny(s[pos:end], globSeparators)
}
