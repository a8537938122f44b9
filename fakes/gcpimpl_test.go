package fakes_test

import (
	"context"
	"errors"
	"testing"

	fluxauth "github.com/fluxcd/pkg/auth"
	"github.com/fluxcd/pkg/auth/gcp"
	. "github.com/onsi/gomega"
	"golang.org/x/oauth2/google/externalaccount"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/identitychain/auth/fakes"
)

// TestGCPImplementation_UpstreamProvider drives the real upstream
// gcp.Provider, which reads the GKE metadata into a process-wide cache;
// hence the shared gcpTest* values and no t.Parallel.
func TestGCPImplementation_UpstreamProvider(t *testing.T) {
	f := gcpStartFederation(t, fakes.GCPSTSOptions{})
	m := gcpStartMetadata(t, f.iam)
	gcpSetEnv(t, m)
	provider := gcp.Provider{Implementation: f.impl}

	subject := fakes.ServiceAccountSubject("apps", "podinfo")
	sa := func(annotations map[string]string) corev1.ServiceAccount {
		return corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
			Namespace: "apps", Name: "podinfo", Annotations: annotations,
		}}
	}
	const wip = "projects/123456789012/locations/global/workloadIdentityPools/flux/providers/kind"

	tests := []struct {
		name         string
		sa           *corev1.ServiceAccount // nil: controller token
		setup        func()
		wantAudience string
		wantIdentity string
		wantErr      string
	}{
		{
			name:         "controller identity from the metadata server",
			wantIdentity: gcpTestControllerSA,
		},
		{
			name:         "GKE, direct access",
			sa:           new(sa(nil)),
			wantAudience: gcpTestPool,
			wantIdentity: fakes.FederatedPrincipal(gcpTestGKEAud, subject),
		},
		{
			name: "GKE, impersonation",
			sa:   new(sa(map[string]string{"iam.gke.io/gcp-service-account": gcpTestTenantSA})),
			setup: func() {
				f.iam.AllowImpersonation(fakes.FederatedPrincipal(gcpTestGKEAud, subject), gcpTestTenantSA)
			},
			wantAudience: gcpTestPool,
			wantIdentity: gcpTestTenantSA,
		},
		{
			name:         "GKE, impersonation refused",
			sa:           new(sa(map[string]string{"iam.gke.io/gcp-service-account": gcpTestOtherSA})),
			wantAudience: gcpTestPool,
			wantErr:      "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
		},
		{
			name:         "workload identity provider, direct access",
			sa:           new(sa(map[string]string{"gcp.auth.fluxcd.io/workload-identity-provider": wip})),
			wantAudience: "//iam.googleapis.com/" + wip,
			wantIdentity: fakes.FederatedPrincipal("//iam.googleapis.com/"+wip, subject),
		},
		{
			name: "workload identity provider, impersonation",
			sa: new(sa(map[string]string{
				"gcp.auth.fluxcd.io/workload-identity-provider": wip,
				"iam.gke.io/gcp-service-account":                gcpTestTenantSA,
			})),
			setup: func() {
				f.iam.AllowImpersonation(fakes.FederatedPrincipal("//iam.googleapis.com/"+wip, subject), gcpTestTenantSA)
			},
			wantAudience: "//iam.googleapis.com/" + wip,
			wantIdentity: gcpTestTenantSA,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			if tt.setup != nil {
				tt.setup()
			}
			ctx := context.Background()

			var tok fluxauth.Token
			var err error
			if tt.sa == nil {
				tok, err = provider.NewControllerToken(ctx)
			} else {
				// Sign for exactly the audience upstream asks Kubernetes for.
				auds, aerr := provider.GetAudiences(ctx, *tt.sa)
				g.Expect(aerr).NotTo(HaveOccurred())
				g.Expect(auds).To(Equal([]string{tt.wantAudience}))
				tok, err = provider.NewTokenForServiceAccount(ctx, f.sign(t, "apps", "podinfo", auds[0]), *tt.sa)
			}
			if tt.wantErr != "" {
				g.Expect(err).To(HaveOccurred())
				g.Expect(err.Error()).To(ContainSubstring(tt.wantErr))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			who, ok := f.iam.WhoAmI(tok.(*gcp.Token).AccessToken)
			g.Expect(ok).To(BeTrue())
			g.Expect(who).To(Equal(tt.wantIdentity))
		})
	}
}

func TestGCPImplementation_RedirectsOnlyGoogleHosts(t *testing.T) {
	t.Parallel()

	f := gcpStartFederation(t, fakes.GCPSTSOptions{})
	tests := []struct {
		name    string
		edit    func(c *externalaccount.Config)
		wantErr string
	}{
		{
			name: "token URL on another host",
			edit: func(c *externalaccount.Config) { c.TokenURL = "https://sts.example.com/v1/token" },
			wantErr: "failed to redirect the STS token URL: unexpected URL 'https://sts.example.com/v1/token': " +
				"only https://sts.googleapis.com is faked",
		},
		{
			name: "token URL over plain http",
			edit: func(c *externalaccount.Config) { c.TokenURL = "http://sts.googleapis.com/v1/token" },
			wantErr: "failed to redirect the STS token URL: unexpected URL 'http://sts.googleapis.com/v1/token': " +
				"only https://sts.googleapis.com is faked",
		},
		{
			name: "token info URL on another host",
			edit: func(c *externalaccount.Config) { c.TokenInfoURL = "https://oauth2.googleapis.com/tokeninfo" },
			wantErr: "failed to redirect the STS token info URL: unexpected URL 'https://oauth2.googleapis.com/tokeninfo': " +
				"only https://sts.googleapis.com is faked",
		},
		{
			name: "impersonation URL on another host",
			edit: func(c *externalaccount.Config) {
				c.ServiceAccountImpersonationURL = "https://iamcredentials.example.com/v1/projects/-/serviceAccounts/a@b:generateAccessToken"
			},
			wantErr: "failed to redirect the service account impersonation URL: unexpected URL " +
				"'https://iamcredentials.example.com/v1/projects/-/serviceAccounts/a@b:generateAccessToken': " +
				"only https://iamcredentials.googleapis.com is faked",
		},
		{
			name: "empty token URL is the library default",
			edit: func(c *externalaccount.Config) { c.TokenURL = "" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			conf := gcpUpstreamConfig(gcpTestGKEAud, f.sign(t, "apps", "podinfo", gcpTestPool), "")
			tt.edit(&conf)
			ts, err := f.impl.NewTokenSource(context.Background(), conf)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			_, err = ts.Token()
			g.Expect(err).NotTo(HaveOccurred())
		})
	}

	t.Run("GetCluster is not faked", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		_, err := f.impl.GetCluster(context.Background(), "projects/p/locations/l/clusters/c", nil)
		g.Expect(err).To(MatchError("the GKE container API is not faked: wire a fake in with WithGKE, " +
			"or pass the cluster address and CA data to skip GetCluster"))
		g.Expect(errors.Is(err, fakes.ErrGCPNotFaked)).To(BeTrue())
	})
	t.Run("IAM endpoint for the library's own client", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		g.Expect(f.impl.IAMCredentialsEndpoint()).To(Equal(f.iam.URL + "/"))
	})
}
