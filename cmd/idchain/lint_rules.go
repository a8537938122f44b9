package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	fluxauth "github.com/fluxcd/pkg/auth"
	corev1 "k8s.io/api/core/v1"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/gcp"
)

// fluxAnnotationDomainTail ends the keys of every Flux auth annotation.
const fluxAnnotationDomainTail = ".auth.fluxcd.io/"

// readAnnotations are the annotations the library reads that are not
// *.auth.fluxcd.io ones: the ServiceAccount's own identity.
var readAnnotations = []string{
	aws.AssumeRoleAnnotation, aws.RoleARNAnnotation,
	gcp.ImpersonateAnnotation, gcp.ServiceAccountAnnotation, gcp.WorkloadIdentityProviderAnnotation,
	azure.ImpersonateAnnotation, azure.ClientIDAnnotation, azure.TenantIDAnnotation,
}

// readAnnotation reports whether the library reads annotation key, or
// would if it were spelt right: a *.auth.fluxcd.io one.
func readAnnotation(key string) bool {
	return strings.Contains(key, fluxAnnotationDomainTail) || slices.Contains(readAnnotations, key)
}

// What lint assumes about the objects it cannot see.
const (
	// lintRegion is any valid region: the region is set on the Flux
	// object, not the ServiceAccount, so lint cannot know it.
	lintRegion = "us-east-1"
	// lintScope is any scope: the scopes are set on the Flux object (the
	// controller asks for the ones of the service it reaches), not on the
	// ServiceAccount, and Azure's impersonation is refused without them.
	lintScope = "https://management.azure.com/.default"
	// lintDefaultNamespace is where a ServiceAccount without a namespace
	// lands, as with kubectl apply.
	lintDefaultNamespace = "default"
	// lintDefaultSA turns lockdown on for --lockdown; its name does not
	// matter, because every ServiceAccount checked is named.
	lintDefaultSA = "default"
)

// The options of every chain lint plans, made once.
var (
	lintRegionOption   = auth.WithSTSRegion(lintRegion)
	lintScopeOption    = auth.WithScopes(lintScope)
	lintLockdownOption = auth.WithDefaultServiceAccount(lintDefaultSA)
)

// lintProvider is what lint knows about one provider: which annotations
// make a ServiceAccount relevant to it, and how to say what to do.
type lintProvider struct {
	name     string
	provider auth.Provider
	// identity are the annotations naming the ServiceAccount's own identity,
	// each checked by the library when present.
	identity []string
	// known are the provider's *.auth.fluxcd.io annotations.
	known []string
	// annotationFix tells how to write the impersonation annotation.
	annotationFix string
	// lockdownFix tells how to move the source from the controller to the
	// ServiceAccount.
	lockdownFix string
	// parameters are the optional request parameters of the impersonation
	// annotation, each with what it takes, for a refusal that does not
	// say what to do.
	parameters map[string]string
}

var lintProviders = []lintProvider{
	{
		name: aws.ProviderName, provider: aws.Provider{},
		identity: []string{aws.RoleARNAnnotation},
		known:    []string{aws.AssumeRoleAnnotation},
		annotationFix: "write the value as YAML fields: 'roleARN: arn:aws:iam::<account>:role/<name>' (required), " +
			"and useServiceAccount, externalID, duration, sessionTags, transitiveTagKeys, policyARNs and policy (optional)",
		lockdownFix: "remove 'useServiceAccount: false' and add " + aws.RoleARNAnnotation +
			", so the ServiceAccount's own role is the source",
		parameters: map[string]string{
			"externalID": "externalID is the external ID the role's trust policy expects (its sts:ExternalId " +
				"condition): 2 to 1224 letters, digits and _+=,.@:/-",
			"duration": "duration is the session's lifetime, from 15m to 1h, such as 'duration: 30m'",
			"sessionTags": "sessionTags is a mapping of tag keys to text values, such as 'sessionTags: {team: payments}', " +
				"and needs sts:TagSession in the role's trust policy",
			"transitiveTagKeys": "transitiveTagKeys is a list of keys of sessionTags, such as 'transitiveTagKeys: [team]'",
			"policyARNs": "policyARNs is a list of at most 10 managed policy ARNs, such as " +
				"'policyARNs: [arn:aws:iam::aws:policy/ReadOnlyAccess]'",
			"policy": "policy is a session policy, a JSON object: write 'policy: |' and the JSON indented under it",
		},
	},
	{
		name: gcp.ProviderName, provider: gcp.Provider{},
		identity: []string{gcp.ServiceAccountAnnotation, gcp.WorkloadIdentityProviderAnnotation},
		known:    []string{gcp.ImpersonateAnnotation, gcp.WorkloadIdentityProviderAnnotation},
		annotationFix: "write the value as YAML fields: 'gcpServiceAccount: <name>@<project>.iam.gserviceaccount.com' " +
			"(required), and useServiceAccount, delegates, lifetime and scopes (optional)",
		lockdownFix: "remove 'useServiceAccount: false': the ServiceAccount's own identity (" + gcp.ServiceAccountAnnotation +
			", or direct access without it) becomes the source",
		parameters: map[string]string{
			"delegates": "delegates is a list of service account emails, from the source's end of the chain to " +
				"gcpServiceAccount's, such as 'delegates: [hop@project.iam.gserviceaccount.com]'",
			"lifetime": "lifetime is the token's lifetime, from 1s to 12h (above 1h only where the organization " +
				"policy allows it), such as 'lifetime: 30m'",
			"scopes": "scopes is a list of OAuth scopes, such as 'scopes: [" + gcp.DefaultScopes[0] + "]'",
		},
	},
	{
		// Azure's client-id and tenant-id are not identity annotations
		// here: the workload identity webhook reads them too, so they alone
		// do not make a ServiceAccount Flux's (see checkIdentity).
		name: azure.ProviderName, provider: azure.Provider{},
		known: []string{azure.ImpersonateAnnotation},
		annotationFix: "write the value as YAML fields: 'clientID: <app registration's client ID, a GUID>' " +
			"(required), 'tenantID: <tenant ID or verified domain>' (required) and 'useServiceAccount: true|false' (optional)",
		lockdownFix: "remove 'useServiceAccount: false' and add " + azure.ClientIDAnnotation + " and tenant-id, " +
			"so the ServiceAccount's own managed identity is the source",
	},
}

// relevant reports whether sa carries an annotation of p.
func (p lintProvider) relevant(sa *corev1.ServiceAccount) bool {
	for k := range sa.Annotations {
		if strings.HasPrefix(k, p.name+fluxAnnotationDomainTail) || slices.Contains(p.identity, k) {
			return true
		}
	}
	return false
}

// configured reports whether sa has the provider's impersonation annotation
// or an identity annotation, i.e. whether the library would do anything
// provider-specific with it.
func (p lintProvider) configured(sa *corev1.ServiceAccount) bool {
	if _, ok := sa.Annotations[p.known[0]]; ok {
		return true
	}
	for _, k := range p.identity {
		if _, ok := sa.Annotations[k]; ok {
			return true
		}
	}
	return false
}

// lint checks every ServiceAccount of m, under lockdown or not, and
// against policy when not nil.
func lint(m *manifests, lockdown bool, policy *loadedPolicy) lintReport {
	l := newLinter(lockdown, policy)
	for _, msa := range m.serviceAccounts {
		l.add(msa)
	}
	return l.report(m)
}

// linter checks ServiceAccounts one by one, as they are read, so that a
// large repository is never all in memory: what it keeps is the findings.
type linter struct {
	lockdown bool
	policy   *loadedPolicy
	r        lintReport
	// serviceAccounts counts the ServiceAccounts checked.
	serviceAccounts int
}

func newLinter(lockdown bool, policy *loadedPolicy) *linter {
	// The controllers that read these annotations run with the upstream
	// feature gate on; without it every ServiceAccount source is refused.
	setObjectLevelWorkloadIdentity(true)

	l := &linter{lockdown: lockdown, policy: policy, r: lintReport{Findings: []finding{}}}
	if policy != nil {
		l.r.Policy = &lintPolicy{File: policy.file, Decisions: []policyDecision{}}
	}
	return l
}

// add checks one ServiceAccount.
func (l *linter) add(msa *manifestSA) {
	r := &l.r
	l.serviceAccounts++
	checked := false
	for _, p := range lintProviders {
		if !p.relevant(&msa.sa) {
			continue
		}
		checked = true
		findings, decision := p.check(msa, l.lockdown, l.policy)
		for _, f := range findings {
			f.File, f.Namespace, f.ServiceAccount, f.Provider = msa.file, msa.sa.Namespace, msa.sa.Name, p.name
			r.Findings = append(r.Findings, f)
		}
		if decision != nil {
			decision.File, decision.Provider = msa.file, p.name
			r.Policy.Decisions = append(r.Policy.Decisions, *decision)
			if decision.Outcome == policyAllowed {
				r.Policy.Allowed++
			} else {
				r.Policy.Denied++
			}
		}
	}
	for _, f := range nearMisses(msa) {
		checked = true
		f.File, f.Namespace, f.ServiceAccount = msa.file, msa.sa.Namespace, msa.sa.Name
		r.Findings = append(r.Findings, f)
	}
	if checked {
		r.Summary.Checked++
	}
}

// report is what lint found in m, whose ServiceAccounts were added.
func (l *linter) report(m *manifests) lintReport {
	r := l.r
	// What could not be read first, as the order of the findings on one
	// line is the order they were made in.
	problems := make([]finding, 0, len(m.problems)+len(r.Findings))
	for _, p := range m.problems {
		problems = append(problems, finding{File: p.file, Line: p.line, Column: p.col, Namespace: p.namespace,
			ServiceAccount: p.name, Annotation: p.annotation, Rule: p.rule, Problem: p.problem, Fix: p.fix})
	}
	r.Findings = append(problems, r.Findings...)
	// By file as read, then by line, however the finding was made.
	slices.SortStableFunc(r.Findings, func(a, b finding) int {
		return cmp.Or(cmp.Compare(m.order[a.File], m.order[b.File]), cmp.Compare(a.Line, b.Line))
	})
	r.Summary.Files = m.files
	r.Summary.Excluded = m.excluded
	r.Notes = m.notes
	r.Summary.ServiceAccounts = l.serviceAccounts
	r.Summary.Findings = len(r.Findings)
	r.Summary.Lockdown = l.lockdown
	return r
}

// check returns every problem of one ServiceAccount for provider p: the
// annotations one by one, then the decision the library makes with them,
// and, with a policy, the policy's decision on its impersonation.
func (p lintProvider) check(msa *manifestSA, lockdown bool, policy *loadedPolicy) ([]finding, *policyDecision) {
	sa := &msa.sa
	var out []finding
	add := func(key, rule, problem, fix string) {
		at := msa.at(key)
		out = append(out, finding{Line: at.line, Column: at.col, Annotation: key, Rule: rule, Problem: problem, Fix: fix})
	}

	prefix := p.name + fluxAnnotationDomainTail
	for k := range sa.Annotations {
		if strings.HasPrefix(k, prefix) && !slices.Contains(p.known, k) {
			// Rare: sort the keys for a stable order, then report them.
			for _, k := range slices.Sorted(maps.Keys(sa.Annotations)) {
				if strings.HasPrefix(k, prefix) && !slices.Contains(p.known, k) {
					add(k, "unknown-annotation", "unknown annotation: the library ignores it, so the identity it "+
						"meant to configure is silently not used", unknownAnnotationFix(k, p.known))
				}
			}
			break
		}
	}

	// A chain the library plans has an annotation it parsed: plan first,
	// and parse on its own only to report why planning failed. Plan
	// returns before parsing for a ServiceAccount without a name.
	configured := p.configured(sa)
	var chain *auth.Chain
	var planErr error
	planned := configured && sa.Name != ""
	if planned {
		chain, planErr = p.plan(sa, lockdown, nil)
	}
	parsed := planned && planErr == nil
	if !parsed {
		impKey := p.known[0]
		_, err := p.provider.ParseImpersonation(*sa, fluxauth.WithSTSRegion(lintRegion), fluxauth.WithScopes(lintScope))
		parsed = err == nil
		if annErr := (*auth.AnnotationError)(nil); errors.As(err, &annErr) {
			out = append(out, p.annotationFinding(msa, annErr))
		} else if err != nil {
			rule, fix := p.refusal(err, lockdown)
			if rule == "" {
				rule, fix = "refused", p.annotationFix
			}
			add(impKey, rule, err.Error(), fix)
		}
	}

	// A chain from the ServiceAccount's identity is one whose identity
	// annotation the library read and accepted.
	verified := parsed && planned && planErr == nil && chain.Source.Kind == auth.SourceServiceAccount
	identityErrs := p.checkIdentity(*sa, verified, add)

	if !parsed || !configured {
		// Planning would only repeat the annotation error, or, for a
		// ServiceAccount that only has a misspelt annotation, refuse a
		// chain nobody asked for.
		return out, nil
	}
	if !planned {
		chain, planErr = p.plan(sa, lockdown, nil)
	}
	if planErr != nil {
		for _, ie := range identityErrs {
			if strings.Contains(planErr.Error(), ie.Error()) {
				return out, nil // already reported on its own annotation
			}
		}
		add(p.classify(*sa, planErr, lockdown))
		return out, nil
	}
	if policy == nil || chain.Impersonation == nil {
		return out, nil // the policy rules on impersonation only
	}
	return p.checkPolicy(msa, lockdown, policy, chain, out)
}

// checkPolicy plans again with the policy the chain the library accepts
// without it, as a controller given the policy would, and adds the
// policy's refusal to out. The decision names the rule that allows the
// impersonation, from the same source as the chain's.
func (p lintProvider) checkPolicy(msa *manifestSA, lockdown bool, policy *loadedPolicy, chain *auth.Chain,
	out []finding) ([]finding, *policyDecision) {
	imp, kind := chain.Impersonation, chain.Source.Kind
	sa := imp.ServiceAccount
	key := p.known[0]
	at := msa.at(key)
	d := &policyDecision{Line: at.line, Column: at.col, Namespace: sa.Namespace, ServiceAccount: sa.Name,
		Source: policySourceName(kind), Target: imp.Target, Outcome: policyDenied}
	if rule, ok := policy.policy.Allows(sa.Namespace, sa.Name, kind, imp.Target); ok {
		d.Outcome, d.Rule = policyAllowed, ruleName(rule)
	}
	_, err := p.plan(&msa.sa, lockdown, policy.policy)
	var annErr *auth.AnnotationError
	switch {
	case err == nil:
	case errors.Is(err, auth.ErrPolicyDenied):
		out = append(out, finding{Line: at.line, Column: at.col, Annotation: key, Rule: "policy-denied",
			Problem: err.Error(), Fix: policyFix(sa.Namespace, kind, imp.Target)})
	case errors.As(err, &annErr):
		// What the policy adds to the session does not fit with what the
		// annotation asks for (too many session tags).
		out = append(out, p.annotationFinding(msa, annErr))
	default:
		_, rule, problem, fix := p.classify(msa.sa, err, lockdown)
		out = append(out, finding{Line: at.line, Column: at.col, Annotation: key, Rule: rule, Problem: problem, Fix: fix})
	}
	return out, d
}

// checkIdentity validates each identity annotation present with the
// library, whether or not it is the source: it becomes the source the day
// lockdown is turned on or useServiceAccount changes.
//
// verified says Plan already accepted the ServiceAccount's own identity
// (the role ARN or Google service account), which GetIdentity reads.
func (p lintProvider) checkIdentity(sa corev1.ServiceAccount, verified bool, add func(key, rule, problem, fix string)) []error {
	var errs []error
	report := func(key string, err error, fix string) {
		if err != nil {
			errs = append(errs, err)
			add(key, "invalid-identity", err.Error(), fix)
		}
	}
	present := func(key string) bool { _, ok := sa.Annotations[key]; return ok }
	switch p.name {
	case aws.ProviderName:
		if present(aws.RoleARNAnnotation) && !verified {
			_, err := aws.Provider{}.GetIdentity(sa)
			report(aws.RoleARNAnnotation, err, "set "+aws.RoleARNAnnotation+" to the IAM role the ServiceAccount's "+
				"token is exchanged for, e.g. arn:aws:iam::111111111111:role/source")
		}
	case gcp.ProviderName:
		if present(gcp.ServiceAccountAnnotation) && !verified {
			_, err := gcp.Provider{}.GetIdentity(sa)
			report(gcp.ServiceAccountAnnotation, err, "set "+gcp.ServiceAccountAnnotation+" to <name>@<project>.iam.gserviceaccount.com, "+
				"or remove it to use direct access")
		}
		if present(gcp.WorkloadIdentityProviderAnnotation) {
			// With the annotation present upstream reads nothing from the
			// network: the audience is the annotation itself.
			_, err := gcp.Provider{}.GetAudiences(context.Background(), sa)
			report(gcp.WorkloadIdentityProviderAnnotation, err, "set "+gcp.WorkloadIdentityProviderAnnotation+
				" to projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>")
		}
	}
	// Azure's client-id and tenant-id are left alone: the Azure workload
	// identity webhook reads them too, and needs no tenant-id, so checking
	// them would flag ServiceAccounts that never meet Flux. The chain
	// checks them when the ServiceAccount is the source of an impersonation
	// (missing-identity).
	return errs
}

// annotationFinding reports a refusal of an annotation's value at the line
// of the field at fault, when the value is a literal block ('|') and the
// refusal names a field. The key and ServiceAccount have their own columns,
// so the problem is the library's reason alone. A bad request parameter is
// invalid-parameter, and the library's own fix, the end of its reason, is
// the fix.
func (p lintProvider) annotationFinding(msa *manifestSA, e *auth.AnnotationError) finding {
	line, col, field := locateRefusal(msa.sa.Annotations[e.Key], e.Reason)
	at := msa.inValue(e.Key, line, col)
	f := finding{Line: at.line, Column: at.col, Annotation: e.Key, Field: field,
		Rule: "invalid-annotation", Problem: e.Reason, Fix: p.annotationFix}
	if hint, ok := p.parameterHint(e.Reason); ok {
		f.Rule, f.Fix = "invalid-parameter", hint
		if problem, fix, ok := splitReason(e.Reason); ok {
			f.Problem, f.Fix = problem, fix
		}
	}
	return f
}

// parameterHint tells whether a refusal of the annotation is about one of
// its request parameters, and what that parameter takes.
func (p lintProvider) parameterHint(reason string) (string, bool) {
	sm := reasonPath.FindStringSubmatch(reason)
	if sm == nil {
		return "", false
	}
	hint, ok := p.parameters[sm[1]]
	return hint, ok
}

// plan asks the library which chain it would follow for sa, exactly as a
// controller would, with a client that holds sa alone, and policy when
// not nil.
func (p lintProvider) plan(sa *corev1.ServiceAccount, lockdown bool, policy *auth.ImpersonationPolicy) (*auth.Chain, error) {
	if sa.Namespace == "" {
		c := *sa
		c.Namespace = lintDefaultNamespace
		sa = &c
	}
	opts := []auth.Option{
		auth.WithClient(saClient{sa: sa}),
		auth.WithServiceAccountNamespace(sa.Namespace),
		auth.WithServiceAccountName(sa.Name),
		lintRegionOption,
		lintScopeOption,
	}
	if policy != nil {
		opts = append(opts, auth.WithImpersonationPolicy(policy))
	}
	if lockdown {
		opts = append(opts, lintLockdownOption)
	}
	return auth.Plan(context.Background(), p.provider, opts...)
}

// classify turns a refusal of Plan into a finding.
func (p lintProvider) classify(sa corev1.ServiceAccount, err error, lockdown bool) (key, rule, problem, fix string) {
	key = p.known[0]
	if _, ok := sa.Annotations[key]; !ok {
		key = ""
	}
	rule, fix = p.refusal(err, lockdown)
	if id := p.provider.IdentityAnnotation(); rule == "lockdown-forbids-controller" && sa.Annotations[id] != "" {
		fix = fmt.Sprintf("remove 'useServiceAccount: false': the ServiceAccount's own %s becomes the source", id)
	}
	if rule == "" {
		rule, fix = "refused", "see the problem: it is the library's refusal"
	}
	return key, rule, err.Error(), fix
}

// refusal names a refusal of the library, by its exported sentinels and
// types, and says how to fix it; "" when it is none lint knows.
func (p lintProvider) refusal(err error, lockdown bool) (rule, fix string) {
	var annErr *auth.AnnotationError
	switch {
	case errors.As(err, &annErr):
		if _, ok := p.parameterHint(annErr.Reason); ok {
			// The library's reason ends with the fix already.
			return "invalid-parameter", ""
		}
		return "invalid-annotation", p.annotationFix
	case errors.Is(err, auth.ErrAmbiguousSource):
		return "ambiguous-source", fmt.Sprintf(
			"remove %s, or set 'useServiceAccount: true' to impersonate from it", p.provider.IdentityAnnotation())
	case errors.Is(err, auth.ErrPolicyDenied):
		return "policy-denied", genericPolicyFix
	case errors.Is(err, auth.ErrLockdownForbidsControllerIdentity):
		return "lockdown-forbids-controller", p.lockdownFix
	case errors.Is(err, aws.ErrNoServiceAccountRole):
		return "missing-identity", fmt.Sprintf("add %s with a role the target role trusts: %s", aws.RoleARNAnnotation,
			sourceWhy(lockdown))
	case errors.Is(err, azure.ErrNoServiceAccountIdentity):
		return "missing-identity", fmt.Sprintf("add %s and tenant-id with the managed identity the app trusts as a "+
			"federated identity credential: %s", azure.ClientIDAnnotation, sourceWhy(lockdown))
	}
	return "", ""
}

// sourceWhy says why the ServiceAccount is the source of a chain that
// needs its own identity.
func sourceWhy(lockdown bool) string {
	if lockdown {
		return "under lockdown the ServiceAccount, not the controller, is the source"
	}
	return "'useServiceAccount: true' makes the ServiceAccount the source"
}

// lintProviderFor returns what lint knows about the named provider.
func lintProviderFor(name string) (lintProvider, bool) {
	for _, p := range lintProviders {
		if p.name == name {
			return p, true
		}
	}
	return lintProvider{}, false
}

// unknownAnnotationFix suggests the known annotation nearest to key.
func unknownAnnotationFix(key string, known []string) string {
	best, dist := "", len(key)
	for _, k := range known {
		if d := editDistance(normalKey(key), k); d < dist {
			best, dist = k, d
		}
	}
	if best != "" && dist <= len(best)/3 {
		return didYouMean(key, best)
	}
	return "use one of " + sentence(known)
}

// unknownAnnotation is the problem of an annotation the library ignores.
const unknownAnnotation = "unknown annotation: the library ignores it, so the identity it meant to configure " +
	"is silently not used"

// nearMisses reports the annotations of msa that the library does not read
// but that are one it reads misspelt: in another case
// (AWS.auth.fluxcd.io/assume-role), with '_' for '-'
// (eks.amazonaws.com/role_arn), or a character or two off. The
// *.auth.fluxcd.io keys of a provider are check's.
func nearMisses(msa *manifestSA) []finding {
	var out []finding
	for k := range msa.sa.Annotations {
		if slices.Contains(readAnnotations, k) || hasProviderPrefix(k) {
			continue
		}
		if w, ok := nearestAnnotation(k); ok {
			at := msa.at(k)
			out = append(out, finding{Line: at.line, Column: at.col, Provider: annotationProvider(w), Annotation: k,
				Rule: "unknown-annotation", Problem: unknownAnnotation, Fix: didYouMean(k, w)})
		}
	}
	// In the order written, as maps have none.
	slices.SortFunc(out, func(a, b finding) int { return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column)) })
	return out
}

// hasProviderPrefix reports whether key is a provider's *.auth.fluxcd.io
// key, as written.
func hasProviderPrefix(key string) bool {
	for _, p := range lintProviders {
		if strings.HasPrefix(key, p.name+fluxAnnotationDomainTail) {
			return true
		}
	}
	return false
}

// nearestAnnotation returns the annotation the library reads that key is a
// near miss of: the same but for case and '_' for '-', or at most two
// characters off.
func nearestAnnotation(key string) (string, bool) {
	best, dist := "", 3
	for _, w := range readAnnotations {
		if d := len(key) - len(w); d > 2 || d < -2 {
			continue
		}
		if d := boundedDistance(normalKey(key), w, 2); d < dist {
			best, dist = w, d
		}
	}
	return best, best != ""
}

// didYouMean suggests w for key, saying how they differ when it is more
// than a typo.
func didYouMean(key, w string) string {
	switch {
	case strings.EqualFold(key, w):
		return fmt.Sprintf("did you mean %s? annotation keys are case-sensitive", w)
	case strings.Contains(key, "_") && normalKey(key) == w:
		return fmt.Sprintf("did you mean %s? the key is written with '-', not '_'", w)
	case normalKey(key) == w:
		return fmt.Sprintf("did you mean %s? annotation keys are case-sensitive, and written with '-', not '_'", w)
	}
	return fmt.Sprintf("did you mean %s?", w)
}

// normalKey is key in lower case, with '-' for '_'.
func normalKey(key string) string {
	if strings.IndexFunc(key, func(r rune) bool { return r == '_' || r >= 'A' && r <= 'Z' }) < 0 {
		return key
	}
	return strings.ReplaceAll(strings.ToLower(key), "_", "-")
}

// annotationProvider names the provider that reads annotation w.
func annotationProvider(w string) string {
	switch w {
	case aws.AssumeRoleAnnotation, aws.RoleARNAnnotation:
		return aws.ProviderName
	case gcp.ImpersonateAnnotation, gcp.ServiceAccountAnnotation, gcp.WorkloadIdentityProviderAnnotation:
		return gcp.ProviderName
	}
	return azure.ProviderName
}

// boundedDistance is the Levenshtein distance of a and b when it is at
// most k, and k+1 otherwise, in O(k·len) time: only the diagonal band
// where a distance of k or less can be is computed.
func boundedDistance(a, b string, k int) int {
	if d := len(a) - len(b); d > k || d < -k {
		return k + 1
	}
	const inf = 1 << 30
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
		if j > k {
			prev[j] = inf
		}
	}
	for i := 1; i <= len(a); i++ {
		lo, hi := max(1, i-k), min(len(b), i+k)
		for j := range cur {
			cur[j] = inf
		}
		if i <= k {
			cur[0] = i
		}
		best := cur[0]
		for j := lo; j <= hi; j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			best = min(best, cur[j])
		}
		if best > k {
			return k + 1
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], k+1)
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
