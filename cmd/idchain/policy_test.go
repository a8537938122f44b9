package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
)

const tenantsPolicy = "testdata/policy/good/tenants.yaml"

// TestPolicyCheckFiles pins policy check on every good and bad policy of
// testdata/policy: "ok" with the rules and what AWS sessions carry, or
// the library's error, which says where the file is wrong.
func TestPolicyCheckFiles(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/policy/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var policies []string
	for _, f := range files {
		if !strings.Contains(f, "serviceaccounts") {
			policies = append(policies, f)
		}
	}
	if len(policies) < 10 {
		t.Fatalf("found only %d policies: %v", len(policies), policies)
	}
	for _, path := range policies {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		kind := filepath.Base(filepath.Dir(path))
		t.Run(kind+"/"+name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, "policy", "check", path)
			want := exitOK
			if kind == "bad" {
				want = exitFindings
			}
			g.Expect(r.code).To(Equal(want), r.stdout+r.stderr)
			g.Expect(r.stderr).To(BeEmpty())
			checkGolden(t, filepath.Join("policy", kind+"-"+name+".txt"), r.golden())

			// The line is the library's verdict, word for word.
			data, err := os.ReadFile(path)
			g.Expect(err).NotTo(HaveOccurred())
			_, perr := auth.ParseImpersonationPolicy(data)
			if kind == "bad" {
				g.Expect(perr).To(MatchError(auth.ErrInvalidPolicy))
				g.Expect(r.stdout).To(Equal(path + ": " + perr.Error() + "\n"))
			} else {
				g.Expect(perr).NotTo(HaveOccurred())
			}
		})
	}
}

func TestPolicyCheckGood(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	r := run(t, nil, "policy", "check", tenantsPolicy, "testdata/policy/good/minimal.yaml")
	g.Expect(r.code).To(Equal(exitOK), r.stderr)
	g.Expect(r.stdout).To(Equal(tenantsPolicy + ": ok (3 rules; AWS tenant session tags on, source identity on)\n" +
		"testdata/policy/good/minimal.yaml: ok (1 rule; AWS tenant session tags off, source identity off)\n"))
}

// One bad file among good ones fails the check, and every file is still
// reported, in order.
func TestPolicyCheckJSON(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	r := run(t, nil, "policy", "check", "-o", "json", tenantsPolicy, "testdata/policy/bad/question-mark.yaml",
		"testdata/policy/good/minimal.yaml")
	g.Expect(r.code).To(Equal(exitFindings), r.stderr)
	checkGolden(t, filepath.Join("policy", "check.json"), r.stdout)

	var report policyCheckReport
	g.Expect(json.Unmarshal([]byte(r.stdout), &report)).To(Succeed())
	g.Expect(report.Files).To(HaveLen(3))
	g.Expect(report.Files[0]).To(Equal(policyCheckResult{File: tenantsPolicy, Valid: true, Rules: 3,
		AWS: &policyAWS{TenantSessionTags: true, SourceIdentity: true}}))
	g.Expect(report.Files[1].Valid).To(BeFalse())
	g.Expect(report.Files[1].Error).To(Equal("invalid impersonation policy: rules[0].targets[1] " +
		"'arn:aws:iam::222222222222:role/team-?' has '?': only '*' is special in a pattern"))
	g.Expect(report.Files[2].Valid).To(BeTrue())
}

func TestPolicyCheckStdin(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	data, err := os.ReadFile(tenantsPolicy)
	g.Expect(err).NotTo(HaveOccurred())
	r := run(t, func(a *app) { a.stdin = strings.NewReader(string(data)) }, "policy", "check", "-")
	g.Expect(r.code).To(Equal(exitOK), r.stderr)
	g.Expect(r.stdout).To(Equal("<stdin>: ok (3 rules; AWS tenant session tags on, source identity on)\n"))
}

// TestPolicyCheckQuery asks testdata/policy/good/tenants.yaml about one
// impersonation of each kind: the answer is the first rule that allows
// it, which Allows gives, or the rule to add.
func TestPolicyCheckQuery(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name                      string
		namespace, sa, source, to string
		wantCode                  int
		wantLine                  string
	}{
		{"allowed, placeholder expanded", "team-b", "app", "controller", "arn:aws:iam::222222222222:role/team-b-deploy",
			exitOK, "allowed by rules[0]: service account 'team-b/app' impersonating " +
				"'arn:aws:iam::222222222222:role/team-b-deploy' from source controller"},
		{"allowed from the ServiceAccount", "apps-shop", "web", "serviceAccount", "arn:aws:iam::333333333333:role/apps-shop-web",
			exitOK, "allowed by rules[1]: service account 'apps-shop/web' impersonating " +
				"'arn:aws:iam::333333333333:role/apps-shop-web' from source serviceAccount"},
		{"the source kind as Plan names it", "apps-shop", "web", "service-account", "arn:aws:iam::333333333333:role/apps-shop-web",
			exitOK, "allowed by rules[1]: service account 'apps-shop/web' impersonating " +
				"'arn:aws:iam::333333333333:role/apps-shop-web' from source serviceAccount"},
		{"denied by source kind", "apps-shop", "web", "controller", "arn:aws:iam::333333333333:role/apps-shop-web",
			exitFindings, "denied: no rule allows service account 'apps-shop/web' impersonating " +
				"'arn:aws:iam::333333333333:role/apps-shop-web' from source controller\n" +
				`  fix: add to the policy's rules: {namespaces: ["apps-shop"], sources: [controller], ` +
				`targets: ["arn:aws:iam::333333333333:role/apps-shop-web"]}`},
		{"denied by target: another tenant's role", "team-b", "app", "controller", "arn:aws:iam::222222222222:role/team-a-deploy",
			exitFindings, "denied: no rule allows service account 'team-b/app' impersonating " +
				"'arn:aws:iam::222222222222:role/team-a-deploy' from source controller\n" +
				`  fix: add to the policy's rules: {namespaces: ["team-b"], sources: [controller], ` +
				`targets: ["arn:aws:iam::222222222222:role/team-a-deploy"]}`},
		{"denied by namespace", "team-c", "app", "serviceAccount", "team-c-x@target-project.iam.gserviceaccount.com",
			exitFindings, "denied: no rule allows service account 'team-c/app' impersonating " +
				"'team-c-x@target-project.iam.gserviceaccount.com' from source serviceAccount\n" +
				`  fix: add to the policy's rules: {namespaces: ["team-c"], sources: [serviceAccount], ` +
				`targets: ["team-c-x@target-project.iam.gserviceaccount.com"]}`},
		{"hostile text is escaped, in the rule to add too", "team-a", "app\x1b[2J", "controller",
			"arn:aws:iam::222222222222:role/team-a-x\u202e/../admin", exitFindings,
			"denied: no rule allows service account 'team-a/app\\x1b[2J' impersonating " +
				"'arn:aws:iam::222222222222:role/team-a-x\\u202e/../admin' from source controller\n" +
				`  fix: add to the policy's rules: {namespaces: ["team-a"], sources: [controller], ` +
				`targets: ["arn:aws:iam::222222222222:role/team-a-x\u202e/../admin"]}`},
		{"no rule is offered for a glob character", "team-c", "app", "controller",
			"arn:aws:iam::222222222222:role/team-c-*", exitFindings,
			"denied: no rule allows service account 'team-c/app' impersonating " +
				"'arn:aws:iam::222222222222:role/team-c-*' from source controller\n" +
				"  fix: " + genericPolicyFix},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, "policy", "check", tenantsPolicy, "-n", tt.namespace, "--service-account", tt.sa,
				"--source", tt.source, "--target", tt.to)
			g.Expect(r.code).To(Equal(tt.wantCode), r.stdout+r.stderr)
			g.Expect(r.stderr).To(BeEmpty())
			g.Expect(r.stdout).To(Equal(tenantsPolicy + ": ok (3 rules; AWS tenant session tags on, source identity on)\n" +
				tenantsPolicy + ": " + tt.wantLine + "\n"))
		})
	}
}

func TestPolicyCheckQueryJSON(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	r := run(t, nil, "policy", "check", "-o", "json", tenantsPolicy, "testdata/policy/good/minimal.yaml",
		"-n", "team-a", "--service-account", "app", "--source", "controller", "--target",
		"arn:aws:iam::222222222222:role/team-a-deploy")
	g.Expect(r.code).To(Equal(exitFindings), r.stderr)
	checkGolden(t, filepath.Join("policy", "check-query.json"), r.stdout)

	var report policyCheckReport
	g.Expect(json.Unmarshal([]byte(r.stdout), &report)).To(Succeed())
	g.Expect(*report.Query).To(Equal(policyQuery{Namespace: "team-a", ServiceAccount: "app", Source: "controller",
		Target: "arn:aws:iam::222222222222:role/team-a-deploy"}))
	g.Expect(report.Files[0].Answer).To(Equal(&policyAnswer{Outcome: "allowed", Rule: "rules[0]"}))
	g.Expect(report.Files[1].Answer.Outcome).To(Equal("denied"))
}

func TestPolicyCheckUsageErrors(t *testing.T) {
	t.Parallel()
	query := []string{"-n", "team-a", "--service-account", "app", "--target", "arn:aws:iam::222222222222:role/x"}
	for _, tt := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no file", []string{"policy", "check"}, "requires at least 1 arg(s), only received 0"},
		{"missing file", []string{"policy", "check", tenantsPolicy, "testdata/policy/nope.yaml"},
			"failed to read 'testdata/policy/nope.yaml': no such file or directory"},
		{"a directory", []string{"policy", "check", "testdata/policy"},
			"failed to read 'testdata/policy': is a directory"},
		{"part of a query", append([]string{"policy", "check", tenantsPolicy}, query...),
			"--namespace, --service-account, --source and --target ask about one impersonation together: set all four, none empty"},
		{"an empty query flag", append([]string{"policy", "check", tenantsPolicy, "--source", "controller", "--service-account", ""},
			query[:2]...), "--namespace, --service-account, --source and --target ask about one impersonation together"},
		{"bad source", append([]string{"policy", "check", tenantsPolicy, "--source", "pod"}, query...),
			"invalid source 'pod': must be controller or serviceAccount"},
		{"bad output", []string{"policy", "check", "-o", "yaml", tenantsPolicy}, "invalid output format 'yaml': must be table or json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, tt.args...)
			g.Expect(r.code).To(Equal(exitUsage), r.stdout+r.stderr)
			g.Expect(r.stdout).To(BeEmpty())
			g.Expect(r.stderr).To(HavePrefix("Error: " + tt.wantErr))
			g.Expect(r.stderr).To(HaveSuffix("\nRun 'idchain policy check --help' for usage.\n"))
		})
	}
}

// A file larger than the library reads is refused without reading it all.
func TestPolicyCheckTooLarge(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	path := filepath.Join(t.TempDir(), "huge.yaml")
	data := "apiVersion: auth.identitychain.dev/v1\nkind: ImpersonationPolicy\n#" + strings.Repeat("x", 1<<20) + "\n"
	g.Expect(os.WriteFile(path, []byte(data), 0o644)).To(Succeed())
	r := run(t, nil, "policy", "check", path)
	g.Expect(r.code).To(Equal(exitFindings))
	g.Expect(r.stdout).To(Equal(path + ": invalid impersonation policy: the file is more than 1048576 bytes, the limit\n"))
}

// TestPolicyRuleForReadsBack: the rule a fix tells the operator to add,
// pasted under a policy's rules, allows exactly the impersonation denied,
// hostile text included, and nothing else.
func TestPolicyRuleForReadsBack(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		namespace string
		kind      auth.SourceKind
		target    string
	}{
		{"team-b", auth.SourceController, "arn:aws:iam::222222222222:role/team-a-deploy"},
		{"apps-shop", auth.SourceServiceAccount, "team-a-x@target-project.iam.gserviceaccount.com"},
		{"team-\u202eb", auth.SourceController, "arn:aws:iam::222222222222:role/a\"b\\c"},
		{"team-b\x1b\n\U0001F600 x: y, z", auth.SourceServiceAccount, "arn:aws:iam::2:role/#not a comment'"},
	} {
		t.Run(tt.namespace, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			rule, ok := policyRuleFor(tt.namespace, tt.kind, tt.target)
			g.Expect(ok).To(BeTrue())
			_, unsafe := unsafeRune(rule)
			g.Expect(unsafe).To(BeFalse(), rule)
			p, err := auth.ParseImpersonationPolicy([]byte("apiVersion: auth.identitychain.dev/v1\n" +
				"kind: ImpersonationPolicy\nrules:\n  - " + rule + "\n"))
			g.Expect(err).NotTo(HaveOccurred(), rule)
			other := auth.SourceController
			if tt.kind == other {
				other = auth.SourceServiceAccount
			}
			for _, c := range []struct {
				namespace string
				kind      auth.SourceKind
				target    string
				want      bool
			}{
				{tt.namespace, tt.kind, tt.target, true},
				{tt.namespace, other, tt.target, false},
				{tt.namespace + "x", tt.kind, tt.target, false},
				{tt.namespace, tt.kind, tt.target + "x", false},
			} {
				rule, allowed := p.Allows(c.namespace, "any", c.kind, c.target)
				g.Expect(allowed).To(Equal(c.want), "%+v", c)
				if c.want {
					g.Expect(rule).To(Equal(0))
				}
			}
		})
	}
	// Glob characters and braces would widen the rule or not parse: no
	// rule is offered, and neither for text YAML cannot carry.
	for _, bad := range [][2]string{
		{"team-*", "arn:aws:iam::2:role/x"}, {"team-a", "arn:aws:iam::2:role/*"}, {"team-a", "arn:aws:iam::2:role/{namespace}"},
		{"team-[a]", "arn:aws:iam::2:role/x"}, {"team-a", "arn:aws:iam::2:role/x?"}, {"team-\xff", "arn:aws:iam::2:role/x"},
		{"", "arn:aws:iam::2:role/x"}, {"team-a", ""},
	} {
		_, ok := policyRuleFor(bad[0], auth.SourceController, bad[1])
		NewWithT(t).Expect(ok).To(BeFalse(), "%q", bad)
	}
}
