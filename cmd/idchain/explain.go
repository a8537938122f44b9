package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/gcp"
	"github.com/identitychain/auth/internal/inspect"
	"github.com/identitychain/auth/internal/quote"
)

// explanation is what explain shows. Its JSON form is the -o json contract.
type explanation struct {
	Provider       string `json:"provider"`
	ServiceAccount string `json:"serviceAccount,omitempty"`
	Lockdown       bool   `json:"lockdown"`
	// DefaultServiceAccountUsed is set when lockdown substituted the default
	// ServiceAccount because the object named none.
	DefaultServiceAccountUsed bool           `json:"defaultServiceAccountUsed,omitempty"`
	Source                    *explainSource `json:"source,omitempty"`
	Target                    string         `json:"target,omitempty"`
	Region                    string         `json:"region,omitempty"`
	STSEndpoint               string         `json:"stsEndpoint,omitempty"`
	SessionName               string         `json:"sessionName,omitempty"`
	Scopes                    []string       `json:"scopes,omitempty"`
	// ScopesNote says where the scopes come from when not from --scopes
	// or the provider's default: the annotation's (GCP), or idchain's
	// default for Azure impersonation, which has none of its own.
	ScopesNote string `json:"scopesNote,omitempty"`
	// Parameters are the request parameters the impersonation annotation
	// sets, as the impersonation call sends them, in the library's order.
	Parameters []explainParameter `json:"parameters,omitempty"`
	Hops       []hop              `json:"hops,omitempty"`
	CacheKey   *explainKeyInfo    `json:"cacheKey,omitempty"`
	Warnings   []string           `json:"warnings,omitempty"`
	// Policy is what the impersonation policy of --policy decided.
	Policy *explainPolicy `json:"policy,omitempty"`
	// Refused is the library's error when it refuses the chain, and Fix
	// what to do about it, when idchain knows.
	Refused string `json:"refused,omitempty"`
	Fix     string `json:"fix,omitempty"`
}

// explainPolicy is the impersonation policy's decision on the chain.
type explainPolicy struct {
	File string `json:"file"`
	// Outcome is allowed, denied, not-applied (the chain impersonates
	// nothing) or not-reached (the library refused the chain first).
	Outcome string `json:"outcome"`
	// Rule is the first rule that allows the impersonation, such as
	// rules[1].
	Rule string `json:"rule,omitempty"`
}

type explainSource struct {
	Kind        string `json:"kind"`
	Identity    string `json:"identity,omitempty"`
	Description string `json:"description"`
}

// hop is one call of the chain, in order.
type hop struct {
	Call    string `json:"call"`
	Details string `json:"details"`
	// sends are the annotation's request parameters this call sends, as
	// the text output shows them; -o json has them in parameters.
	sends []string
}

// explainParameter is a request parameter the annotation sets, as sent.
type explainParameter struct {
	// Field is the annotation's field, SentAs the API's parameter.
	Field  string `json:"field"`
	SentAs string `json:"sentAs"`
	// Value is a single value; Values a list, or a map's values in the
	// order of its Keys.
	Value  string   `json:"value,omitempty"`
	Values []string `json:"values,omitempty"`
	Keys   []string `json:"keys,omitempty"`
}

type explainKeyInfo struct {
	Source []inspect.KeyInput `json:"source"`
	Target []inspect.KeyInput `json:"target,omitempty"`
}

func (a *app) newExplainCmd() *cobra.Command {
	var f chainFlags
	var file, policyFile string
	cmd := &cobra.Command{
		Use:   "explain --provider aws|gcp|azure [--namespace NS --service-account SA] [-f manifest.yaml] [--policy FILE]",
		Short: "Show the chain the library would follow for a ServiceAccount, without calling any cloud",
		Long: `Explain reads the ServiceAccount a Flux object names and shows the chain the
library would follow for it: the source of the credentials (the controller's
own identity, or the ServiceAccount's), each call in order, the region,
endpoint and session name, the multi-tenancy lockdown outcome, and the inputs
of the cache keys. It calls the library's own planning function and makes no
cloud call, so it is safe anywhere.

The ServiceAccount comes from a manifest (-f, a multi-document file or a
List such as 'kubectl get sa -o yaml' prints) or from the cluster of the
kubeconfig. With one ServiceAccount in the file, --namespace and
--service-account default to it; with several, --service-account (and
--namespace when the name is in more than one namespace) picks one, and
explain refuses to guess, listing them (exit status 2). Without --service-account (and without -f) the
object names no ServiceAccount: the controller's own identity is used, or,
under lockdown, the default ServiceAccount.

The annotations it reads, on that ServiceAccount:

  eks.amazonaws.com/role-arn: arn:aws:iam::111111111111:role/source   # the SA's own role
  aws.auth.fluxcd.io/assume-role: |
    roleARN: arn:aws:iam::222222222222:role/target                     # required
    useServiceAccount: true                                            # optional
    externalID: my-app-7f3a9c        # optional AssumeRole parameters: ExternalId,
    duration: 30m                    # DurationSeconds (15m to 1h),
    sessionTags: {team: payments}    # Tags (the trust policy allows sts:TagSession),
    transitiveTagKeys: [team]        # TransitiveTagKeys,
    policyARNs: [arn:aws:iam::aws:policy/ReadOnlyAccess]   # PolicyArns (at most 10)
    policy: |                        # and Policy, a JSON object, sent compacted
      {"Version": "2012-10-17", "Statement": [...]}
  iam.gke.io/gcp-service-account: source@source-project.iam.gserviceaccount.com
  gcp.auth.fluxcd.io/impersonate: |
    gcpServiceAccount: target@target-project.iam.gserviceaccount.com   # required
    useServiceAccount: true                                            # optional
    delegates: [hop-sa@middle-project.iam.gserviceaccount.com]  # optional generateAccessToken
    lifetime: 30m                    # parameters: delegates, lifetime (1s to 12h)
    scopes: [https://www.googleapis.com/auth/devstorage.read_only]  # and scope, in
                                     # place of --scopes
  azure.workload.identity/client-id: 66666666-6666-4666-8666-666666666666  # the SA's own
  azure.workload.identity/tenant-id: 11111111-1111-4111-8111-111111111111  # managed identity
  azure.auth.fluxcd.io/impersonate: |
    clientID: 33333333-3333-4333-8333-333333333333   # required: the app registration
    tenantID: contoso.onmicrosoft.com                # required: tenant ID or verified domain
    useServiceAccount: true                          # optional

The parameters are shown on the call that sends them, as sent: the API's
names, durations in seconds, tags sorted by key, the policy compacted.

On Azure the source's token is for api://AzureADTokenExchange/.default, and
is the client assertion of Entra client credentials for the app in tenantID,
for the object's scopes (--scopes). The library refuses Azure impersonation
without scopes; without --scopes explain shows the chain for
https://management.azure.com/.default and says so next to the scopes (and in
-o json's scopesNote): the scopes are in the target's cache key.

Which identity is the source of the impersonation:

  useServiceAccount           lockdown off        lockdown on
  unset                       the controller      the ServiceAccount
  true                        the ServiceAccount  the ServiceAccount
  false                       the controller      refused
  false, and an identity      refused             refused
  annotation is present       (ambiguous)

With --policy, the chain is planned with the platform team's impersonation
policy (see 'idchain policy --help'), as a controller given it plans it:
explain shows the first rule that allows the impersonation ("Policy:
allowed by rules[1] of FILE"), and the parameters the policy's aws section
adds to AssumeRole (the tenant session tags and SourceIdentity) on the call
that sends them; or, when no rule allows it, the source and target the
policy refused, the library's refusal and, as the fix, the rule the
operator would have to add. A policy file that is not valid is an error
(exit status 2), with the library's message.

When the library refuses, explain prints its error and exits with status 1.`,
		Example: `  # The controller's Pod Identity assumes a role in another account
  idchain explain --provider aws --region us-east-1 -f serviceaccount.yaml

  # The same ServiceAccount under multi-tenancy lockdown
  idchain explain --provider aws --region us-east-1 -f serviceaccount.yaml --default-service-account default

  # A ServiceAccount in the cluster
  idchain explain --provider gcp -n my-app --service-account my-app

  # An app registration in another tenant, for the scope an OCIRepository on ACR asks
  idchain explain --provider azure -f serviceaccount.yaml --scopes https://containerregistry.azure.net/.default

  # Which rule of the impersonation policy allows it, and what the policy adds to the session
  idchain explain --provider aws --region us-east-1 -f serviceaccount.yaml --policy policy.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			policy, err := loadPolicy(policyFile)
			if err != nil {
				return err
			}
			kube, err := a.explainClient(&f, file)
			if err != nil {
				return err
			}
			p, err := a.providerFor(f.provider)
			if err != nil {
				return err
			}
			e, planErr := explain(cmd.Context(), p, kube, &f, policy)
			if errors.Is(planErr, aws.ErrRegionRequired) {
				planErr = fmt.Errorf("%w (idchain: pass --region)", planErr)
			}
			planErr = f.explainGate(planErr)
			if f.output == "json" {
				err = writeJSON(a.stdout, e)
			} else {
				err = a.printExplanation(a.stdout, e)
			}
			switch {
			case planErr != nil:
				return fail(planErr)
			case err != nil:
				return fail(err)
			}
			return nil
		},
	}
	f.register(cmd, a.objectLevelDefault)
	cmd.Flags().StringVarP(&file, "filename", "f", "", "read ServiceAccounts from this manifest instead of the cluster (- for stdin)")
	cmd.Flags().StringVar(&policyFile, "policy", "",
		"plan with this impersonation policy, as controllers given it do (see 'idchain policy --help')")
	return cmd
}

// explainClient returns the client holding the ServiceAccounts: a fake one
// filled from -f, or the cluster's.
func (a *app) explainClient(f *chainFlags, file string) (client.Client, error) {
	if file == "" {
		if !f.needsServiceAccount() {
			return nil, nil // the controller's identity: nothing to read
		}
		c, err := a.kube(f)
		if err != nil {
			return nil, usageError("%w", err)
		}
		return c, nil
	}
	m, err := readManifests([]string{file}, a.stdin)
	if err != nil {
		return nil, usageError("%w", err)
	}
	if len(m.problems) > 0 {
		p := m.problems[0]
		return nil, usageError("failed to read '%s': %s", location(p.file, p.line, p.col), p.problem)
	}
	objs := make([]client.Object, 0, len(m.serviceAccounts))
	for _, msa := range m.serviceAccounts {
		sa := msa.sa.DeepCopy()
		if sa.Namespace == "" {
			sa.Namespace = lintDefaultNamespace
		}
		objs = append(objs, sa)
	}
	if err := pickServiceAccount(f, file, objs); err != nil {
		return nil, err
	}
	return fake.NewClientBuilder().WithObjects(objs...).Build(), nil
}

// pickServiceAccount settles which ServiceAccount of the manifest file the
// object names: the only one, or the one --namespace and
// --service-account name, which must be in the file. A file with several
// and no --service-account is refused, listing them: explaining the
// controller's own identity would silently ignore the file. Under
// lockdown, --namespace without --service-account is an object that names
// none, for which the lockdown default is used.
func pickServiceAccount(f *chainFlags, file string, objs []client.Object) error {
	if file == "-" {
		file = "<stdin>"
	}
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.GetNamespace() + "/" + o.GetName()
	}
	oneOf := func() string {
		if len(names) > 10 {
			return strings.Join(names[:10], ", ") + fmt.Sprintf(", … (%d more)", len(names)-10)
		}
		return strings.Join(names, ", ")
	}
	switch {
	case f.serviceAccount == "" && f.defaultSA != "" && f.namespace != "":
		return nil // the object names none: lockdown's default
	case len(objs) == 0:
		return usageError("'%s' holds no ServiceAccount: pass the manifest of the one the object names, "+
			"or leave out -f to explain the controller's own identity", file)
	case f.serviceAccount == "" && len(objs) > 1:
		return usageError("'%s' holds %d ServiceAccounts: pass --namespace and --service-account, one of: %s",
			file, len(objs), oneOf())
	case f.serviceAccount == "":
		f.serviceAccount = objs[0].GetName()
		if f.namespace == "" {
			f.namespace = objs[0].GetNamespace()
		}
		return nil
	}
	var match []client.Object
	for _, o := range objs {
		if o.GetName() == f.serviceAccount && (f.namespace == "" || o.GetNamespace() == f.namespace) {
			match = append(match, o)
		}
	}
	switch {
	case len(match) == 0:
		want := f.serviceAccount
		if f.namespace != "" {
			want = f.namespace + "/" + want
		}
		return usageError("'%s' holds no ServiceAccount %s: pass one of: %s", file, quote.Tenant(want), oneOf())
	case len(match) > 1:
		return usageError("'%s' holds %d ServiceAccounts named %s: pass --namespace, one of: %s", file, len(match),
			quote.Tenant(f.serviceAccount), oneOf())
	}
	f.namespace = match[0].GetNamespace()
	return nil
}

// explain plans the chain with the library, with policy when not nil, and
// describes it. It returns the library's refusal, if any, along with what
// can be shown.
func explain(ctx context.Context, p auth.Provider, kube client.Client, f *chainFlags, policy *loadedPolicy) (*explanation, error) {
	opts := f.options(kube)
	e := &explanation{Provider: p.GetName(), Lockdown: inspect.Lockdown(opts)}
	if f.serviceAccount != "" {
		e.ServiceAccount = f.namespace + "/" + f.serviceAccount
	}

	var withPolicy []auth.Option
	if policy != nil {
		withPolicy = []auth.Option{auth.WithImpersonationPolicy(policy.policy)}
	}
	chain, err := auth.Plan(ctx, p, append(opts, withPolicy...)...)
	if errors.Is(err, azure.ErrScopesRequired) && len(f.scopes) == 0 {
		// The scopes are the object's: the controller asks for the ones of
		// the service it reaches. Explain the chain for ARM's, and say so.
		f.scopes = []string{azureDefaultScope}
		e.Scopes, e.ScopesNote = f.scopes, azureScopesNote
		opts = append(opts, auth.WithScopes(f.scopes...))
		chain, err = auth.Plan(ctx, p, append(opts, withPolicy...)...)
	}
	if err != nil {
		e.Refused = err.Error()
		if lp, ok := lintProviderFor(p.GetName()); ok {
			_, e.Fix = lp.refusal(err, e.Lockdown)
		}
		if policy != nil {
			explainRefusedPolicy(ctx, p, opts, f, policy, e)
		}
		return e, err
	}
	if policy != nil {
		e.Policy = &explainPolicy{File: policy.file, Outcome: policyNotApplied}
		if imp := chain.Impersonation; imp != nil {
			// Plan allowed it: the first rule that allows it, from the
			// source Plan picked, is the one that did.
			rule, _ := policy.policy.Allows(imp.ServiceAccount.Namespace, imp.ServiceAccount.Name, chain.Source.Kind, imp.Target)
			e.Policy.Outcome, e.Policy.Rule = policyAllowed, ruleName(rule)
		}
	}
	e.DefaultServiceAccountUsed = chain.DefaultServiceAccountUsed
	if chain.DefaultServiceAccountUsed {
		e.ServiceAccount = chain.Source.ServiceAccount.String()
	}

	var sa *corev1.ServiceAccount
	if chain.Source.Kind == auth.SourceServiceAccount {
		sa = &corev1.ServiceAccount{}
		if err := kube.Get(ctx, chain.Source.ServiceAccount, sa); err != nil {
			return e, fmt.Errorf("failed to get service account '%s': %w", chain.Source.ServiceAccount, err)
		}
	}
	audiences, audNote, err := sourceAudiences(ctx, p, sa, f.audiences)
	if err != nil {
		e.Refused = err.Error()
		return e, err
	}

	d := describe(chain, f, audiences, audNote)
	e.Source = &explainSource{Kind: string(chain.Source.Kind), Identity: chain.Source.Identity, Description: d.source}
	e.Hops, e.Warnings = d.hops, d.warnings
	e.Region, e.STSEndpoint, e.SessionName = d.region, d.endpoint, d.sessionName
	e.Scopes = d.scopes
	if d.scopesNote != "" {
		e.ScopesNote = d.scopesNote
	}
	if imp := chain.Impersonation; imp != nil {
		e.Target = imp.Target
		for _, p := range imp.Parameters {
			e.Parameters = append(e.Parameters, explainParameter{Field: p.Field, SentAs: p.SentAs, Value: p.Value,
				Values: p.Values, Keys: p.Keys})
		}
	}

	e.CacheKey = &explainKeyInfo{Source: inspect.SourceKeyInputs(chain, audiences), Target: inspect.TargetKeyInputs(chain)}
	if audNote != "" {
		for i, in := range e.CacheKey.Source {
			if in.Name == "audiences" {
				e.CacheKey.Source[i].Value = keyNote(audNote)
			}
		}
	}
	return e, nil
}

// What explain assumes for an Azure impersonation without --scopes.
const (
	azureDefaultScope = "https://management.azure.com/.default"
	azureScopesNote   = "idchain's default for Azure impersonation, without --scopes: pass the scopes the " +
		"controller asks for, those of what it reaches, such as ACR's, AKS's or Key Vault's"
)

// explainRefusedPolicy says what the policy decided on a chain the
// library refused with it. The chain planned without the policy has the
// source and target the policy ruled on; when the library refuses that
// too, it refused before the policy could rule.
func explainRefusedPolicy(ctx context.Context, p auth.Provider, opts []auth.Option, f *chainFlags, policy *loadedPolicy,
	e *explanation) {
	e.Policy = &explainPolicy{File: policy.file, Outcome: policyNotReached}
	chain, err := auth.Plan(ctx, p, opts...)
	if err != nil || chain.Impersonation == nil {
		return
	}
	imp, kind := chain.Impersonation, chain.Source.Kind
	d := describe(chain, f, nil, "")
	e.Source = &explainSource{Kind: string(kind), Identity: chain.Source.Identity, Description: d.source}
	e.Target = imp.Target
	rule, ok := policy.policy.Allows(imp.ServiceAccount.Namespace, imp.ServiceAccount.Name, kind, imp.Target)
	if ok {
		// A rule allows it, and the library refused what the policy adds
		// to the session: the refusal says what.
		e.Policy.Outcome, e.Policy.Rule = policyAllowed, ruleName(rule)
		return
	}
	e.Policy.Outcome = policyDenied
	e.Fix = policyFix(imp.ServiceAccount.Namespace, kind, imp.Target)
}

// sourceAudiences returns the audiences of the ServiceAccount token the way
// the chain will pick them, or a note when only the cluster can tell (GKE
// reads its workload identity pool from the metadata server, a network
// call explain does not make).
func sourceAudiences(ctx context.Context, p auth.Provider, sa *corev1.ServiceAccount, flag []string) ([]string, string, error) {
	switch {
	case sa == nil:
		return nil, "", nil
	case len(flag) > 0:
		return flag, "", nil
	case p.GetName() == gcp.ProviderName && sa.Annotations[gcp.WorkloadIdentityProviderAnnotation] == "":
		return nil, "<project>.svc.id.goog (the GKE workload identity pool, read from the metadata server at runtime)", nil
	}
	aud, err := p.GetAudiences(ctx, *sa)
	if err != nil {
		return nil, "", fmt.Errorf("failed to get provider audience: %w", err)
	}
	return aud, "", nil
}

func (a *app) printExplanation(w io.Writer, e *explanation) error {
	s := a.style()
	kv := table{}
	row := func(k, v string) { kv.add(nil, k+":", v) }
	row("Provider", e.Provider)
	switch {
	case e.ServiceAccount == "":
		row("ServiceAccount", "none (the object names no ServiceAccount)")
	case e.DefaultServiceAccountUsed:
		row("ServiceAccount", e.ServiceAccount+" (the lockdown default: the object names none)")
	default:
		row("ServiceAccount", e.ServiceAccount)
	}
	lockdown := "off"
	if e.Lockdown {
		lockdown = "on: the controller's identity is never the source of an impersonation"
	}
	row("Lockdown", lockdown)
	if e.Source != nil {
		row("Source", e.Source.Description)
		target := e.Target
		if target == "" {
			target = "none: the source's own token is the result"
		}
		row("Target", target)
	}
	if e.Region != "" {
		row("Region", e.Region)
	}
	if e.STSEndpoint != "" {
		row("STS endpoint", e.STSEndpoint)
	}
	if e.SessionName != "" {
		row("Session name", e.SessionName)
	}
	if len(e.Scopes) > 0 {
		scopes := strings.Join(e.Scopes, ", ")
		if e.ScopesNote != "" {
			scopes += " (" + e.ScopesNote + ")"
		}
		row("Scopes", scopes)
	}
	if e.Policy != nil {
		kv.add(nil, "Policy:", policyRow(e.Policy))
	}
	if e.Refused != "" {
		kv.add(s.red, "Outcome:", "refused by the library (no cloud was called)")
		if e.Fix != "" {
			kv.add(s.yellow, "Fix:", e.Fix)
		}
	} else {
		kv.add(s.green, "Outcome:", "allowed (no cloud was called; `idchain token` runs this chain)")
	}
	if err := kv.write(w, s); err != nil {
		return err
	}
	for _, warn := range e.Warnings {
		fmt.Fprintf(w, "%s %s\n", s.yellow("Warning:"), quote.Clean(warn, quote.MaxErrorBytes))
	}
	if e.Refused != "" {
		return nil
	}

	fmt.Fprintln(w)
	hops := table{header: []string{"STEP", "CALL", "DETAILS"}}
	for i, h := range e.Hops {
		hops.add(nil, fmt.Sprint(i+1), h.Call, h.Details)
		// One row per parameter the call sends, under its details.
		for _, p := range h.sends {
			hops.add(nil, "", "", p)
		}
	}
	if err := hops.write(w, s); err != nil {
		return err
	}

	fmt.Fprintln(w)
	keys := table{header: []string{"CACHE KEY", "INPUT", "VALUE"}}
	for _, in := range e.CacheKey.Source {
		keys.add(nil, "source", in.Name, keyValue(in.Value))
	}
	for _, in := range e.CacheKey.Target {
		keys.add(nil, "target", in.Name, keyValue(in.Value))
	}
	return keys.write(w, s)
}

// policyRow tells the policy's decision in a line.
func policyRow(p *explainPolicy) string {
	switch p.Outcome {
	case policyAllowed:
		return fmt.Sprintf("allowed by %s of %s", p.Rule, p.File)
	case policyDenied:
		return fmt.Sprintf("denied: no rule of %s allows this impersonation", p.File)
	case policyNotApplied:
		return fmt.Sprintf("not applied: the chain impersonates no identity, and %s rules on impersonation only", p.File)
	}
	return fmt.Sprintf("not reached: the library refused the chain before %s could rule on it", p.File)
}

// keyNote stands for a cache key input only the cluster can tell.
type keyNote string

// keyValue shows a cache key input as JSON, the way the key encodes it, so
// "" and [] and ["a,b"] are told apart.
func keyValue(v any) string {
	if n, ok := v.(keyNote); ok {
		return string(n)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
