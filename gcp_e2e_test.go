package auth_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	. "github.com/onsi/gomega"
	"google.golang.org/api/googleapi"
	corev1 "k8s.io/api/core/v1"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

// The GKE metadata is cached process-wide by the Google libraries and by
// upstream, so every GCP test in this binary uses the same cluster.
const (
	gkeProject    = "flux-project"
	gkeLocation   = "us-central1"
	gkeCluster    = "flux"
	gkeAudience   = "identitynamespace:flux-project.svc.id.goog:https://container.googleapis.com/v1/projects/flux-project/locations/us-central1/clusters/flux"
	controllerGSA = "flux-controller@flux-project.iam.gserviceaccount.com"
	sourceGSA     = "source-sa@source-project.iam.gserviceaccount.com"
	targetGSA     = "target-sa@target-project.iam.gserviceaccount.com"
	cloudPlatform = "https://www.googleapis.com/auth/cloud-platform"
)

var myAppPrincipal = fakes.FederatedPrincipal(gkeAudience, "system:serviceaccount:my-app:my-app")

// gcpWorld is a fake GCP: metadata server, Google STS and IAM Credentials,
// and a provider that points the real Google libraries at them.
type gcpWorld struct {
	issuer   *fakes.Issuer
	iam      *fakes.GCPIAMCredentials
	sts      *fakes.GCPSTS
	metadata *fakes.GCPMetadata
	provider gcp.Provider
}

func newGCPWorld(t *testing.T) *gcpWorld {
	t.Helper()
	return newGCPWorldWith(t, fakes.GCPIAMCredentialsOptions{})
}

// newGCPWorldWith is newGCPWorld with IAM Credentials configured by opts.
func newGCPWorldWith(t *testing.T, opts fakes.GCPIAMCredentialsOptions) *gcpWorld {
	t.Helper()
	issuer, err := fakes.NewIssuer("https://container.googleapis.com/v1/projects/flux-project/locations/us-central1/clusters/flux")
	if err != nil {
		t.Fatal(err)
	}
	iam := fakes.StartGCPIAMCredentials(opts)
	t.Cleanup(iam.Close)
	sts := fakes.StartGCPSTS(fakes.GCPSTSOptions{Issuer: issuer, IAM: iam})
	t.Cleanup(sts.Close)
	sts.AllowAudience(gkeAudience)
	md := fakes.StartGCPMetadata(fakes.GCPMetadataOptions{
		ProjectID: gkeProject, ClusterLocation: gkeLocation, ClusterName: gkeCluster,
		ServiceAccountEmail: controllerGSA, IAM: iam,
	})
	t.Cleanup(md.Close)
	setEnv(t, fakes.GCPEnv(t.TempDir(), md))
	return &gcpWorld{issuer: issuer, iam: iam, sts: sts, metadata: md,
		provider: gcp.Provider{Implementation: fakes.NewGCPImplementation(sts, iam)}}
}

func (w *gcpWorld) whoAmI(t *testing.T, token any) string {
	t.Helper()
	tok, ok := token.(*gcp.Token)
	if !ok {
		t.Fatalf("token is %T, want *gcp.Token", token)
	}
	who, ok := w.iam.WhoAmI(tok.AccessToken)
	if !ok {
		t.Fatal("the returned token was not issued by the fake IAM Credentials")
	}
	return who
}

func myAppOptions(kube *fakes.KubeClient, extra ...auth.Option) []auth.Option {
	return append([]auth.Option{auth.WithClient(kube), auth.WithServiceAccountNamespace("my-app"),
		auth.WithServiceAccountName("my-app")}, extra...)
}

func TestGCPControllerWIFImpersonate(t *testing.T) {
	g := NewWithT(t)
	w := newGCPWorld(t)
	w.iam.AllowImpersonation(controllerGSA, targetGSA)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "gcp-controller-wif.yaml"))

	token, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube)...)
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(w.iam.Calls()).To(Equal([]fakes.GCPIAMCall{{
		Target: targetGSA, Caller: controllerGSA, Scopes: []string{cloudPlatform}, Lifetime: "3600s",
	}}))
	g.Expect(w.whoAmI(t, token)).To(Equal(targetGSA))
	g.Expect(w.sts.Exchanges()).To(BeZero())
	g.Expect(kube.TokenRequests()).To(BeZero())
}

func TestGCPObjectLevelWIFImpersonate(t *testing.T) {
	for _, lockdown := range []bool{false, true} {
		t.Run(map[bool]string{false: "lockdown off", true: "lockdown on"}[lockdown], func(t *testing.T) {
			g := NewWithT(t)
			w := newGCPWorld(t)
			w.iam.AllowImpersonation(myAppPrincipal, sourceGSA)
			w.iam.AllowImpersonation(sourceGSA, targetGSA)
			w.iam.AllowImpersonation(controllerGSA, targetGSA) // must not be used
			kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "gcp-object-wif.yaml"))
			var extra []auth.Option
			if lockdown {
				extra = append(extra, auth.WithDefaultServiceAccount("default"))
			}

			token, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube, extra...)...)
			g.Expect(err).NotTo(HaveOccurred())

			g.Expect(w.sts.Exchanges()).To(Equal(int64(1)))
			calls := w.iam.Calls()
			g.Expect(calls).To(HaveLen(2))
			g.Expect(calls[0].Target).To(Equal(sourceGSA), "upstream's own hop to iam.gke.io/gcp-service-account")
			g.Expect(calls[0].Caller).To(Equal(myAppPrincipal))
			g.Expect(calls[1]).To(Equal(fakes.GCPIAMCall{
				Target: targetGSA, Caller: sourceGSA, Scopes: []string{cloudPlatform}, Lifetime: "3600s",
			}))
			g.Expect(w.whoAmI(t, token)).To(Equal(targetGSA))
			g.Expect(w.metadata.Requests("instance/service-accounts/default/token")).To(BeZero())
		})
	}
}

// The GCP row of the lockdown table: useServiceAccount: true without
// iam.gke.io/gcp-service-account is valid, with the federated identity as
// the source, with and without lockdown.
func TestGCPObjectLevelDirectAccessImpersonate(t *testing.T) {
	for _, lockdown := range []bool{false, true} {
		t.Run(map[bool]string{false: "lockdown off", true: "lockdown on"}[lockdown], func(t *testing.T) {
			g := NewWithT(t)
			w := newGCPWorld(t)
			w.iam.AllowImpersonation(myAppPrincipal, targetGSA)
			kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "gcp-object-direct-access.yaml"))
			var extra []auth.Option
			if lockdown {
				extra = append(extra, auth.WithDefaultServiceAccount("default"))
			}

			token, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube, extra...)...)
			g.Expect(err).NotTo(HaveOccurred())

			g.Expect(w.sts.Exchanges()).To(Equal(int64(1)))
			g.Expect(w.iam.Calls()).To(Equal([]fakes.GCPIAMCall{{
				Target: targetGSA, Caller: myAppPrincipal, Scopes: []string{cloudPlatform}, Lifetime: "3600s",
			}}))
			g.Expect(w.whoAmI(t, token)).To(Equal(targetGSA))
		})
	}
}

func TestGCPImpersonateScopesAndRefusal(t *testing.T) {
	g := NewWithT(t)
	w := newGCPWorld(t)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "gcp-controller-wif.yaml"))
	const readOnly = "https://www.googleapis.com/auth/devstorage.read_only"

	// Not granted: the error names the target and the source.
	_, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube, auth.WithScopes(readOnly))...)
	g.Expect(err).To(MatchError("failed to get gcp credentials of '" + targetGSA + "' impersonated from the controller identity: " +
		"iamcredentials generateAccessToken for '" + targetGSA + "': HTTP 403: Permission " +
		"'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist) (IAM_PERMISSION_DENIED). " +
		"grant the source identity roles/iam.serviceAccountTokenCreator on '" + targetGSA + "'"))
	var apiErr *googleapi.Error
	g.Expect(errors.As(err, &apiErr)).To(BeTrue())
	g.Expect(apiErr.Code).To(Equal(http.StatusForbidden))

	w.iam.AllowImpersonation(controllerGSA, targetGSA)
	token, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube, auth.WithScopes(readOnly))...)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(w.whoAmI(t, token)).To(Equal(targetGSA))
	calls := w.iam.Calls()
	g.Expect(calls[len(calls)-1].Scopes).To(Equal([]string{readOnly}))
}

func TestGCPArtifactRegistryImpersonates(t *testing.T) {
	g := NewWithT(t)
	w := newGCPWorld(t)
	w.iam.AllowImpersonation(controllerGSA, targetGSA)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "gcp-controller-wif.yaml"))

	creds, err := auth.GetArtifactRegistryCredentials(context.Background(), w.provider,
		"us-docker.pkg.dev/target-project/charts", myAppOptions(kube)...)
	g.Expect(err).NotTo(HaveOccurred())
	login, err := creds.Authorization()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(login.Username).To(Equal("oauth2accesstoken"))
	who, ok := w.iam.WhoAmI(login.Password)
	g.Expect(ok).To(BeTrue())
	g.Expect(who).To(Equal(targetGSA))
}

func TestGCPLockdownRefusals(t *testing.T) {
	withGSA := sa("app", map[string]string{
		"iam.gke.io/gcp-service-account": sourceGSA,
		gcp.ImpersonateAnnotation:        "gcpServiceAccount: " + targetGSA + "\nuseServiceAccount: false",
	})
	controllerOnly := sa("app", map[string]string{
		gcp.ImpersonateAnnotation: "gcpServiceAccount: " + targetGSA + "\nuseServiceAccount: false",
	})
	for _, tt := range []struct {
		name     string
		lockdown bool
		sa       *corev1.ServiceAccount
		wantErr  error
	}{
		{"useServiceAccount false with iam.gke.io: ambiguous", false, withGSA, auth.ErrAmbiguousSource},
		{"useServiceAccount false with iam.gke.io: refused", true, withGSA, auth.ErrLockdownForbidsControllerIdentity},
		{"useServiceAccount false: refused", true, controllerOnly, auth.ErrLockdownForbidsControllerIdentity},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			w := newGCPWorld(t)
			w.iam.AllowImpersonation(controllerGSA, targetGSA)
			kube := fakes.NewKubeClient(w.issuer, tt.sa)
			opts := []auth.Option{auth.WithClient(kube), auth.WithServiceAccountNamespace("my-app"), auth.WithServiceAccountName("app")}
			if tt.lockdown {
				opts = append(opts, auth.WithDefaultServiceAccount("default"))
			}
			_, err := auth.GetAccessToken(context.Background(), w.provider, opts...)
			g.Expect(err).To(MatchError(tt.wantErr))
			g.Expect(w.iam.Calls()).To(BeEmpty())
			g.Expect(w.sts.Exchanges()).To(BeZero())
			g.Expect(w.metadata.Requests("instance/service-accounts/default/token")).To(BeZero())
		})
	}
}
