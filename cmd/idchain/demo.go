package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	"github.com/fluxcd/pkg/cache"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/internal/quote"
)

// demoCase is one case of the proposal and what the documentation says it
// does: either a target reached from a source, or a refusal.
type demoCase struct {
	name     string
	manifest string
	provider func(w *demoWorld) auth.Provider
	// awsEnv picks where the controller's AWS credentials come from.
	awsEnv func(w *demoWorld) map[string]string
	// scopes are the object's scopes (auth.WithScopes), which Azure's
	// impersonation needs.
	scopes   []string
	lockdown bool

	wantSource string // who calls the impersonation API
	wantTarget string // who the returned token belongs to
	wantErr    error  // the documented refusal
	// checks says what the fakes check of the request parameters the
	// annotation sets, for a case that sets some.
	checks string
}

var (
	awsProvider   = func(w *demoWorld) auth.Provider { return w.aws }
	gcpProvider   = func(w *demoWorld) auth.Provider { return w.gcp }
	azureProvider = func(w *demoWorld) auth.Provider { return w.azure }
	azureScopes   = []string{demoAzureScope}
	podIdentity   = func(w *demoWorld) map[string]string { return w.podEnv }
	irsa          = func(w *demoWorld) map[string]string { return w.irsaEnv }
	demoAssumed   = "arn:aws:sts::222222222222:assumed-role/target-account-role/" +
		"my-app.my-app.fluxcd.io"
)

var demoCases = []demoCase{
	{name: "AWS Pod Identity → AssumeRole", manifest: "aws-pod-identity.yaml", provider: awsProvider, awsEnv: podIdentity,
		wantSource: demoControllerRole, wantTarget: demoAssumed},
	{name: "AWS controller IRSA → AssumeRole", manifest: "aws-controller-irsa.yaml", provider: awsProvider, awsEnv: irsa,
		wantSource: demoControllerRole, wantTarget: demoAssumed},
	{name: "AWS object-level IRSA → AssumeRole", manifest: "aws-object-irsa.yaml", provider: awsProvider, awsEnv: podIdentity,
		wantSource: demoSourceRole, wantTarget: demoAssumed},
	{name: "AWS object-level IRSA, lockdown", manifest: "aws-object-irsa.yaml", provider: awsProvider, awsEnv: podIdentity,
		lockdown: true, wantSource: demoSourceRole, wantTarget: demoAssumed},
	{name: "GCP controller WIF → impersonate", manifest: "gcp-controller-wif.yaml", provider: gcpProvider,
		wantSource: demoControllerGSA, wantTarget: demoTargetGSA},
	{name: "GCP object-level WIF via GSA", manifest: "gcp-object-wif.yaml", provider: gcpProvider,
		wantSource: demoSourceGSA, wantTarget: demoTargetGSA},
	{name: "GCP object-level direct access", manifest: "gcp-object-direct-access.yaml", provider: gcpProvider,
		wantSource: demoFederatedPrincipal(), wantTarget: demoTargetGSA},
	{name: "GCP object-level WIF via GSA, lockdown", manifest: "gcp-object-wif.yaml", provider: gcpProvider,
		lockdown: true, wantSource: demoSourceGSA, wantTarget: demoTargetGSA},
	{name: "AWS object-level IRSA, session parameters", manifest: "aws-assume-role-params.yaml",
		provider: awsProvider, awsEnv: podIdentity, wantSource: demoSourceRole, wantTarget: demoAssumed,
		checks: "the target's trust allows sts:TagSession only with ExternalId " + quote.Tenant(demoExternalID) +
			"; DurationSeconds at most 1h (role chaining); STS's rules for tags and transitive keys; the managed " +
			"policy exists; the inline policy is a policy document"},
	{name: "GCP controller → hop-sa → impersonate", manifest: "gcp-impersonate-delegates.yaml", provider: gcpProvider,
		wantSource: demoControllerGSA, wantTarget: demoTargetGSA,
		checks: "roles/iam.serviceAccountTokenCreator on each link of the chain (the controller on hop-sa, " +
			"hop-sa on target-sa); a lifetime within 1h; the token's scopes are the ones asked for"},
	{name: "AWS Pod Identity case, lockdown", manifest: "aws-pod-identity.yaml", provider: awsProvider, awsEnv: podIdentity,
		lockdown: true, wantErr: aws.ErrNoServiceAccountRole},
	{name: "useServiceAccount: false, lockdown", manifest: "demo-lockdown-controller.yaml", provider: awsProvider,
		awsEnv: podIdentity, lockdown: true, wantErr: auth.ErrLockdownForbidsControllerIdentity},
	{name: "useServiceAccount: false + role-arn", manifest: "demo-ambiguous.yaml", provider: awsProvider,
		awsEnv: podIdentity, wantErr: auth.ErrAmbiguousSource},
	{name: "Azure controller → app in another tenant", manifest: "azure-impersonate.yaml", provider: azureProvider,
		scopes: azureScopes, wantSource: demoAzureControllerSource, wantTarget: demoAzureTarget, checks: demoAzureChecks},
	{name: "Azure object-level → app in another tenant", manifest: "azure-object-impersonate.yaml",
		provider: azureProvider, scopes: azureScopes, wantSource: demoAzureMyAppSource, wantTarget: demoAzureTarget,
		checks: demoAzureChecks},
	{name: "Azure object-level → app, lockdown", manifest: "azure-object-impersonate.yaml", provider: azureProvider,
		scopes: azureScopes, lockdown: true, wantSource: demoAzureMyAppSource, wantTarget: demoAzureTarget,
		checks: demoAzureChecks},
	{name: "Azure controller case, lockdown", manifest: "azure-impersonate.yaml", provider: azureProvider,
		scopes: azureScopes, lockdown: true, wantErr: azure.ErrNoServiceAccountIdentity},
}

// demoAzureChecks is what the fake Entra checks of the app's token request.
const demoAzureChecks = "the tenant exists (by ID or verified domain) and the app has a service principal in it " +
	"(admin consent); the client assertion is a token Entra minted for the managed identity, unexpired, and a " +
	"federated identity credential of the app matches its issuer, subject (the principal ID) and audience; " +
	"the scope is one resource's /.default"

// demoResult is what one case did.
type demoResult struct {
	c              demoCase
	source, target string
	calls          tally
	cacheHit       bool
	err            error
	// sent is what the impersonation call sent, for a case whose
	// annotation sets request parameters.
	sent *demoSent
	// failure says how the case departed from the documentation, or "".
	failure string
}

func (a *app) newDemoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run every case of the proposal against fake clouds started in process",
		Long: `Demo needs no set-up and no cloud account. It starts fakes of AWS STS, the EKS
Pod Identity agent, Google STS, IAM Credentials, the GKE metadata server and
Microsoft Entra ID on loopback, and a fake Kubernetes API that issues
ServiceAccount tokens. The fakes check what the clouds check: trust policies,
SigV4 signatures made with the source credentials, token audiences and
subjects, IAM grants, Entra's federated identity credentials and admin
consent.

It then runs the library, as a controller would, on each case of the
proposal (the ServiceAccounts of the repository's testdata/), twice with one
token cache, and prints:

  SOURCE       who called AssumeRole or generateAccessToken, or the managed
               identity (MI) whose token was the client assertion of the app's
               Entra token request, as the fake saw it
  TARGET       who the returned token belongs to, as the fake says (on Azure:
               the app, in the tenant Entra issued its token in)
  CLOUD CALLS  the calls the fakes received on the first run
  2ND RUN      hit when the second run made no cloud call at all
  RESULT       ok, or refused, as documented

The Azure cases ask for https://management.azure.com/.default, as the object
gives its scopes (auth.WithScopes): Azure's impersonation needs them.

For the cases whose annotation sets request parameters (an external ID,
session tags, a duration and session policies on AWS; delegates, a lifetime
and scopes on GCP; the tenant, and the object's scopes, on Azure), it then
prints the parameters as the fake received them, which must be the ones
idchain explain shows, and how long the token lasts.

It exits with status 0 only when every case behaved as documented.`,
		Example: `  idchain demo
  make demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			w, err := startDemoWorld()
			if err != nil {
				return fail(fmt.Errorf("failed to start the fakes: %w", err))
			}
			defer w.close()
			// A controller that reads these annotations runs with the
			// upstream feature gate on.
			setObjectLevelWorkloadIdentity(true)

			results := make([]demoResult, 0, len(demoCases))
			for _, c := range demoCases {
				results = append(results, runDemoCase(cmd.Context(), w, c))
			}
			failed, err := a.printDemo(a.stdout, results, time.Since(start))
			if err != nil {
				return fail(err)
			}
			if failed > 0 {
				return fail(fmt.Errorf("%s did not behave as documented", plural(failed, "case")))
			}
			return nil
		},
	}
}

// runDemoCase runs one case twice through one token cache and checks it
// against the documentation.
func runDemoCase(ctx context.Context, w *demoWorld, c demoCase) demoResult {
	r := demoResult{c: c}
	sa, err := demoServiceAccount(c.manifest)
	if err != nil {
		r.failure = err.Error()
		return r
	}
	return runDemoCaseOn(ctx, w, c, sa, r)
}

// runDemoCaseOn runs case c with the ServiceAccount sa.
func runDemoCaseOn(ctx context.Context, w *demoWorld, c demoCase, sa *corev1.ServiceAccount, r demoResult) demoResult {
	env := []map[string]string{w.gcpEnv}
	if c.awsEnv != nil {
		env = append(env, c.awsEnv(w))
	}
	defer setEnv(env...)()
	tokens, err := auth.NewTokenCache(100)
	if err != nil {
		r.failure = err.Error()
		return r
	}
	opts := []auth.Option{
		auth.WithClient(fakes.NewKubeClient(w.issuer, sa)),
		auth.WithServiceAccountNamespace(sa.Namespace),
		auth.WithServiceAccountName(sa.Name),
		auth.WithSTSRegion(demoRegion),
		auth.WithTokenCache(tokens, cache.InvolvedObject{Kind: "Bucket", Name: sa.Name, Namespace: sa.Namespace, Operation: "reconcile"}),
	}
	if c.lockdown {
		opts = append(opts, auth.WithDefaultServiceAccount("default"))
	}
	if len(c.scopes) > 0 {
		opts = append(opts, auth.WithScopes(c.scopes...))
	}
	p := c.provider(w)

	before, mark := w.tally(), w.mark()
	token, err := auth.GetAccessToken(ctx, p, opts...)
	r.calls = w.tally().minus(before)
	r.err = err
	if c.wantErr != nil {
		switch {
		case err == nil:
			r.failure = "not refused; want " + c.wantErr.Error()
		case !errors.Is(err, c.wantErr):
			r.failure = "refused for another reason: " + err.Error()
		case r.calls.total() != 0:
			r.failure = "refused after calling the cloud"
		}
		return r
	}
	if err != nil {
		r.failure = err.Error()
		return r
	}
	r.source = w.lastCaller(p.GetName())
	if r.sent, r.failure = w.checkSent(p, sa, mark, token, fluxauth.WithScopes(c.scopes...)); r.failure != "" {
		return r
	}

	second := w.tally()
	if _, err := auth.GetAccessToken(ctx, p, opts...); err != nil {
		r.failure = "second run: " + err.Error()
		return r
	}
	r.cacheHit = w.tally().minus(second).total() == 0

	if r.target, err = w.owner(ctx, token); err != nil {
		r.failure = "failed to tell who the token belongs to: " + err.Error()
		return r
	}
	switch {
	case r.source != c.wantSource:
		r.failure = fmt.Sprintf("source is '%s', want '%s'", r.source, c.wantSource)
	case r.target != c.wantTarget:
		r.failure = fmt.Sprintf("target is '%s', want '%s'", r.target, c.wantTarget)
	case !r.cacheHit:
		r.failure = "the second run called the cloud again"
	}
	return r
}

func (a *app) printDemo(w io.Writer, results []demoResult, took time.Duration) (failed int, err error) {
	s := a.style()
	t := table{header: []string{"CASE", "SOURCE", "TARGET", "CLOUD CALLS", "2ND RUN", "RESULT"}}
	for _, r := range results {
		source, target, second := shortIdentity(r.source), shortIdentity(r.target), "hit"
		if !r.cacheHit {
			second = "miss"
		}
		result, paint := "ok", s.green
		switch {
		case r.failure != "":
			result, paint = "FAILED", s.red
			failed++
		case r.c.wantErr != nil:
			result, paint = "refused, as documented", s.yellow
			source, target, second = "-", "-", "-"
		}
		t.add(paint, r.c.name, source, target, r.calls.String(), second, result)
	}
	if err := t.write(w, s); err != nil {
		return failed, err
	}

	fmt.Fprintf(w, "\n%s\n", s.bold("The request parameters, as the fakes received and accepted them:"))
	for _, r := range results {
		if r.sent == nil {
			continue
		}
		fmt.Fprintf(w, "  %s: %s\n", r.c.name, quote.Clean(r.sent.call, quote.MaxBytes))
		for _, p := range r.sent.parameters {
			fmt.Fprintf(w, "    %s\n", quote.Clean(p, quote.MaxErrorBytes))
		}
		if r.sent.sessionTags != "" {
			fmt.Fprintf(w, "    the session's tags: %s\n", quote.Clean(r.sent.sessionTags, quote.MaxErrorBytes))
		}
		if r.sent.resolved != "" {
			fmt.Fprintf(w, "    %s\n", quote.Clean(r.sent.resolved, quote.MaxErrorBytes))
		}
		fmt.Fprintf(w, "    the token lasts %s\n", minutes(r.sent.lasts))
		fmt.Fprintf(w, "    %s\n", s.dim("checked by the fakes: "+r.c.checks))
	}

	fmt.Fprintf(w, "\n%s\n", s.bold("The refusals, in the library's words:"))
	for _, r := range results {
		if r.c.wantErr != nil && r.err != nil {
			fmt.Fprintf(w, "  %s: %s\n", r.c.name, r.err)
		}
	}
	if failed > 0 {
		fmt.Fprintf(w, "\n%s\n", s.bold("Not as documented:"))
		for _, r := range results {
			if r.failure != "" {
				fmt.Fprintf(w, "  %s: %s\n", r.c.name, s.red(r.failure))
			}
		}
	}
	summary := fmt.Sprintf("All %d cases behaved as documented", len(results))
	if failed > 0 {
		summary = fmt.Sprintf("%s of %d did not behave as documented", plural(failed, "case"), len(results))
	}
	_, err = fmt.Fprintf(w, "\n%s (%s, fakes on loopback, no cloud account used).\n",
		summary, took.Round(10*time.Millisecond))
	return failed, err
}

// shortIdentity trims what every identity of a column repeats, so the table
// fits a terminal: the ARN prefix, and the pool path of a federated
// principal.
func shortIdentity(id string) string {
	for _, p := range []string{"arn:aws:iam::", "arn:aws:sts::"} {
		if rest, ok := strings.CutPrefix(id, p); ok {
			return rest
		}
	}
	if i := strings.Index(id, "/subject/"); strings.HasPrefix(id, "principal://") && i > 0 {
		return "principal://…" + id[i:]
	}
	if id == "" {
		return "-"
	}
	return id
}

// minutes shows a whole number of minutes as people write it: "30m", "1h",
// "1h30m".
func minutes(d time.Duration) string {
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}
