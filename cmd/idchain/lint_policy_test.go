package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

const policyServiceAccounts = "testdata/policy/serviceaccounts"

// TestLintPolicy lints ServiceAccounts the library accepts without a
// policy against testdata/policy/good/tenants.yaml: each is allowed, or
// denied by namespace, by source kind or by target, and the source is the
// one the library picks, so lockdown changes the decision.
func TestLintPolicy(t *testing.T) {
	t.Parallel()
	type decision struct{ outcome, rule string }
	for _, tt := range []struct {
		lockdown      bool
		wantFindings  map[string]string // by ServiceAccount: the rule of its finding
		wantDecisions map[string]decision
	}{
		{
			lockdown: false,
			wantFindings: map[string]string{
				"team-\u202eb/app": "policy-denied",
				"team-b\x1b[2J\nERROR forged line/app\x1b]0;pwned\a": "policy-denied",
				"team-b/app":     "policy-denied", // team-a's role
				"team-c/app":     "policy-denied", // no rule names team-c
				"apps-shop/cart": "policy-denied", // apps-* from their ServiceAccount only
			},
			wantDecisions: map[string]decision{
				"team-\u202eb/app": {"denied", ""},
				"team-b\x1b[2J\nERROR forged line/app\x1b]0;pwned\a": {"denied", ""},
				"team-a/deploy":  {"allowed", "rules[0]"},
				"team-a/reader":  {"allowed", "rules[0]"},
				"team-b/app":     {"denied", ""},
				"team-c/app":     {"denied", ""},
				"apps-shop/cart": {"denied", ""},
				"apps-shop/web":  {"allowed", "rules[1]"},
			},
		},
		{
			// The ServiceAccount is the source: the controller-level ones
			// have no role of their own, which the library refuses before
			// the policy could rule; apps-shop/cart's own role is allowed.
			lockdown: true,
			wantFindings: map[string]string{
				"team-\u202eb/app": "missing-identity",
				"team-b\x1b[2J\nERROR forged line/app\x1b]0;pwned\a": "missing-identity",
				"team-a/deploy": "missing-identity",
				"team-b/app":    "missing-identity",
				"team-c/app":    "missing-identity",
			},
			wantDecisions: map[string]decision{
				"team-a/reader":  {"allowed", "rules[0]"},
				"apps-shop/cart": {"allowed", "rules[1]"},
				"apps-shop/web":  {"allowed", "rules[1]"},
			},
		},
	} {
		name := "policy"
		flags := []string{"--policy", tenantsPolicy}
		if tt.lockdown {
			name += "-lockdown"
			flags = append(flags, "--lockdown")
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, append(append([]string{"lint"}, flags...), policyServiceAccounts)...)
			g.Expect(r.code).To(Equal(exitFindings), r.stdout+r.stderr)
			g.Expect(r.stderr).To(BeEmpty())
			checkGolden(t, filepath.Join("lint", name+".txt"), r.golden())

			_, report, jr := rulesOf(t, nil, append(flags, policyServiceAccounts)...)
			g.Expect(jr.code).To(Equal(exitFindings))
			findings := map[string]string{}
			for _, f := range report.Findings {
				findings[f.Namespace+"/"+f.ServiceAccount] = f.Rule
				g.Expect(f.Line).To(BeNumerically(">", 0))
				g.Expect(f.Fix).NotTo(BeEmpty())
			}
			g.Expect(findings).To(Equal(tt.wantFindings))

			g.Expect(report.Policy).NotTo(BeNil())
			g.Expect(report.Policy.File).To(Equal(tenantsPolicy))
			decisions := map[string]decision{}
			allowed := 0
			for _, d := range report.Policy.Decisions {
				decisions[d.Namespace+"/"+d.ServiceAccount] = decision{d.Outcome, d.Rule}
				if d.Outcome == policyAllowed {
					allowed++
				}
			}
			g.Expect(decisions).To(Equal(tt.wantDecisions))
			g.Expect(report.Policy.Allowed).To(Equal(allowed))
			g.Expect(report.Policy.Denied).To(Equal(len(decisions) - allowed))
		})
	}
}

// TestLintPolicyJSON pins -o json: the policy's decisions, with the rule
// that allowed each impersonation, after the findings.
func TestLintPolicyJSON(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	r := run(t, nil, "lint", "-o", "json", "--policy", tenantsPolicy, policyServiceAccounts+"/tenants.yaml")
	g.Expect(r.code).To(Equal(exitFindings), r.stderr)
	checkGolden(t, filepath.Join("lint", "policy.json"), r.stdout)
}

// TestLintPolicyFindings pins a denial: the problem is the library's
// refusal, and the fix is the rule the operator would have to add.
func TestLintPolicyFindings(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	_, report, _ := rulesOf(t, nil, "--policy", tenantsPolicy, policyServiceAccounts+"/tenants.yaml")
	g.Expect(report.Findings).To(HaveLen(3))
	g.Expect(report.Findings[2]).To(Equal(finding{
		File: policyServiceAccounts + "/tenants.yaml", Line: 54, Column: 5, Namespace: "apps-shop", ServiceAccount: "cart",
		Provider: "aws", Annotation: "aws.auth.fluxcd.io/assume-role", Rule: "policy-denied",
		Problem: "impersonation denied by the impersonation policy: service account 'apps-shop/cart' may not " +
			"impersonate 'arn:aws:iam::333333333333:role/apps-shop-cart' from the controller identity: no rule of " +
			"the policy allows namespace 'apps-shop' to. the operator would have to add a rule with namespaces " +
			"['apps-shop'], sources [controller] and a target matching 'arn:aws:iam::333333333333:role/apps-shop-cart'",
		Fix: `add to the policy's rules: {namespaces: ["apps-shop"], sources: [controller], ` +
			`targets: ["arn:aws:iam::333333333333:role/apps-shop-cart"]}`,
	}))
}

// The seeds of the repository are all allowed by the policy written for
// them, from whichever source: the only findings are the ones without it.
func TestLintPolicySeeds(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	for _, flags := range [][]string{{"--policy", tenantsPolicy}, {"--policy", tenantsPolicy, "--lockdown"}} {
		_, report, _ := rulesOf(t, nil, append(flags, "../../testdata")...)
		_, without, _ := rulesOf(t, nil, append(flags[2:], "../../testdata")...)
		g.Expect(report.Findings).To(Equal(without.Findings))
		g.Expect(report.Policy.Decisions).To(HaveLen(report.Summary.Checked - len(without.Findings)))
		for _, d := range report.Policy.Decisions {
			g.Expect(d.Outcome).To(Equal("allowed"), d.File)
			g.Expect(d.Rule).To(Equal("rules[2]"), d.File)
		}
		g.Expect(report.Policy.Denied).To(BeZero())
	}
}

// A rule may allow an impersonation that the library still refuses for
// what the policy adds to the session: 49 session tags and the two tenant
// tags are more than STS takes. The finding points at sessionTags.
func TestLintPolicyTenantTagsOverflow(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	var tags strings.Builder
	for i := range 49 {
		fmt.Fprintf(&tags, "        tag%02d: v\n", i)
	}
	manifest := "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: my-app\n  namespace: my-app\n  annotations:\n" +
		"    aws.auth.fluxcd.io/assume-role: |\n" +
		"      roleARN: arn:aws:iam::222222222222:role/target-account-role\n" +
		"      sessionTags:\n" + tags.String()
	path := filepath.Join(t.TempDir(), "tags.yaml")
	g.Expect(os.WriteFile(path, []byte(manifest), 0o644)).To(Succeed())

	rules, report, r := rulesOf(t, nil, path)
	g.Expect(r.code).To(Equal(exitOK), "49 tags are fine without the policy")
	g.Expect(rules).To(BeEmpty())

	rules, report, _ = rulesOf(t, nil, "--policy", tenantsPolicy, path)
	g.Expect(rules).To(Equal([]string{"invalid-parameter"}))
	f := report.Findings[0]
	g.Expect([]any{f.Line, f.Field}).To(Equal([]any{9, "sessionTags"}))
	g.Expect(f.Problem).To(Equal("sessionTags has 49 tags, and the impersonation policy adds flux-tenant-namespace " +
		"and flux-tenant-service-account"))
	g.Expect(f.Fix).To(Equal("STS takes at most 50 in all. remove 1"))
	g.Expect(report.Policy.Decisions).To(HaveLen(1))
	g.Expect(report.Policy.Decisions[0].Outcome).To(Equal("allowed"))
	g.Expect(report.Policy.Decisions[0].Rule).To(Equal("rules[2]"))

	// The same rule without the aws section adds no tag: no finding.
	noTags := filepath.Join(t.TempDir(), "policy.yaml")
	g.Expect(os.WriteFile(noTags, []byte("apiVersion: auth.identitychain.dev/v1\nkind: ImpersonationPolicy\n"+
		"rules:\n  - {namespaces: [my-app], targets: [\"arn:aws:iam::222222222222:role/target-account-role\"]}\n"),
		0o644)).To(Succeed())
	rules, report, r = rulesOf(t, nil, "--policy", noTags, path)
	g.Expect(r.code).To(Equal(exitOK), r.stdout)
	g.Expect(rules).To(BeEmpty())
	g.Expect(report.Policy.Allowed).To(Equal(1))
}

func TestLintPolicyUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"invalid policy", []string{"lint", "--policy", "testdata/policy/bad/question-mark.yaml", policyServiceAccounts},
			"Error: policy 'testdata/policy/bad/question-mark.yaml': invalid impersonation policy: rules[0].targets[1] " +
				"'arn:aws:iam::222222222222:role/team-?' has '?': only '*' is special in a pattern"},
		{"missing policy", []string{"lint", "--policy", "testdata/policy/nope.yaml", policyServiceAccounts},
			"Error: failed to read 'testdata/policy/nope.yaml': no such file or directory"},
		{"policy from stdin", []string{"lint", "--policy", "-", policyServiceAccounts},
			"Error: --policy cannot be - (stdin): pass the policy file's path"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, tt.args...)
			g.Expect(r.code).To(Equal(exitUsage))
			g.Expect(r.stdout).To(BeEmpty())
			g.Expect(r.stderr).To(Equal(tt.wantErr + "\nRun 'idchain lint --help' for usage.\n"))
		})
	}
}
