package fakes_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"cloud.google.com/go/compute/metadata"
	. "github.com/onsi/gomega"
	"golang.org/x/oauth2/google"
	iamcredentials "google.golang.org/api/iamcredentials/v1"

	"github.com/identitychain/auth/fakes"
)

// gcpSetEnv applies fakes.GCPEnv for m. Tests that call it cannot be
// parallel (t.Setenv), and must be the first in the binary to make the
// metadata package decide OnGCE, which it does once per process.
func gcpSetEnv(t *testing.T, m *fakes.GCPMetadata) {
	t.Helper()
	for k, v := range fakes.GCPEnv(t.TempDir(), m) {
		t.Setenv(k, v)
	}
}

func TestMetadata_RealClient(t *testing.T) {
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	m := fakes.StartGCPMetadata(fakes.GCPMetadataOptions{
		ProjectID:           gcpTestProject,
		ClusterLocation:     gcpTestLocation,
		ClusterName:         gcpTestCluster,
		ServiceAccountEmail: gcpTestControllerSA,
		IAM:                 iam,
		ProjectNumber:       "123456789012",
	})
	t.Cleanup(m.Close)
	gcpSetEnv(t, m)

	g := NewWithT(t)
	g.Expect(metadata.OnGCE()).To(BeTrue())

	client := metadata.NewClient(nil)
	tests := []struct {
		path string
		want string
	}{
		{"project/project-id", gcpTestProject},
		{"project/numeric-project-id", "123456789012"},
		{"instance/attributes/cluster-location", gcpTestLocation},
		{"instance/attributes/cluster-name", gcpTestCluster},
		{"instance/service-accounts/default/email", gcpTestControllerSA},
		{"instance/service-accounts/" + gcpTestControllerSA + "/email", gcpTestControllerSA},
		{"universe/universe_domain", "googleapis.com"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			g := NewWithT(t)
			got, err := client.GetWithContext(context.Background(), tt.path)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
			g.Expect(m.Requests(tt.path)).To(BeEquivalentTo(1))
		})
	}

	t.Run("undefined path is NotDefinedError", func(t *testing.T) {
		g := NewWithT(t)
		_, err := client.GetWithContext(context.Background(), "instance/attributes/kube-env")
		var nde metadata.NotDefinedError
		g.Expect(err).To(BeAssignableToTypeOf(nde))
	})
	t.Run("email helper", func(t *testing.T) {
		g := NewWithT(t)
		email, err := client.EmailWithContext(context.Background(), "")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(email).To(Equal(gcpTestControllerSA))
	})
}

func TestMetadata_DefaultTokenSource(t *testing.T) {
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	m := gcpStartMetadata(t, iam)
	gcpSetEnv(t, m)
	g := NewWithT(t)

	ts, err := google.DefaultTokenSource(context.Background(), gcpScopeCloudPlatform, gcpScopeEmail)
	g.Expect(err).NotTo(HaveOccurred())
	tok, err := ts.Token()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(tok.TokenType).To(Equal("Bearer"))
	who, ok := iam.WhoAmI(tok.AccessToken)
	g.Expect(ok).To(BeTrue())
	g.Expect(who).To(Equal(gcpTestControllerSA))

	// The oauth2 token source caches: a second Token() is not a request.
	_, err = ts.Token()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(m.Requests("instance/service-accounts/default/token")).To(BeEquivalentTo(1))

	// The controller's token is what the library impersonates with.
	iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
	resp, err := gcpGenerate(t, iam, tok.AccessToken, gcpTestTenantSA,
		&iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}})
	g.Expect(err).NotTo(HaveOccurred())
	who, _ = iam.WhoAmI(resp.AccessToken)
	g.Expect(who).To(Equal(gcpTestTenantSA))
	g.Expect(iam.Calls()[0].Caller).To(Equal(gcpTestControllerSA))
}

func TestMetadata_RawProtocol(t *testing.T) {
	t.Parallel()

	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	m := gcpStartMetadata(t, iam)

	tests := []struct {
		name     string
		method   string
		path     string
		header   map[string]string
		wantCode int
		wantBody string
	}{
		{name: "root without flavor header (GCE detection)", method: http.MethodGet, path: "/",
			wantCode: 200, wantBody: "computeMetadata/\n"},
		{name: "no flavor header", method: http.MethodGet, path: "/computeMetadata/v1/project/project-id",
			wantCode: 403},
		{name: "wrong flavor header", method: http.MethodGet, path: "/computeMetadata/v1/project/project-id",
			header: map[string]string{"Metadata-Flavor": "Amazon"}, wantCode: 403},
		{name: "forwarded request", method: http.MethodGet, path: "/computeMetadata/v1/project/project-id",
			header: map[string]string{"Metadata-Flavor": "Google", "X-Forwarded-For": "10.0.0.1"}, wantCode: 403},
		{name: "POST", method: http.MethodPost, path: "/computeMetadata/v1/project/project-id",
			header: map[string]string{"Metadata-Flavor": "Google"}, wantCode: 405},
		{name: "unknown path", method: http.MethodGet, path: "/computeMetadata/v1/instance/attributes/nope",
			header: map[string]string{"Metadata-Flavor": "Google"}, wantCode: 404},
		{name: "other account", method: http.MethodGet, path: "/computeMetadata/v1/instance/service-accounts/x@y.iam.gserviceaccount.com/token",
			header: map[string]string{"Metadata-Flavor": "Google"}, wantCode: 404},
		{name: "derived project number", method: http.MethodGet, path: "/computeMetadata/v1/project/numeric-project-id",
			header: map[string]string{"Metadata-Flavor": "Google"}, wantCode: 200},
		{name: "recursive account", method: http.MethodGet, path: "/computeMetadata/v1/instance/service-accounts/default/?recursive=true",
			header: map[string]string{"Metadata-Flavor": "Google"}, wantCode: 200,
			wantBody: `{"aliases":["default"],"email":"` + gcpTestControllerSA + `","scopes":["` + gcpScopeCloudPlatform + `"]}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			req, err := http.NewRequest(tt.method, m.URL+tt.path, nil)
			g.Expect(err).NotTo(HaveOccurred())
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			g.Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(resp.StatusCode).To(Equal(tt.wantCode))
			g.Expect(resp.Header.Get("Metadata-Flavor")).To(Equal("Google"))
			if tt.wantBody != "" {
				g.Expect(string(body)).To(Equal(tt.wantBody))
			}
			if tt.name == "derived project number" {
				g.Expect(string(body)).To(MatchRegexp(`^[1-9][0-9]{11}$`))
			}
		})
	}

}

func TestMetadata_CountsRefusedRequests(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)

	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	m := gcpStartMetadata(t, iam)

	for _, flavor := range []string{"", "Google"} {
		req, err := http.NewRequest(http.MethodGet, m.URL+"/computeMetadata/v1/project/project-id", nil)
		g.Expect(err).NotTo(HaveOccurred())
		if flavor != "" {
			req.Header.Set("Metadata-Flavor", flavor)
		}
		resp, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
	}
	g.Expect(m.Requests("project/project-id")).To(BeEquivalentTo(2))
	g.Expect(m.Requests("/")).To(BeZero())
}
