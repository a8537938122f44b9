package fakes_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"golang.org/x/oauth2"
	"google.golang.org/api/container/v1"
	"google.golang.org/api/iamcredentials/v1"
	"google.golang.org/api/option"

	"github.com/identitychain/auth/fakes"
)

const gkeTestCluster = "projects/tenant-project/locations/europe-west1/clusters/prod"

// gkeWorld is a fake IAM Credentials and a fake GKE with the cluster
// gkeTestCluster, open to gcpTestTenantSA, on one clock.
type gkeWorld struct {
	clock *gcpClock
	iam   *fakes.GCPIAMCredentials
	gke   *fakes.GKE
	api   *fakes.KubeAPIServer
}

func gkeStart(t *testing.T) *gkeWorld {
	t.Helper()
	clock := newGCPClock()
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{Now: clock.Now})
	t.Cleanup(iam.Close)
	gke := fakes.StartGKE(iam)
	t.Cleanup(gke.Close)
	return &gkeWorld{clock: clock, iam: iam, gke: gke, api: gke.AddCluster(gkeTestCluster, gcpTestTenantSA)}
}

// containerService is the real GKE API client with bearer token, pointed
// at base; an empty token sends no Authorization header.
func containerService(t *testing.T, base, token string) *container.Service {
	t.Helper()
	opts := []option.ClientOption{option.WithEndpoint(base)}
	if token == "" {
		opts = append(opts, option.WithoutAuthentication())
	} else {
		opts = append(opts, option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token})))
	}
	svc, err := container.NewService(context.Background(), opts...)
	if err != nil {
		t.Fatalf("failed to create container client: %v", err)
	}
	return svc
}

func TestGKE_GetCluster(t *testing.T) {
	t.Parallel()
	const readOnly = "https://www.googleapis.com/auth/devstorage.read_only"
	for _, tt := range []struct {
		name       string
		cluster    string
		token      func(t *testing.T, w *gkeWorld) string
		wantCaller string
		want       gcpAPIErr
	}{
		{
			name:       "allowed",
			token:      func(_ *testing.T, w *gkeWorld) string { tok, _ := w.iam.IssueToken(gcpTestTenantSA); return tok },
			wantCaller: gcpTestTenantSA,
		},
		{
			name:       "principal not allowed",
			token:      func(_ *testing.T, w *gkeWorld) string { tok, _ := w.iam.IssueToken(gcpTestOtherSA); return tok },
			wantCaller: gcpTestOtherSA,
			want: gcpAPIErr{Code: http.StatusForbidden, Status: "PERMISSION_DENIED",
				Message: `Required "container.clusters.get" permission(s) for "` + gkeTestCluster + `".`},
		},
		{
			name:       "no such cluster",
			cluster:    "projects/tenant-project/locations/europe-west1/clusters/staging",
			token:      func(_ *testing.T, w *gkeWorld) string { tok, _ := w.iam.IssueToken(gcpTestTenantSA); return tok },
			wantCaller: gcpTestTenantSA,
			want: gcpAPIErr{Code: http.StatusForbidden, Status: "PERMISSION_DENIED",
				Message: `Required "container.clusters.get" permission(s) for "projects/tenant-project/locations/europe-west1/clusters/staging".`},
		},
		{
			name: "token without the cloud-platform scope",
			token: func(t *testing.T, w *gkeWorld) string {
				source, _ := w.iam.IssueToken(gcpTestControllerSA)
				w.iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
				resp, err := gcpGenerate(t, w.iam, source, gcpTestTenantSA,
					&iamcredentials.GenerateAccessTokenRequest{Scope: []string{readOnly}})
				if err != nil {
					t.Fatal(err)
				}
				return resp.AccessToken
			},
			wantCaller: gcpTestTenantSA,
			want: gcpAPIErr{Code: http.StatusForbidden, Status: "PERMISSION_DENIED", Reason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
				Message: "Request had insufficient authentication scopes."},
		},
		{
			name: "expired token",
			token: func(_ *testing.T, w *gkeWorld) string {
				tok, _ := w.iam.IssueToken(gcpTestTenantSA)
				w.clock.Advance(2 * time.Hour)
				return tok
			},
			want: gcpAPIErr{Code: http.StatusUnauthorized, Status: "UNAUTHENTICATED", Reason: "ACCESS_TOKEN_EXPIRED",
				Message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."},
		},
		{
			name:  "token the fake did not issue",
			token: func(*testing.T, *gkeWorld) string { return "ya29.forged" },
			want:  gcpAPIErr{Code: http.StatusUnauthorized, Status: "UNAUTHENTICATED", Reason: "ACCESS_TOKEN_TYPE_UNSUPPORTED"},
		},
		{
			name:  "no token",
			token: func(*testing.T, *gkeWorld) string { return "" },
			want:  gcpAPIErr{Code: http.StatusUnauthorized, Status: "UNAUTHENTICATED", Reason: "CREDENTIALS_MISSING"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := gkeStart(t)
			cluster := tt.cluster
			if cluster == "" {
				cluster = gkeTestCluster
			}

			got, err := containerService(t, w.gke.URL+"/", tt.token(t, w)).Projects.Locations.Clusters.Get(cluster).Do()
			calls := w.gke.Calls()
			g.Expect(calls).To(HaveLen(1))
			g.Expect(calls[0].Cluster).To(Equal(cluster))
			g.Expect(calls[0].Caller).To(Equal(tt.wantCaller))
			g.Expect(calls[0].Err).To(Equal(tt.want.Status))
			if tt.want.Code != 0 {
				gotErr := gcpDecodeAPIError(t, err)
				if tt.want.Message == "" {
					tt.want.Message = gotErr.Message
				}
				g.Expect(gotErr).To(Equal(tt.want))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.Name).To(Equal("prod"))
			g.Expect(got.Status).To(Equal("RUNNING"))
			u, err := url.Parse(w.api.URL)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.Endpoint).To(Equal(u.Host), "GKE gives the address without a scheme")
			ca, err := base64.StdEncoding.DecodeString(got.MasterAuth.ClusterCaCertificate)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ca).To(Equal(w.api.CAData))
		})
	}
}

func TestGKE_AddClusterRefusesMistakes(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := gkeStart(t)
	g.Expect(func() { w.gke.AddCluster(gkeTestCluster) }).
		To(PanicWith("fakes: GKE.AddCluster: cluster '" + gkeTestCluster + "' exists"))
	g.Expect(func() { w.gke.AddCluster("prod") }).
		To(PanicWith("fakes: GKE.AddCluster: invalid cluster name 'prod'"))
}

func TestGKE_Faults(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		fault      fakes.Fault
		wantCode   int
		wantStatus string
	}{
		{fakes.Throttle(), http.StatusTooManyRequests, "RESOURCE_EXHAUSTED"},
		{fakes.ServerError(503), http.StatusServiceUnavailable, "UNAVAILABLE"},
		{fakes.MalformedBody(), 0, ""},
	} {
		t.Run(tt.fault.String(), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := gkeStart(t)
			f := w.gke.InjectFault(tt.fault.Times(1).OnlyFor("/v1/" + gkeTestCluster))
			tok, _ := w.iam.IssueToken(gcpTestTenantSA)
			svc := containerService(t, w.gke.URL+"/", tok)

			_, err := svc.Projects.Locations.Clusters.Get(gkeTestCluster).Do()
			g.Expect(err).To(HaveOccurred())
			if tt.wantCode != 0 {
				got := gcpDecodeAPIError(t, err)
				g.Expect(got.Code).To(Equal(tt.wantCode))
				g.Expect(got.Status).To(Equal(tt.wantStatus))
			}
			g.Expect(f.Hits()).To(Equal(1))
			g.Expect(w.gke.Attempts()).To(Equal(1))
			g.Expect(w.gke.Calls()).To(BeEmpty())

			_, err = svc.Projects.Locations.Clusters.Get(gkeTestCluster).Do()
			g.Expect(err).NotTo(HaveOccurred())
		})
	}
	t.Run("refused faults", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		w := gkeStart(t)
		g.Expect(func() { w.gke.InjectFault(fakes.MissingExpiry()) }).
			To(PanicWith("fakes: MissingExpiry() can never apply: clusters.get returns no credentials"))
		g.Expect(func() { w.gke.InjectFault(fakes.Throttle().OnlyFor(gkeTestCluster)) }).
			To(PanicWith("fakes: GKE.InjectFault: unknown operation '" + gkeTestCluster +
				"': want /v1/projects/<p>/locations/<l>/clusters/<c>"))
	})
}

// TestGKE_APIServerAuthentication presents Google access tokens to a
// cluster's API server.
func TestGKE_APIServerAuthentication(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		token    func(w *gkeWorld) string
		wantUser string
		wantCode int
		wantErr  string
	}{
		{
			name:     "principal with access",
			token:    func(w *gkeWorld) string { tok, _ := w.iam.IssueToken(gcpTestTenantSA); return tok },
			wantUser: gcpTestTenantSA,
			wantCode: http.StatusCreated,
		},
		{
			name:     "principal without access",
			token:    func(w *gkeWorld) string { tok, _ := w.iam.IssueToken(gcpTestOtherSA); return tok },
			wantUser: gcpTestOtherSA,
			wantCode: http.StatusForbidden,
			wantErr: `selfsubjectreviews.authentication.k8s.io is forbidden: User "` + gcpTestOtherSA +
				`" cannot create resource "selfsubjectreviews" in API group "authentication.k8s.io" at the cluster scope`,
		},
		{
			name: "expired token",
			token: func(w *gkeWorld) string {
				tok, _ := w.iam.IssueToken(gcpTestTenantSA)
				w.clock.Advance(2 * time.Hour)
				return tok
			},
			wantCode: http.StatusUnauthorized,
			wantErr:  "Unauthorized",
		},
		{
			name:     "token the fake did not issue",
			token:    func(*gkeWorld) string { return "ya29.forged" },
			wantCode: http.StatusUnauthorized,
			wantErr:  "Unauthorized",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := gkeStart(t)

			user, err := kubeWhoAmI(t, w.api, tt.token(w))
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
			} else {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(user.Username).To(Equal(tt.wantUser))
				g.Expect(user.Groups).To(Equal([]string{"system:authenticated"}))
			}
			g.Expect(w.api.Requests()).To(Equal([]fakes.KubeAPIRequest{{
				Method: http.MethodPost, Path: "/apis/authentication.k8s.io/v1/selfsubjectreviews",
				User: tt.wantUser, Code: tt.wantCode,
			}}))
		})
	}
}

// TestGKE_ThroughTheImplementation checks GCPImplementation.GetCluster with
// a client made as upstream makes it, for container.googleapis.com.
func TestGKE_ThroughTheImplementation(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := gkeStart(t)
	f := gcpStartFederation(t, fakes.GCPSTSOptions{})
	impl := f.impl.WithGKE(w.gke)
	tok, _ := w.iam.IssueToken(gcpTestTenantSA)

	got, err := impl.GetCluster(context.Background(), gkeTestCluster, containerService(t, "https://container.googleapis.com/", tok))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Name).To(Equal("prod"))

	_, err = impl.GetCluster(context.Background(), gkeTestCluster, containerService(t, "https://container.example.com/", tok))
	g.Expect(err).To(MatchError("unexpected container API client: only https://container.googleapis.com/ is faked"))
	g.Expect(w.gke.Calls()).To(HaveLen(1))
}
