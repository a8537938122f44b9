package annotation

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// TestPrescanLimits checks each limit at its edge: the value at the limit
// is accepted, one more is refused.
func TestPrescanLimits(t *testing.T) {
	t.Parallel()
	flow := func(items int) string { // 1 token per item, brackets aside
		return "p: [" + strings.Repeat("a,", items-1) + "a]"
	}
	brackets := func(n int) string {
		return "p: [" + strings.Repeat("[", n-1) + strings.Repeat("]", n) // unbalanced: prescan only
	}
	columns := func(n int) string { // n distinct indentation columns, one per line
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "%sa%d:\n", strings.Repeat(" ", i), i)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name    string
		value   string
		wantErr string
	}{
		{"bytes at limit", "a: " + strings.Repeat("x", MaxValueBytes-3), ""},
		{"bytes over limit", "a: " + strings.Repeat("x", MaxValueBytes-2),
			"the value is 32769 bytes, more than the limit of 32768: shorten it"},
		// ':', the blank after it, '[', ']' and MaxTokens-4 commas.
		{"tokens at limit", flow(MaxTokens - 3), ""},
		{"tokens over limit", flow(MaxTokens - 2), "the value has more than 1024 YAML tokens (words, and ',', ':', '-', " +
			"brackets and the like) by line 1: write fewer items"},
		{"words count", "a: " + strings.Repeat("x ", MaxTokens) + "x", "the value has more than 1024 YAML tokens (words, " +
			"and ',', ':', '-', brackets and the like) by line 1: write fewer items"},
		{"brackets at limit", brackets(MaxBrackets), ""},
		{"brackets over limit", brackets(MaxBrackets + 1),
			"the value opens more than 128 '[' or '{' by line 1: write fewer flow lists and mappings"},
		{"columns at limit", columns(MaxNesting), ""},
		{"columns over limit", columns(MaxNesting + 1),
			"the value uses more than 64 indentation columns at line 65: nest it less deeply"},
		{"compact nesting counts columns", "a:\n" + strings.Repeat("- ", MaxNesting) + "x",
			"the value uses more than 64 indentation columns at line 2: nest it less deeply"},
		{"document marker opens a column", columns(MaxNesting-1) + "--- x", ""},
		{"comment lines use no column", columns(MaxNesting) + strings.Repeat(" ", MaxNesting+1) + "# c\n", ""},
		{"directive", "%TAG ! tag:x,2000:\n---\na: b", "line 1: YAML directives ('%YAML', '%TAG') are not allowed: remove the line"},
		{"percent inside a line", "a: 100%", ""},
		{"bang inside a word", "a: x!y", ""},
		{"bang at the end of a word", "a: x! y", ""},
		{"lone bang", "a: x ! y", "line 1: a '!' standing alone is a YAML tag to some readers: tags are not allowed, remove it"},
		{"lone bang in flow", "a: [!, x]", "line 1: a '!' standing alone is a YAML tag to some readers: tags are not allowed, remove it"},
		{"del", "a: \x7f", "line 1 holds a control character ('\\x7f'): remove it"},
		{"noncharacter", "a: \uffff", "line 1 holds a noncharacter ('\\uffff'): remove it"},
		{"paragraph separator on line 3", "a: x\r\nb: y\rc: \u2029",
			"line 3 holds a line or paragraph separator ('\\u2029'), which YAML 1.1 readers take for a line break: remove it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			err := prescan(tc.value)
			if tc.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(tc.wantErr))
			var e *Error
			g.Expect(errors.As(err, &e)).To(BeTrue())
		})
	}
}

// TestPrescanAllocates checks that a value prescan accepts costs it no
// allocation: it runs on every value not in the memo. AllocsPerRun refuses
// to run in parallel.
func TestPrescanAllocates(t *testing.T) {
	g := NewWithT(t)
	value := largestLegitimate()
	g.Expect(testing.AllocsPerRun(10, func() { _ = prescan(value) })).To(BeZero())
}
