package fakes_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"
	"golang.org/x/oauth2"

	"github.com/identitychain/auth/fakes"
)

type gcpCountingTransport struct{ n atomic.Int64 }

func (c *gcpCountingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// Controllers with different Google identities side by side, in parallel,
// none configured through the environment.
func TestGCPControllerImplementation(t *testing.T) {
	t.Parallel()
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	sts := fakes.StartGCPSTS(fakes.GCPSTSOptions{Issuer: awsSharedIssuer(), IAM: iam})
	t.Cleanup(sts.Close)
	for _, email := range []string{
		"controller-a@flux-test-project.iam.gserviceaccount.com",
		"controller-b@flux-test-project.iam.gserviceaccount.com",
	} {
		t.Run(email, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			md := fakes.StartGCPMetadata(fakes.GCPMetadataOptions{
				ProjectID: gcpTestProject, ClusterLocation: gcpTestLocation, ClusterName: gcpTestCluster,
				ServiceAccountEmail: email, IAM: iam,
			})
			t.Cleanup(md.Close)
			impl := fakes.NewGCPControllerImplementation(sts, iam, md)
			g.Expect(impl.IAMCredentialsEndpoint()).To(Equal(iam.URL + "/"))

			transport := &gcpCountingTransport{}
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: transport})
			src, err := impl.DefaultTokenSource(ctx, gcpScopeCloudPlatform)
			g.Expect(err).NotTo(HaveOccurred())
			for range 2 { // the second comes from ReuseTokenSource
				tok, err := src.Token()
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(tok.Expiry).NotTo(BeZero())
				who, ok := iam.WhoAmI(tok.AccessToken)
				g.Expect(ok).To(BeTrue())
				g.Expect(who).To(Equal(email))
			}
			g.Expect(md.Requests("instance/service-accounts/default/token")).To(Equal(int64(1)))
			g.Expect(transport.n.Load()).To(Equal(int64(1)), "the HTTP client from the context is used")
		})
	}
}

func TestGCPControllerImplementation_Refusals(t *testing.T) {
	t.Parallel()
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	for _, tt := range []struct {
		name    string
		fault   fakes.Fault
		wantErr string
	}{
		{"server error", fakes.ServerError(http.StatusServiceUnavailable),
			"failed to get a token from the metadata server: HTTP 503: "},
		{"no access token", fakes.EmptyCredentials(),
			"failed to get a token from the metadata server: the reply has no access_token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			md := gcpStartMetadata(t, iam)
			md.InjectFault(tt.fault)
			src, err := fakes.NewGCPControllerImplementation(nil, iam, md).DefaultTokenSource(context.Background())
			g.Expect(err).NotTo(HaveOccurred())
			_, err = src.Token()
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(HavePrefix(tt.wantErr))
		})
	}
}
