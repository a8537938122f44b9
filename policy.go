package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/identitychain/auth/internal/annotation"
	"github.com/identitychain/auth/internal/quote"
)

// PolicyAPIVersion and PolicyKind identify an impersonation policy file.
const (
	PolicyAPIVersion = "auth.identitychain.dev/v1"
	PolicyKind       = "ImpersonationPolicy"
)

// ErrPolicyDenied is matched by every refusal of an impersonation by the
// operator's ImpersonationPolicy.
var ErrPolicyDenied = errors.New("impersonation denied by the impersonation policy")

// ErrInvalidPolicy is matched by every error of ParseImpersonationPolicy.
var ErrInvalidPolicy = errors.New("invalid impersonation policy")

// ImpersonationPolicy is the platform team's list of who may become whom:
// which namespaces may impersonate which targets, from which source. With
// a policy, Plan refuses every impersonation no rule allows, before any
// cloud call, with an error wrapping ErrPolicyDenied. It also says what
// AWS sessions carry to name the tenant that made them.
//
// A policy is immutable and safe for concurrent use. Build it with
// ParseImpersonationPolicy and pass it on every call with
// WithImpersonationPolicy.
type ImpersonationPolicy struct {
	rules []policyRule
	// Attribution is what AWS sessions carry to name the tenant.
	attribution Attribution
}

// Attribution says what an AWS session made for a tenant carries to name
// it. The policy's aws section sets it.
type Attribution struct {
	// TenantSessionTags adds the session tags flux-tenant-namespace and
	// flux-tenant-service-account, transitive, to every AssumeRole.
	TenantSessionTags bool
	// SourceIdentity sets the AssumeRole's SourceIdentity to name the
	// ServiceAccount; AWS carries it through every later hop.
	SourceIdentity bool
}

type policyRule struct {
	index      int
	namespaces []glob
	sources    []SourceKind // nil: both
	targets    []glob
}

// policyFile is the YAML form of a policy.
type policyFile struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Rules      []policyRuleFile `json:"rules"`
	AWS        *policyAWSFile   `json:"aws,omitempty"`
}

type policyRuleFile struct {
	Namespaces []string `json:"namespaces"`
	Sources    []string `json:"sources,omitempty"`
	Targets    []string `json:"targets"`
}

type policyAWSFile struct {
	TenantSessionTags *bool `json:"tenantSessionTags,omitempty"`
	SourceIdentity    *bool `json:"sourceIdentity,omitempty"`
}

// policySources maps the source names of a policy file to source kinds.
var policySources = map[string]SourceKind{
	"controller":     SourceController,
	"serviceAccount": SourceServiceAccount,
}

// ParseImpersonationPolicy reads an impersonation policy:
//
//	apiVersion: auth.identitychain.dev/v1
//	kind: ImpersonationPolicy
//	rules:
//	  - namespaces: ["team-a", "team-b-*"]     # globs on the object's namespace
//	    sources: [controller, serviceAccount]  # optional; both when omitted
//	    targets:                               # globs; {namespace} and {serviceAccount} expand
//	      - "arn:aws:iam::222222222222:role/{namespace}-*"
//	      - "{namespace}-*@target-project.iam.gserviceaccount.com"
//	aws:                                       # optional
//	  tenantSessionTags: true
//	  sourceIdentity: true
//
// Only '*' is special in a pattern, and it never matches '/', ':' or '@',
// so a tenant-chosen value cannot stretch a rule across an account, a path
// or a project. Every other glob syntax ('?', '[', '**'), unknown fields,
// an empty rules list, a rule without namespaces or targets and an unknown
// source are refused, with an error wrapping ErrInvalidPolicy that says
// where. The file is read with the YAML subset of the annotations: one
// meaning only.
func ParseImpersonationPolicy(data []byte) (*ImpersonationPolicy, error) {
	var f policyFile
	if err := annotation.DecodeFile(string(data), &f); err != nil {
		return nil, policyError("%s", err.Error())
	}
	switch {
	case f.APIVersion != PolicyAPIVersion:
		return nil, policyError("apiVersion is %s: it must be %s", quote.Tenant(f.APIVersion), PolicyAPIVersion)
	case f.Kind != PolicyKind:
		return nil, policyError("kind is %s: it must be %s", quote.Tenant(f.Kind), PolicyKind)
	case len(f.Rules) == 0:
		return nil, policyError("rules is empty: a policy without rules would refuse every impersonation. " +
			"add a rule, or pass no policy")
	}
	p := &ImpersonationPolicy{rules: make([]policyRule, len(f.Rules))}
	for i, rf := range f.Rules {
		r, err := parseRule(i, rf)
		if err != nil {
			return nil, err
		}
		p.rules[i] = r
	}
	if a := f.AWS; a != nil {
		p.attribution = Attribution{
			TenantSessionTags: a.TenantSessionTags != nil && *a.TenantSessionTags,
			SourceIdentity:    a.SourceIdentity != nil && *a.SourceIdentity,
		}
	}
	return p, nil
}

func policyError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, args...))
}

func parseRule(i int, rf policyRuleFile) (policyRule, error) {
	r := policyRule{index: i}
	at := fmt.Sprintf("rules[%d]", i)
	if len(rf.Namespaces) == 0 {
		return r, policyError("%s has no namespaces: list the namespaces (globs such as 'team-*') it applies to", at)
	}
	if len(rf.Targets) == 0 {
		return r, policyError("%s has no targets: list the identities (globs) those namespaces may impersonate", at)
	}
	for j, text := range rf.Namespaces {
		g, err := parseGlob(text, false)
		if err != nil {
			return r, policyError("%s.namespaces[%d] %s %s", at, j, quote.Tenant(text), err)
		}
		r.namespaces = append(r.namespaces, g)
	}
	for j, text := range rf.Targets {
		g, err := parseGlob(text, true)
		if err != nil {
			return r, policyError("%s.targets[%d] %s %s", at, j, quote.Tenant(text), err)
		}
		r.targets = append(r.targets, g)
	}
	if rf.Sources != nil && len(rf.Sources) == 0 {
		return r, policyError("%s.sources is empty: list controller, serviceAccount or both, or remove it for both", at)
	}
	for j, s := range rf.Sources {
		kind, ok := policySources[s]
		switch {
		case !ok:
			return r, policyError("%s.sources[%d] is %s: the sources are controller and serviceAccount",
				at, j, quote.Tenant(s))
		case slices.Contains(r.sources, kind):
			return r, policyError("%s.sources lists %s twice", at, quote.Tenant(s))
		}
		r.sources = append(r.sources, kind)
	}
	return r, nil
}

// Attribution is what AWS sessions carry to name the tenant under p.
func (p *ImpersonationPolicy) Attribution() Attribution {
	if p == nil {
		return Attribution{}
	}
	return p.attribution
}

// Allows reports whether p lets a ServiceAccount of namespace, named name,
// impersonate target from a source of kind, and the index of the first rule
// that does (-1 when none does).
func (p *ImpersonationPolicy) Allows(namespace, name string, kind SourceKind, target string) (rule int, ok bool) {
	for _, r := range p.rules {
		if r.allows(namespace, name, kind, target) {
			return r.index, true
		}
	}
	return -1, false
}

func (r policyRule) allows(namespace, name string, kind SourceKind, target string) bool {
	if r.sources != nil && !slices.Contains(r.sources, kind) {
		return false
	}
	if !slices.ContainsFunc(r.namespaces, func(g glob) bool { return g.match(namespace) }) {
		return false
	}
	return slices.ContainsFunc(r.targets, func(g glob) bool { return g.expand(namespace, name).match(target) })
}

// check refuses the impersonation of c when p allows it by no rule.
func (p *ImpersonationPolicy) check(c *Chain) error {
	imp := c.Impersonation
	sa := imp.ServiceAccount
	if _, ok := p.Allows(sa.Namespace, sa.Name, c.Source.Kind, imp.Target); ok {
		return nil
	}
	return fmt.Errorf("%w: service account %s may not impersonate %s from %s: no rule of the policy "+
		"allows namespace %s to. the operator would have to add a rule with namespaces [%s], sources [%s] "+
		"and a target matching %s",
		ErrPolicyDenied, quote.Tenant(sa.String()), quote.Tenant(imp.Target), c.Source,
		quote.Tenant(sa.Namespace), quote.Tenant(sa.Namespace), policySourceName(c.Source.Kind),
		quote.Tenant(imp.Target))
}

func policySourceName(kind SourceKind) string {
	for name, k := range policySources {
		if k == kind {
			return name
		}
	}
	return string(kind)
}

// String describes p for logs: its rules and what sessions carry.
func (p *ImpersonationPolicy) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "impersonation policy with %d rules", len(p.rules))
	if a := p.attribution; a.TenantSessionTags || a.SourceIdentity {
		fmt.Fprintf(&b, " (AWS tenant session tags %t, source identity %t)", a.TenantSessionTags, a.SourceIdentity)
	}
	return b.String()
}
