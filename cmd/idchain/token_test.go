package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

// recordingProvider remembers every token its provider returns, so a test
// can check that none of them is printed.
type recordingProvider struct {
	auth.Provider
	mu      sync.Mutex
	secrets []string
}

func (p *recordingProvider) record(t fluxauth.Token) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch t := t.(type) {
	case *aws.Credentials:
		p.secrets = append(p.secrets, awssdk.ToString(t.AccessKeyId), awssdk.ToString(t.SecretAccessKey),
			awssdk.ToString(t.SessionToken))
	case *gcp.Token:
		p.secrets = append(p.secrets, t.AccessToken)
	}
}

func (p *recordingProvider) NewControllerToken(ctx context.Context, opts ...fluxauth.Option) (fluxauth.Token, error) {
	t, err := p.Provider.NewControllerToken(ctx, opts...)
	p.record(t)
	return t, err
}

func (p *recordingProvider) NewTokenForServiceAccount(ctx context.Context, oidcToken string,
	sa corev1.ServiceAccount, opts ...fluxauth.Option) (fluxauth.Token, error) {
	t, err := p.Provider.NewTokenForServiceAccount(ctx, oidcToken, sa, opts...)
	p.record(t)
	return t, err
}

func (p *recordingProvider) Impersonate(ctx context.Context, source fluxauth.Token, imp auth.Impersonation,
	opts ...fluxauth.Option) (fluxauth.Token, error) {
	t, err := p.Provider.Impersonate(ctx, source, imp, opts...)
	p.record(t)
	return t, err
}

// tokenWorld starts the demo's fakes for a token test, points the process
// environment at them (so the test cannot be parallel) and returns the
// setup that injects the provider and a Kubernetes client holding the
// seed manifest.
func tokenWorld(t *testing.T, provider, manifest string, awsEnv func(*demoWorld) map[string]string) (*demoWorld, *recordingProvider, func(*app)) {
	t.Helper()
	w, err := startDemoWorld()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.close)
	for k, v := range w.gcpEnv {
		t.Setenv(k, v)
	}
	if awsEnv != nil {
		for k, v := range awsEnv(w) {
			t.Setenv(k, v)
		}
	}
	// sts:GetCallerIdentity finds the fake STS the way the SDK finds any
	// other STS endpoint.
	t.Setenv("AWS_ENDPOINT_URL_STS", w.sts.URL)
	sa, err := demoServiceAccount(manifest)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingProvider{Provider: w.aws}
	if provider == "gcp" {
		rec.Provider = w.gcp
	}
	return w, rec, func(a *app) {
		a.provider = func(string) (auth.Provider, error) { return rec, nil }
		a.kubeClient = fakes.NewKubeClient(w.issuer, sa)
	}
}

func TestTokenAWS(t *testing.T) {
	g := NewWithT(t)
	w, rec, setup := tokenWorld(t, "aws", "aws-pod-identity.yaml", podIdentity)

	r := run(t, setup, "token", "--provider", "aws", "-n", "my-app", "--service-account", "my-app", "--region", "us-east-1")
	g.Expect(r.code).To(Equal(exitOK), r.stderr)
	g.Expect(r.stderr).To(BeEmpty())
	g.Expect(r.stdout).To(MatchRegexp(`(?m)^Became:\s+` + demoAssumed + `$`))
	g.Expect(r.stdout).To(MatchRegexp(`(?m)^Verified by:\s+sts:GetCallerIdentity$`))
	g.Expect(r.stdout).To(MatchRegexp(`(?m)^Expires:\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in [0-9hms]+\)$`))
	g.Expect(w.sts.Count("AssumeRole")).To(Equal(1))
	g.Expect(w.agent.Requests()).To(Equal(int64(1)))
	expectNoSecret(g, rec, r)
}

func TestTokenAWSObjectLevelJSON(t *testing.T) {
	g := NewWithT(t)
	_, rec, setup := tokenWorld(t, "aws", "aws-object-irsa.yaml", podIdentity)

	r := run(t, setup, "token", "--provider", "aws", "-n", "my-app", "--service-account", "my-app",
		"--region", "us-east-1", "--default-service-account", "default", "-o", "json")
	g.Expect(r.code).To(Equal(exitOK), r.stderr)
	var got tokenResult
	g.Expect(json.Unmarshal([]byte(r.stdout), &got)).To(Succeed())
	g.Expect(got.Identity).To(Equal(demoAssumed))
	g.Expect(got.Source).To(Equal("service account 'my-app/my-app' as 'arn:aws:iam::111111111111:role/source-account-role'"))
	g.Expect(got.Target).To(Equal(demoTargetRole))
	g.Expect(time.Until(got.Expires)).To(BeNumerically("~", time.Hour, time.Minute))
	expectNoSecret(g, rec, r)
}

func TestTokenGCP(t *testing.T) {
	g := NewWithT(t)
	_, rec, setup := tokenWorld(t, "gcp", "gcp-object-wif.yaml", nil)

	r := run(t, setup, "token", "--provider", "gcp", "-n", "my-app", "--service-account", "my-app")
	g.Expect(r.code).To(Equal(exitOK), r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`(?m)^Became:\s+` + demoTargetGSA + `$`))
	expectNoSecret(g, rec, r)

	// The controller's own identity, read from the metadata server.
	r = run(t, setup, "token", "--provider", "gcp")
	g.Expect(r.code).To(Equal(exitOK), r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`(?m)^Became:\s+` + demoControllerGSA + `$`))
	g.Expect(r.stdout).To(ContainSubstring("the metadata server"))
	expectNoSecret(g, rec, r)
}

func TestTokenRefused(t *testing.T) {
	g := NewWithT(t)
	w, _, setup := tokenWorld(t, "aws", "demo-lockdown-controller.yaml", podIdentity)

	r := run(t, setup, "token", "--provider", "aws", "-n", "my-app", "--service-account", "my-app",
		"--region", "us-east-1", "--default-service-account", "default")
	g.Expect(r.code).To(Equal(exitFindings))
	g.Expect(r.stdout).To(BeEmpty())
	g.Expect(r.stderr).To(HavePrefix("Error: " + auth.ErrLockdownForbidsControllerIdentity.Error()))
	g.Expect(w.tally().total()).To(BeZero())
}

func TestTokenUsageErrors(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	r := run(t, nil, "token")
	g.Expect(r.code).To(Equal(exitUsage))
	g.Expect(r.stderr).To(Equal("Error: --provider is required: aws, gcp or azure\nRun 'idchain token --help' for usage.\n"))
}

func expectNoSecret(g Gomega, rec *recordingProvider, r result) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	g.Expect(rec.secrets).NotTo(BeEmpty(), "the provider returned no token to check")
	for _, s := range rec.secrets {
		if s == "" {
			continue
		}
		g.Expect(strings.Contains(r.stdout+r.stderr, s)).To(BeFalse(), "a secret was printed")
	}
}
