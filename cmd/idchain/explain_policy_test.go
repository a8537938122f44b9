package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
)

// explainCorpus is explain --policy for a ServiceAccount of the policy corpus.
func explainCorpus(namespace, sa string, flags ...string) []string {
	return append([]string{"explain", "--provider", "aws", "--region", "us-east-1", "-f",
		policyServiceAccounts + "/tenants.yaml", "-n", namespace, "--service-account", sa, "--policy", tenantsPolicy}, flags...)
}

// TestExplainPolicyGolden pins explain --policy for an allowed chain, with
// the parameters the policy adds to AssumeRole, and a denied one, with the
// source and target the policy refused and the rule to add.
func TestExplainPolicyGolden(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		args     []string
		wantCode int
	}{
		{"policy-allowed", append(seedArgs("../../testdata/aws-pod-identity.yaml"), "--policy", tenantsPolicy), exitOK},
		{"policy-denied", explainCorpus("team-b", "app"), exitFindings},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, tt.args...)
			g.Expect(r.code).To(Equal(tt.wantCode), r.stdout+r.stderr)
			checkGolden(t, filepath.Join("explain", tt.name+".txt"), r.golden())

			r = run(t, nil, append(tt.args, "-o", "json")...)
			g.Expect(r.code).To(Equal(tt.wantCode), r.stderr)
			checkGolden(t, filepath.Join("explain", tt.name+".json"), r.stdout)
		})
	}
}

func TestExplainPolicyAllowedJSON(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	r := run(t, nil, append(seedArgs("../../testdata/aws-pod-identity.yaml"), "--policy", tenantsPolicy, "-o", "json")...)
	g.Expect(r.code).To(Equal(exitOK), r.stderr)
	var e explanation
	g.Expect(json.Unmarshal([]byte(r.stdout), &e)).To(Succeed())
	g.Expect(e.Policy).To(Equal(&explainPolicy{File: tenantsPolicy, Outcome: "allowed", Rule: "rules[2]"}))
	g.Expect(e.Parameters).To(Equal([]explainParameter{
		{Field: "tenantSessionTags", SentAs: "Tags, transitive",
			Keys: []string{"flux-tenant-namespace", "flux-tenant-service-account"}, Values: []string{"my-app", "my-app"}},
		{Field: "sourceIdentity", SentAs: "SourceIdentity", Value: "my-app.my-app"},
	}))
	g.Expect(e.Refused).To(BeEmpty())
}

func TestExplainPolicyDeniedJSON(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	r := run(t, nil, append(explainCorpus("team-b", "app"), "-o", "json")...)
	g.Expect(r.code).To(Equal(exitFindings))
	var e explanation
	g.Expect(json.Unmarshal([]byte(r.stdout), &e)).To(Succeed())
	g.Expect(e.Policy).To(Equal(&explainPolicy{File: tenantsPolicy, Outcome: "denied"}))
	g.Expect(e.Source.Kind).To(Equal(string(auth.SourceController)))
	g.Expect(e.Target).To(Equal("arn:aws:iam::222222222222:role/team-a-deploy"))
	g.Expect(e.Refused).To(HavePrefix(auth.ErrPolicyDenied.Error() + ": service account 'team-b/app' may not impersonate"))
	g.Expect(e.Fix).To(Equal(`add to the policy's rules: {namespaces: ["team-b"], sources: [controller], ` +
		`targets: ["arn:aws:iam::222222222222:role/team-a-deploy"]}`))
	g.Expect(r.stderr).To(Equal("Error: " + e.Refused + "\n"))
	g.Expect(e.Hops).To(BeEmpty(), "a refused chain has no calls")
}

// TestExplainPolicyRow pins the Policy line for every outcome: the source
// is the one the library picks (lockdown makes apps-shop/cart's own role
// the source, which rules[1] allows), and a chain refused before the
// policy, or without impersonation, is not the policy's.
func TestExplainPolicyRow(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		args     []string
		wantCode int
		wantRow  string
		wantFix  string
	}{
		{"allowed, GCP", append(seedArgs("../../testdata/gcp-object-wif.yaml"), "--policy", tenantsPolicy),
			exitOK, "allowed by rules[2] of " + tenantsPolicy, ""},
		{"allowed from the ServiceAccount", explainCorpus("apps-shop", "web"),
			exitOK, "allowed by rules[1] of " + tenantsPolicy, ""},
		{"denied by source kind", explainCorpus("apps-shop", "cart"),
			exitFindings, "denied: no rule of " + tenantsPolicy + " allows this impersonation",
			`add to the policy's rules: {namespaces: ["apps-shop"], sources: [controller], ` +
				`targets: ["arn:aws:iam::333333333333:role/apps-shop-cart"]}`},
		{"allowed under lockdown", explainCorpus("apps-shop", "cart", "--default-service-account", "default"),
			exitOK, "allowed by rules[1] of " + tenantsPolicy, ""},
		{"denied by namespace", explainCorpus("team-c", "app"),
			exitFindings, "denied: no rule of " + tenantsPolicy + " allows this impersonation",
			`add to the policy's rules: {namespaces: ["team-c"], sources: [controller], ` +
				`targets: ["arn:aws:iam::222222222222:role/team-c-deploy"]}`},
		{"not applied", []string{"explain", "--provider", "aws", "--region", "us-east-1", "--policy", tenantsPolicy},
			exitOK, "not applied: the chain impersonates no identity, and " + tenantsPolicy + " rules on impersonation only", ""},
		{"not reached", []string{"explain", "--provider", "aws", "--region", "us-east-1", "-f",
			"testdata/lint/bad/ambiguous.yaml", "--policy", tenantsPolicy},
			exitFindings, "not reached: the library refused the chain before " + tenantsPolicy + " could rule on it",
			"remove eks.amazonaws.com/role-arn, or set 'useServiceAccount: true' to impersonate from it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, tt.args...)
			g.Expect(r.code).To(Equal(tt.wantCode), r.stdout+r.stderr)
			g.Expect(r.stdout).To(ContainSubstring("\nPolicy:          " + tt.wantRow + "\n"))
			if tt.wantFix != "" {
				g.Expect(r.stdout).To(ContainSubstring("\nFix:             " + tt.wantFix + "\n"))
			}
		})
	}
}

// A rule allows the chain, and the library refuses what the policy adds
// to the session: the Policy line names the rule, the error says why.
func TestExplainPolicyTenantTagsOverflow(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	var tags strings.Builder
	for i := range 49 {
		fmt.Fprintf(&tags, "        tag%02d: v\n", i)
	}
	path := filepath.Join(t.TempDir(), "tags.yaml")
	g.Expect(os.WriteFile(path, []byte("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: my-app\n"+
		"  namespace: my-app\n  annotations:\n    aws.auth.fluxcd.io/assume-role: |\n"+
		"      roleARN: arn:aws:iam::222222222222:role/target-account-role\n      sessionTags:\n"+tags.String()),
		0o644)).To(Succeed())
	r := run(t, nil, "explain", "--provider", "aws", "--region", "us-east-1", "-f", path, "--policy", tenantsPolicy)
	g.Expect(r.code).To(Equal(exitFindings))
	g.Expect(r.stdout).To(ContainSubstring("\nPolicy:          allowed by rules[2] of " + tenantsPolicy + "\n"))
	g.Expect(r.stdout).To(ContainSubstring("\nOutcome:         refused by the library"))
	g.Expect(r.stderr).To(ContainSubstring("sessionTags has 49 tags, and the impersonation policy adds " +
		"flux-tenant-namespace and flux-tenant-service-account: STS takes at most 50 in all. remove 1"))
}

func TestExplainPolicyUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		policy, wantErr string
	}{
		{"testdata/policy/bad/source.yaml", "policy 'testdata/policy/bad/source.yaml': invalid impersonation policy: " +
			"rules[0].sources[0] is 'pod': the sources are controller and serviceAccount"},
		{"testdata/policy/nope.yaml", "failed to read 'testdata/policy/nope.yaml': no such file or directory"},
	} {
		t.Run(tt.policy, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, append(seedArgs("../../testdata/aws-pod-identity.yaml"), "--policy", tt.policy)...)
			g.Expect(r.code).To(Equal(exitUsage))
			g.Expect(r.stdout).To(BeEmpty())
			g.Expect(r.stderr).To(Equal("Error: " + tt.wantErr + "\nRun 'idchain explain --help' for usage.\n"))
		})
	}
}
