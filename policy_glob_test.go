package auth

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// reference is what a glob means, written the slow, obvious way: each '*'
// is a run of anything but the separators.
func reference(g glob) *regexp.Regexp {
	quoted := make([]string, len(g.pieces))
	for i, p := range g.pieces {
		quoted[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`^` + strings.Join(quoted, `[^/:@]*`) + `$`)
}

// FuzzGlobMatch checks the linear-time matcher against the regular
// expression the glob means, for patterns and texts a fuzzer makes up.
func FuzzGlobMatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"arn:aws:iam::222222222222:role/{namespace}-*", "arn:aws:iam::222222222222:role/team-a-x"},
		{"arn:aws:iam::222222222222:role/{namespace}-*", "arn:aws:iam::222222222222:role/team-a-x/y"},
		{"*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
		{"*", ""},
		{"a*", "a:"},
		{"*@p.iam.gserviceaccount.com", "x@y@p.iam.gserviceaccount.com"},
		{"x**y", "xy"},
		{"{serviceAccount}*", "app*"},
	} {
		f.Add(seed[0], seed[1], "team-a", "app")
	}
	f.Fuzz(func(t *testing.T, pattern, text, namespace, name string) {
		// Policies are YAML and targets are validated identities: UTF-8,
		// which the reference needs.
		for _, s := range []string{pattern, text, namespace, name} {
			if !utf8.ValidString(s) {
				return
			}
		}
		g, err := parseGlob(pattern, true)
		if err != nil {
			return
		}
		g = g.expand(namespace, name)
		if got, want := g.match(text), reference(g).MatchString(text); got != want {
			t.Fatalf("glob %q on %q: got %t, the regular expression says %t", g.text, text, got, want)
		}
	})
}
