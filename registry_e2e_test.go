package auth_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

// Registry logins and cluster access, driven end to end from the testdata
// manifests: the fakes of ECR, EKS and GKE see who calls them, so each test
// proves that what the library hands out belongs to the impersonated
// identity, not to its source.

// awsManifests are the AWS cases of the proposal: each manifest with the
// world that makes its source identity work, and only that one reach the
// target role.
var awsManifests = []struct {
	manifest string
	world    func(t *testing.T, w *awsWorld)
}{
	{
		manifest: "aws-pod-identity.yaml",
		world: func(t *testing.T, w *awsWorld) {
			w.podIdentity(t)
			w.sts.AllowAssumeRole(controllerRole, targetRole)
		},
	},
	{
		manifest: "aws-controller-irsa.yaml",
		world: func(t *testing.T, w *awsWorld) {
			env, err := fakes.IRSAEnv(t.TempDir(), region, w.sts, w.issuer, controllerRole, "flux-system", "source-controller")
			if err != nil {
				t.Fatal(err)
			}
			setEnv(t, env)
			w.sts.AllowWebIdentity(controllerRole, "flux-system", "source-controller")
			w.sts.AllowAssumeRole(controllerRole, targetRole)
		},
	},
	{
		manifest: "aws-object-irsa.yaml",
		world: func(t *testing.T, w *awsWorld) {
			w.podIdentity(t) // present; the controller may not assume the target
			w.sts.AllowWebIdentity(sourceRole, "my-app", "my-app")
			w.sts.AllowAssumeRole(sourceRole, targetRole)
		},
	},
}

// gcpManifests are the GCP cases of the proposal, each with the grants that
// let its source, and only it, impersonate the target.
var gcpManifests = []struct {
	manifest string
	grant    func(w *gcpWorld)
}{
	{
		manifest: "gcp-controller-wif.yaml",
		grant:    func(w *gcpWorld) { w.iam.AllowImpersonation(controllerGSA, targetGSA) },
	},
	{
		manifest: "gcp-object-wif.yaml",
		grant: func(w *gcpWorld) {
			w.iam.AllowImpersonation(myAppPrincipal, sourceGSA)
			w.iam.AllowImpersonation(sourceGSA, targetGSA)
		},
	},
	{
		manifest: "gcp-object-direct-access.yaml",
		grant:    func(w *gcpWorld) { w.iam.AllowImpersonation(myAppPrincipal, targetGSA) },
	},
}

// startECR starts a fake ECR on w's STS that lets roles log in to ECR and
// ECR Public, and a provider that uses it.
func (w *awsWorld) startECR(t *testing.T, roles ...string) (*fakes.ECR, aws.Provider) {
	t.Helper()
	ecr := fakes.StartECR(w.sts, fakes.ECROptions{})
	t.Cleanup(ecr.Close)
	for _, r := range roles {
		ecr.Allow(r)
		ecr.AllowPublic(r)
	}
	return ecr, aws.Provider{Implementation: w.sts.Implementation().WithECR(ecr)}
}

func TestAWSRegistryLoginIsTheTargetRole(t *testing.T) {
	registries := []struct {
		name      string
		repo      string
		operation string
	}{
		{"ECR", "123456789012.dkr.ecr.us-east-1.amazonaws.com/repo", fakes.ECRGetAuthorizationToken},
		{"ECR Public", "public.ecr.aws/flux/podinfo", fakes.ECRPublicGetAuthorizationToken},
	}
	for _, m := range awsManifests {
		for _, reg := range registries {
			t.Run(m.manifest+"/"+reg.name, func(t *testing.T) {
				g := NewWithT(t)
				w := newAWSWorld(t)
				m.world(t, w)
				// Every role of the chain may log in: the fake tells which did.
				ecr, provider := w.startECR(t, controllerRole, sourceRole, targetRole)
				kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, m.manifest))

				creds, err := auth.GetArtifactRegistryCredentials(context.Background(), provider, reg.repo, myAppOptions(kube)...)
				g.Expect(err).NotTo(HaveOccurred())

				login, err := creds.Authorization()
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(login.Username).To(Equal("AWS"))
				who, ok := ecr.WhoAmI(login.Password)
				g.Expect(ok).To(BeTrue(), "the password was not issued by the fake ECR")
				g.Expect(who).To(Equal(targetSession))
				g.Expect(ecr.Calls()).To(Equal([]fakes.ECRCall{{
					Operation: reg.operation, Caller: targetRole, Region: region,
				}}))
				g.Expect(creds.ExpiresAt).To(BeTemporally("~", time.Now().Add(12*time.Hour), time.Minute))
			})
		}
	}
}

// TestAWSRegistryLoginRefusedForTheTarget shows that the login is asked for
// with the target's credentials only: ECR allowing every source but not the
// target refuses it, and the error says who was refused what.
func TestAWSRegistryLoginRefusedForTheTarget(t *testing.T) {
	g := NewWithT(t)
	w := newAWSWorld(t)
	awsManifests[0].world(t, w)
	ecr, provider := w.startECR(t, controllerRole, sourceRole)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, awsManifests[0].manifest))

	_, err := auth.GetArtifactRegistryCredentials(context.Background(), provider,
		"123456789012.dkr.ecr.us-east-1.amazonaws.com/repo", myAppOptions(kube)...)
	g.Expect(err).To(MatchError(MatchRegexp(awsAPIErrorPattern(
		"failed to get aws registry credentials for '123456789012.dkr.ecr.us-east-1.amazonaws.com/repo': "+
			"operation error ECR: GetAuthorizationToken",
		400, "AccessDeniedException: User: "+targetSession+" is not authorized to perform: ecr:GetAuthorizationToken "+
			"on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action"))))
	var apiErr smithy.APIError
	g.Expect(errors.As(err, &apiErr)).To(BeTrue())
	g.Expect(apiErr.ErrorCode()).To(Equal("AccessDeniedException"))
	g.Expect(ecr.Calls()).To(Equal([]fakes.ECRCall{{
		Operation: fakes.ECRGetAuthorizationToken, Caller: targetRole, Region: region, Err: "AccessDeniedException",
	}}))
}

// awsAPIErrorPattern matches the whole text of an AWS SDK error after
// prefix, whose request ID is random.
func awsAPIErrorPattern(prefix string, status int, apiError string) string {
	return "^" + regexp.QuoteMeta(prefix) + regexp.QuoteMeta(fmt.Sprintf(", https response error StatusCode: %d, RequestID: ", status)) +
		"[0-9a-f-]{36}" + regexp.QuoteMeta(", api error "+apiError) + "$"
}

func TestGCPArtifactRegistryLoginIsTheTargetServiceAccount(t *testing.T) {
	for _, m := range gcpManifests {
		t.Run(m.manifest, func(t *testing.T) {
			g := NewWithT(t)
			w := newGCPWorld(t)
			m.grant(w)
			kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, m.manifest))

			creds, err := auth.GetArtifactRegistryCredentials(context.Background(), w.provider,
				"us-docker.pkg.dev/target-project/charts/podinfo", myAppOptions(kube)...)
			g.Expect(err).NotTo(HaveOccurred())

			login, err := creds.Authorization()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(login.Username).To(Equal("oauth2accesstoken"))
			who, ok := w.iam.WhoAmI(login.Password)
			g.Expect(ok).To(BeTrue(), "the password was not issued by the fake IAM Credentials")
			g.Expect(who).To(Equal(targetGSA))
			calls := w.iam.Calls()
			g.Expect(calls[len(calls)-1]).To(Equal(fakes.GCPIAMCall{
				Target: targetGSA, Caller: map[string]string{
					"gcp-controller-wif.yaml":       controllerGSA,
					"gcp-object-wif.yaml":           sourceGSA,
					"gcp-object-direct-access.yaml": myAppPrincipal,
				}[m.manifest],
				Scopes: []string{cloudPlatform}, Lifetime: "3600s",
			}))
		})
	}
}
