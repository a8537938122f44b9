package auth_test

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
)

const policyHeader = "apiVersion: auth.identitychain.dev/v1\nkind: ImpersonationPolicy\n"

func mustPolicy(t *testing.T, body string) *auth.ImpersonationPolicy {
	t.Helper()
	p, err := auth.ParseImpersonationPolicy([]byte(policyHeader + body))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPolicyAllows covers every rule shape: namespace globs, source kinds,
// placeholder expansion, and tenant values that try to stretch a rule.
func TestPolicyAllows(t *testing.T) {
	p := mustPolicy(t, `rules:
  - namespaces: ["team-a", "team-b-*"]
    sources: [controller, serviceAccount]
    targets:
      - "arn:aws:iam::222222222222:role/{namespace}-*"
      - "{namespace}-*@target-project.iam.gserviceaccount.com"
  - namespaces: ["apps-*"]
    sources: [serviceAccount]
    targets: ["arn:aws:iam::333333333333:role/{namespace}/{serviceAccount}"]
  - namespaces: ["*"]
    sources: [controller]
    targets: ["arn:aws:iam::444444444444:role/shared-readonly"]
`)
	const (
		ctl = auth.SourceController
		obj = auth.SourceServiceAccount
	)
	for _, tt := range []struct {
		name          string
		namespace, sa string
		kind          auth.SourceKind
		target        string
		wantRule      int
		wantAllowed   bool
	}{
		{"exact namespace, expanded prefix", "team-a", "app", ctl, "arn:aws:iam::222222222222:role/team-a-deploy", 0, true},
		{"namespace glob", "team-b-prod", "app", obj, "arn:aws:iam::222222222222:role/team-b-prod-x", 0, true},
		{"GCP target", "team-a", "app", ctl, "team-a-reader@target-project.iam.gserviceaccount.com", 0, true},
		{"another tenant's role", "team-a", "app", ctl, "arn:aws:iam::222222222222:role/team-b-deploy", -1, false},
		{"namespace not listed", "team-c", "app", ctl, "arn:aws:iam::222222222222:role/team-c-deploy", -1, false},
		{"star does not cross a path", "team-a", "app", ctl, "arn:aws:iam::222222222222:role/team-a-x/admin", -1, false},
		{"star does not cross an account", "team-a", "app", ctl, "arn:aws:iam::222222222222:role/team-a-:x", -1, false},
		{"star does not cross a project", "team-a", "app", ctl, "team-a-x@evil.com@target-project.iam.gserviceaccount.com", -1, false},
		{"other account", "team-a", "app", ctl, "arn:aws:iam::999999999999:role/team-a-deploy", -1, false},
		{"suffix must match", "team-a", "app", ctl, "team-a-x@target-project.iam.gserviceaccount.com.evil", -1, false},
		{"service account placeholder", "apps-1", "web", obj, "arn:aws:iam::333333333333:role/apps-1/web", 1, true},
		{"another service account", "apps-1", "web", obj, "arn:aws:iam::333333333333:role/apps-1/api", -1, false},
		{"source kind not allowed", "apps-1", "web", ctl, "arn:aws:iam::333333333333:role/apps-1/web", -1, false},
		{"star namespace, controller only", "anything", "x", ctl, "arn:aws:iam::444444444444:role/shared-readonly", 2, true},
		{"star namespace, not from the object", "anything", "x", obj, "arn:aws:iam::444444444444:role/shared-readonly", -1, false},
		{"the exact literal only", "anything", "x", ctl, "arn:aws:iam::444444444444:role/shared-readonly2", -1, false},
		{"empty target", "team-a", "app", ctl, "", -1, false},
		{"a star in the target is literal text", "team-a", "app", ctl, "arn:aws:iam::222222222222:role/*", -1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			rule, ok := p.Allows(tt.namespace, tt.sa, tt.kind, tt.target)
			g.Expect(ok).To(Equal(tt.wantAllowed))
			g.Expect(rule).To(Equal(tt.wantRule))
		})
	}
}

// A glob built from tenant values: the namespace and name are literal text
// wherever they land, and a long hostile target costs linear time.
func TestPolicyHostileValues(t *testing.T) {
	p := mustPolicy(t, `rules:
  - namespaces: ["*"]
    targets: ["arn:aws:iam::222222222222:role/{namespace}*{serviceAccount}*x"]
`)
	g := NewWithT(t)
	_, ok := p.Allows("team-a", "app", auth.SourceController, "arn:aws:iam::222222222222:role/team-a-1-app-2-x")
	g.Expect(ok).To(BeTrue())
	// A name that holds a star matches only a literal star.
	_, ok = p.Allows("team-a", "*", auth.SourceController, "arn:aws:iam::222222222222:role/team-a-1-app-x")
	g.Expect(ok).To(BeFalse())
	_, ok = p.Allows("team-a", "*", auth.SourceController, "arn:aws:iam::222222222222:role/team-a-*-x")
	g.Expect(ok).To(BeTrue())
	// Separators in tenant text do not open a path either.
	_, ok = p.Allows("team-a", "a/b", auth.SourceController, "arn:aws:iam::222222222222:role/team-a-a/b-x")
	g.Expect(ok).To(BeTrue(), "the separator is the tenant's literal text, matched by itself")
	_, ok = p.Allows("team-a", "app", auth.SourceController, "arn:aws:iam::222222222222:role/team-a-/app-x")
	g.Expect(ok).To(BeFalse())
	// Many near-misses: linear, not exponential.
	long := "arn:aws:iam::222222222222:role/team-a" + strings.Repeat("app", 20000) + "y"
	_, ok = p.Allows("team-a", "app", auth.SourceController, long)
	g.Expect(ok).To(BeFalse())
}

// TestParseImpersonationPolicyRefusals pins each refusal by its message.
func TestParseImpersonationPolicyRefusals(t *testing.T) {
	const rule = "rules:\n  - namespaces: [a]\n    targets: [t]\n"
	for _, tt := range []struct{ name, file, want string }{
		{"empty file", "", "invalid impersonation policy: the file is empty"},
		{"wrong apiVersion", "apiVersion: v1\nkind: ImpersonationPolicy\n" + rule,
			"invalid impersonation policy: apiVersion is 'v1': it must be auth.identitychain.dev/v1"},
		{"wrong kind", "apiVersion: auth.identitychain.dev/v1\nkind: Policy\n" + rule,
			"invalid impersonation policy: kind is 'Policy': it must be ImpersonationPolicy"},
		{"no rules", policyHeader + "rules: []",
			"invalid impersonation policy: rules is empty: a policy without rules would refuse every impersonation. add a rule, or pass no policy"},
		{"rules absent", policyHeader,
			"invalid impersonation policy: rules is empty: a policy without rules would refuse every impersonation. add a rule, or pass no policy"},
		{"unknown field", policyHeader + rule + "    target: [x]",
			"invalid impersonation policy: unknown field 'target' in rules[0]: the fields are 'namespaces', 'sources', 'targets'"},
		{"unknown top-level field", policyHeader + rule + "audit: true",
			"invalid impersonation policy: unknown field 'audit': the fields are 'apiVersion', 'kind', 'rules', 'aws'"},
		{"no namespaces", policyHeader + "rules:\n  - targets: [t]",
			"invalid impersonation policy: rules[0] has no namespaces: list the namespaces (globs such as 'team-*') it applies to"},
		{"no targets", policyHeader + "rules:\n  - namespaces: [a]",
			"invalid impersonation policy: rules[0] has no targets: list the identities (globs) those namespaces may impersonate"},
		{"question mark", policyHeader + "rules:\n  - namespaces: ['team-?']\n    targets: [t]",
			"invalid impersonation policy: rules[0].namespaces[0] 'team-?' has '?': only '*' is special in a pattern"},
		{"bracket", policyHeader + "rules:\n  - namespaces: [a]\n    targets: ['arn:aws:iam::1:role/[ab]']",
			"invalid impersonation policy: rules[0].targets[0] 'arn:aws:iam::1:role/[ab]' has '[': only '*' is special in a pattern"},
		{"double star", policyHeader + "rules:\n  - namespaces: [a]\n    targets: ['arn:aws:iam::1:role/**']",
			"invalid impersonation policy: rules[0].targets[0] 'arn:aws:iam::1:role/**' has '**': only a single '*' is special, and it never matches '/', ':' or '@'"},
		{"unknown placeholder", policyHeader + "rules:\n  - namespaces: [a]\n    targets: ['{name}-x']",
			"invalid impersonation policy: rules[0].targets[0] '{name}-x' has '{' outside a placeholder: the placeholders are {namespace} and {serviceAccount}"},
		{"placeholder in a namespace", policyHeader + "rules:\n  - namespaces: ['{namespace}']\n    targets: [t]",
			"invalid impersonation policy: rules[0].namespaces[0] '{namespace}' has '{': namespace patterns take no placeholders"},
		{"empty pattern", policyHeader + "rules:\n  - namespaces: ['']\n    targets: [t]",
			"invalid impersonation policy: rules[0].namespaces[0] '' is empty"},
		{"unknown source", policyHeader + "rules:\n  - namespaces: [a]\n    sources: [object]\n    targets: [t]",
			"invalid impersonation policy: rules[0].sources[0] is 'object': the sources are controller and serviceAccount"},
		{"source twice", policyHeader + "rules:\n  - namespaces: [a]\n    sources: [controller, controller]\n    targets: [t]",
			"invalid impersonation policy: rules[0].sources lists 'controller' twice"},
		{"sources empty", policyHeader + "rules:\n  - namespaces: [a]\n    sources: []\n    targets: [t]",
			"invalid impersonation policy: rules[0].sources is empty: list controller, serviceAccount or both, or remove it for both"},
		{"YAML 1.1 boolean", policyHeader + rule + "aws: {tenantSessionTags: yes}",
			"invalid impersonation policy: aws.tenantSessionTags must be true or false, not 'yes'"},
		{"two documents", policyHeader + rule + "---\n" + policyHeader + rule,
			"invalid impersonation policy: the file holds more than one YAML document: keep one, with no '---' or '...' line after it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			p, err := auth.ParseImpersonationPolicy([]byte(tt.file))
			g.Expect(err).To(MatchError(tt.want))
			g.Expect(err).To(MatchError(auth.ErrInvalidPolicy))
			g.Expect(p).To(BeNil())
		})
	}
}

func TestPolicyAttribution(t *testing.T) {
	g := NewWithT(t)
	const rule = "rules:\n  - namespaces: [a]\n    targets: [t]\n"
	g.Expect(mustPolicy(t, rule).Attribution()).To(Equal(auth.Attribution{}))
	g.Expect(mustPolicy(t, rule+"aws: {tenantSessionTags: true}").Attribution()).To(Equal(auth.Attribution{TenantSessionTags: true}))
	g.Expect(mustPolicy(t, rule+"aws: {sourceIdentity: true, tenantSessionTags: false}").Attribution()).
		To(Equal(auth.Attribution{SourceIdentity: true}))
	g.Expect(mustPolicy(t, rule+"aws: {sourceIdentity: true}").String()).
		To(Equal("impersonation policy with 1 rules (AWS tenant session tags false, source identity true)"))
}
