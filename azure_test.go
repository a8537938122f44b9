package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/fakes"
)

// What upstream Azure does keeps working through our package: object-level
// workload identity federation hands the ServiceAccount's token, with the
// Entra audience, to a client assertion credential for its client ID.
func TestAzureWorkloadIdentityPassesThrough(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
	g.Expect(err).NotTo(HaveOccurred())
	entra := &fakeEntra{}
	kube := fakes.NewKubeClient(issuer, sa("app", map[string]string{
		"azure.workload.identity/client-id": "11111111-1111-1111-1111-111111111111",
		"azure.workload.identity/tenant-id": "22222222-2222-2222-2222-222222222222",
	}))

	token, err := auth.GetAccessToken(context.Background(), azure.Provider{Implementation: entra},
		auth.WithClient(kube), auth.WithServiceAccountNamespace("my-app"), auth.WithServiceAccountName("app"),
		auth.WithScopes("https://management.azure.com/.default"))
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(token.(*azure.Token).Token).To(Equal("entra-token-for-11111111-1111-1111-1111-111111111111"))
	g.Expect(entra.assertions).To(HaveLen(1))
	subject, err := issuer.Verify(entra.assertions[0], "api://AzureADTokenExchange")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(subject).To(Equal("system:serviceaccount:my-app:app"))
}

// fakeEntra stands in for upstream's Azure SDK seam: it records the client
// assertions it is given and returns a token naming the client ID.
type fakeEntra struct {
	azure.Implementation
	assertions []string
}

func (f *fakeEntra) NewClientAssertionCredential(_ string, clientID string,
	getAssertion func(context.Context) (string, error), _ *azidentity.ClientAssertionCredentialOptions) (azcore.TokenCredential, error) {
	return credentialFunc(func(ctx context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
		a, err := getAssertion(ctx)
		if err != nil {
			return azcore.AccessToken{}, err
		}
		f.assertions = append(f.assertions, a)
		return azcore.AccessToken{Token: "entra-token-for-" + clientID, ExpiresOn: time.Now().Add(time.Hour)}, nil
	}), nil
}

type credentialFunc func(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error)

func (f credentialFunc) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return f(ctx, o)
}
