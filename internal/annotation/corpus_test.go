package annotation

import (
	"fmt"
	"strings"
)

// corpusCase is a value a hostile tenant could write, or the largest a
// legitimate one would.
type corpusCase struct {
	name  string
	value string
}

// fill repeats unit after prefix until the value would pass n bytes, then
// adds suffix.
func fill(prefix, unit, suffix string, n int) string {
	k := max((n-len(prefix)-len(suffix))/len(unit), 0)
	return prefix + strings.Repeat(unit, k) + suffix
}

// atLimit repeats unit after prefix as often as prescan still accepts, so a
// case sits exactly at the token, bracket or size limit.
func atLimit(prefix, unit, suffix string) string {
	lo, hi := 0, MaxValueBytes/len(unit)+1 // prescan accepts lo units, refuses hi
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if prescan(prefix+strings.Repeat(unit, mid)+suffix) == nil {
			lo = mid
		} else {
			hi = mid
		}
	}
	return prefix + strings.Repeat(unit, lo) + suffix
}

// linesAtLimit appends as many lines after prefix as prescan still accepts.
func linesAtLimit(prefix string, line func(i int) string) string {
	var all []string
	for i, n := 0, len(prefix); n < MaxValueBytes; i++ {
		all = append(all, line(i))
		n += len(all[i])
	}
	lo, hi := 0, len(all)+1
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if prescan(prefix+strings.Join(all[:min(mid, len(all))], "")) == nil {
			lo = mid
		} else {
			hi = mid
		}
	}
	return prefix + strings.Join(all[:min(lo, len(all))], "")
}

// pad lengthens the last word of s to MaxValueBytes, which adds no token.
func pad(s string) string {
	return s + strings.Repeat("x", max(MaxValueBytes-len(s), 0))
}

func lines(n int, format func(i int) string) string {
	var b strings.Builder
	for i := 0; ; i++ {
		l := format(i)
		if b.Len()+len(l) > n {
			return b.String()
		}
		b.WriteString(l)
	}
}

// adversarialCorpus is what BenchmarkDecodeAdversarial measures and
// TestDecodeAdversarialMemory bounds. Values are MaxValueBytes or just
// under where they can be, the worst case that passes the size check, and
// the issue's own inputs beside them.
func adversarialCorpus() []corpusCase {
	const max = MaxValueBytes
	laughs := func() string {
		var b strings.Builder
		b.WriteString(`a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
		for c := 'b'; c <= 'i'; c++ {
			p := string(c - 1)
			fmt.Fprintf(&b, "%c: &%c [*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s]\n", c, c, p, p, p, p, p, p, p, p, p)
		}
		return b.String()
	}
	return []corpusCase{
		// The inputs, refused by size before parsing.
		{"issue/anchor-bomb-115KB", `a: &a "` + strings.Repeat("x", 100_000) + "\"\nb: [" +
			strings.TrimSuffix(strings.Repeat("*a, ", 5000), ", ") + "]\n"},
		{"issue/value-253KB", fill("roleARN: ", "x", "", 253<<10)},
		{"size/1MiB", fill("roleARN: ", "x", "", 1<<20)},

		{"anchor-bomb-at-max", fill(`a: &a "`+strings.Repeat("x", max/2)+"\"\nb: [", "*a,", "*a]", max)},
		{"billion-laughs", laughs()},
		{"aliases-at-token-limit", atLimit("a: &a x\nb: [", "*a,", "*a]")},
		{"anchors-many", lines(max, func(i int) string { return fmt.Sprintf("- &a%d x\n", i) })},

		{"nesting/flow-seq", fill("", "[", "", max/2) + fill("", "]", "", max/2)},
		{"nesting/flow-map", fill("", "{a: ", "", max)},
		{"nesting/flow-seq-at-limit", atLimit("labels: {a: "+strings.Repeat("[", MaxBrackets-1), "x x ", strings.Repeat("]", MaxBrackets-1)+"}")},
		{"nesting/flow-map-at-limit", atLimit("labels: "+strings.Repeat("{a: ", MaxBrackets), "x ", strings.Repeat("}", MaxBrackets))},
		{"nesting/indent", lines(max, func(i int) string { return strings.Repeat(" ", i) + "a:\n" })},
		{"nesting/indent-at-limit", lines(max, func(i int) string {
			return strings.Repeat(" ", min(i, MaxNesting-1)) + fmt.Sprintf("a%d:\n", i)
		})},
		{"nesting/compact-seq", fill("", "- ", "", max)},
		{"nesting/compact-key", fill("", "? ", "", max)},
		{"nesting/quoted-closers-hide-depth", fill(`a: "`, "]}", "\"\nb: ", max/2) + fill("", "[", "", max/2)},

		{"flat/flow-items-10k", "policyARNs: [" + strings.TrimSuffix(strings.Repeat("1,", 10_000), ",") + "]"},
		{"flat/flow-items-at-limit", atLimit("policyARNs: [", "a,", "a]")},
		{"flat/flow-items-padded", atLimit("policyARNs: [", "a,", "a]\nroleARN: "+strings.Repeat("x", MaxValueBytes-8192))},
		{"flat/flow-items-then-words", atLimit("policyARNs: ["+strings.Repeat("a,", MaxTokens*3/4)+"a]\nroleARN: ", "x", "")},
		{"flat/empty-flow-maps", fill("labels: [", "{},", "{}]", max)},
		{"flat/keys-10k", lines(10_000*10, func(i int) string { return fmt.Sprintf("k%d: 1\n", i) })},
		{"flat/distinct-keys-at-limit", linesAtLimit("roleARN: "+strings.Repeat("x", MaxValueBytes/2)+"\nlabels:\n",
			func(i int) string { return fmt.Sprintf("  k%d: v\n", i) })},
		{"flat/distinct-keys-then-words", pad(atLimit(lines(MaxTokens*3/4*5, func(i int) string {
			return fmt.Sprintf("k%d: v\n", i)
		})+"roleARN: ", "x ", "x"))},
		{"flat/list-at-limit", pad(atLimit("policyARNs:\n", "- arn\n", "- x"))},
		{"flat/structs-at-limit", atLimit("sessionTags:\n", "- {key: k, value: v}\n", "")},
		{"scalar/plain", fill("roleARN: ", "x", "", max)},
		{"scalar/plain-words", fill("roleARN: ", "x ", "x", max)},
		{"scalar/plain-words-at-limit", pad(atLimit("roleARN: ", "x ", "x"))},
		{"scalar/trailing-blanks-at-limit", atLimit("roleARN: x\n", "  x \n", "  "+strings.Repeat("x", MaxValueBytes-16384))},
		{"scalar/plain-multiline", fill("roleARN: x\n", "  x x x x x x\n", "", max)},
		{"scalar/double-quoted-escapes", fill(`roleARN: "`, `\t\u00e9`, `"`, max)},
		{"scalar/double-quoted-words", atLimit(`roleARN: "`, `x `, strings.Repeat("x", MaxValueBytes-8192)+`"`)},
		{"scalar/single-quoted-quotes", fill(`roleARN: '`, `''`, `'`, max)},
		{"scalar/literal-block", fill("roleARN: |\n", "  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", "", max)},
		{"scalar/folded-block-blank-lines", fill("roleARN: >\n", "  x\n\n", "", max)},
		{"scalar/huge-key", fill("", "k", ": x", max)},
		{"scalar/unicode", fill(`roleARN: "`, "\u202e\u0301e\U0001F600\u00e9", `"`, max)},

		{"lines/long-flow-line", fill("policyARNs: [", "arn:aws:iam::123456789012:policy/p"+strings.Repeat("x", 200)+", ", "x]", max)},
		{"lines/many-empty", fill("roleARN: x", "\n", "", max)},
		{"lines/crlf", fill("roleARN: x", "\r\n", "", max)},
		{"lines/comments", fill("roleARN: x\n", "#\n", "", max)},
		{"lines/long-comments", fill("roleARN: x\n", "# "+strings.Repeat("c", 78)+"\n", "", max)},

		{"documents/markers", fill("", "---\n", "", max)},
		{"documents/ends", fill("roleARN: x\n", "...\n", "", max)},
		{"documents/with-content", fill("", "roleARN: x\n---\n", "", max)},
		{"documents/after-end", "roleARN: x\n...\n" + fill("", "[", "", max-16)},

		{"bytes/tabs", fill("roleARN: x", "\t", "", max)},
		{"bytes/tab-indent", fill("roleARN:\n", "\tx\n", "", max)},
		{"bytes/bom", "\ufeff" + fill("roleARN: ", "x", "", max-3)},
		{"bytes/invalid-utf8", fill("roleARN: ", "\xff", "", max)},
		{"bytes/nul", fill("roleARN: ", "\x00", "", max)},
		{"bytes/escape-sequences", fill("roleARN: ", "\x1b[2J", "", max)},
		{"bytes/nel", fill("roleARN: ", "x\u0085", "", max)},
		{"bytes/line-separator", fill("roleARN: ", "x\u2028", "", max)},

		{"legit/largest", largestLegitimate()},
	}
}

func corpusValue(name string) string {
	for _, c := range adversarialCorpus() {
		if c.name == name {
			return c.value
		}
	}
	panic("no corpus case " + name)
}

// largestLegitimate is the largest value the planned fields allow: 50
// session tags at their limits, a 2,048-character policy, 10 policy ARNs
// and 10 delegates.
func largestLegitimate() string {
	var b strings.Builder
	b.WriteString("roleARN: arn:aws:iam::222222222222:role/" + strings.Repeat("r", 64) + "\n")
	b.WriteString("useServiceAccount: true\n")
	b.WriteString("externalID: '" + strings.Repeat("e", 1224) + "'\n")
	b.WriteString("sessionTags:\n")
	for i := range 50 {
		fmt.Fprintf(&b, "- key: %s%03d\n  value: %s\n", strings.Repeat("k", 125), i, strings.Repeat("v:-/", 64))
	}
	b.WriteString("sessionPolicy: |\n  " + samplePolicy(2048) + "\n")
	b.WriteString("policyARNs:\n")
	for i := range 10 {
		fmt.Fprintf(&b, "- arn:aws:iam::222222222222:policy/team/%s%d\n", strings.Repeat("p", 120), i)
	}
	b.WriteString("delegates:\n")
	for i := range 10 {
		fmt.Fprintf(&b, "- delegate-%02d-%s@project-%s.iam.gserviceaccount.com\n", i, strings.Repeat("d", 17), strings.Repeat("p", 20))
	}
	b.WriteString("durationSeconds: 3600\n")
	return b.String()
}

// samplePolicy is a dense IAM policy of about n characters: many short
// statements, the most brackets and commas a policy of that size has.
func samplePolicy(n int) string {
	stmt := `{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":["arn:aws:s3:::b/*"],"Condition":{"StringEquals":{"aws:PrincipalTag/t":["x"]}}}`
	var b strings.Builder
	b.WriteString(`{"Version":"2012-10-17","Statement":[`)
	for b.Len()+len(stmt)+3 < n {
		if !strings.HasSuffix(b.String(), "[") {
			b.WriteByte(',')
		}
		b.WriteString(stmt)
	}
	b.WriteString(strings.Repeat(" ", n-b.Len()-2) + "]}")
	return b.String()
}
