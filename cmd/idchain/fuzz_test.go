package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/identitychain/auth"
)

// FuzzLint feeds lint any manifest stream. Whatever the bytes: no panic,
// exit status 0 or 1 (a finding is not a usage error), and nothing printed
// that a terminal would act on. The seeds are the lint corpus and the
// hostile inputs of the hardening issue; `go test` runs them, `make fuzz`
// explores.
func FuzzLint(f *testing.F) {
	files, err := filepath.Glob("testdata/lint/*/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no lint corpus: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	sa := "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n  namespace: team-a\n  annotations:\n"
	for _, v := range []string{
		`    aws.auth.fluxcd.io/assume-role: "a: &a [x, x]\nb: [*a, *a, *a]"`,
		`    aws.auth.fluxcd.io/assume-role: "roleARN: x\n---\nroleARN: y"`,
		`    aws.auth.fluxcd.io/assume-role: "useServiceAccount: yes"`,
		`    aws.auth.fluxcd.io/assume-role: "roleARN: \"arn:aws:iam::123456789012:role/x\e[2J\nforged\""`,
		`    gcp.auth.fluxcd.io/impersonate: "gcpServiceAccount: -x-@p.iam.gserviceaccount.com"`,
		"    eks.amazonaws.com/role-arn: \"\u202e\"",
	} {
		f.Add(sa + v + "\n")
	}
	f.Add("kind: List\nitems: [{kind: ServiceAccount}]\n")
	f.Add("\x00\xff---\n...\n")
	f.Fuzz(func(t *testing.T, manifest string) {
		r := run(t, func(a *app) { a.stdin = strings.NewReader(manifest) }, "lint", "-")
		if r.code != exitOK && r.code != exitFindings {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		for _, out := range []string{r.stdout, r.stderr} {
			if bad, ok := unsafeRune(out); ok {
				t.Fatalf("output carries %U:\n%.2000s", bad, out)
			}
		}
	})
}

// FuzzPolicyRuleFor: whatever the namespace and target, the rule a fix
// offers to add, when it offers one, is safe to show and, pasted under a
// policy's rules, allows exactly that namespace and target.
func FuzzPolicyRuleFor(f *testing.F) {
	f.Add("team-b", "arn:aws:iam::222222222222:role/team-a-deploy")
	f.Add("team-\u202eb", "x@p.iam.gserviceaccount.com")
	f.Add("a\"b\\c\n\x1b[2J", "#'\t: ,]}")
	f.Add("\U0001F600", "\u2028\u0085\ufeff")
	f.Fuzz(func(t *testing.T, namespace, target string) {
		rule, ok := policyRuleFor(namespace, auth.SourceController, target)
		if !ok {
			return
		}
		if bad, unsafe := unsafeRune(rule); unsafe || strings.Contains(rule, "\n") {
			t.Fatalf("the rule carries %U: %q", bad, rule)
		}
		p, err := auth.ParseImpersonationPolicy([]byte("apiVersion: auth.identitychain.dev/v1\n" +
			"kind: ImpersonationPolicy\nrules:\n  - " + rule + "\n"))
		if err != nil {
			t.Fatalf("the rule %s does not parse: %v", rule, err)
		}
		if _, allowed := p.Allows(namespace, "app", auth.SourceController, target); !allowed {
			t.Fatalf("the rule %s does not allow %q to %q", rule, namespace, target)
		}
		if _, allowed := p.Allows(namespace, "app", auth.SourceServiceAccount, target); allowed {
			t.Fatalf("the rule %s allows the other source", rule)
		}
	})
}
