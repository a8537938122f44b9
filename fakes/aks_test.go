package fakes_test

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/identitychain/auth/fakes"
)

const (
	aksSubscription = "aaaaaaaa-0000-4000-8000-000000000001"
	aksCluster      = "/subscriptions/" + aksSubscription + "/resourceGroups/prod/providers/Microsoft.ContainerService/managedClusters/prod"
	aksScope        = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
)

// static is a credential that always presents one token, as upstream's.
type static string

func (s static) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// The managed cluster's GET and listClusterUserCredential answer the
// clients with a role in the cluster's tenant, through the real SDK; its
// API server takes their tokens for the AKS server app.
func TestAKSCluster(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := newEntraWorld(t)
	aks := fakes.StartAKS(w.entra)
	t.Cleanup(aks.Close)
	api := aks.AddCluster(aksCluster, targetTenant, appID)
	impl := w.impl.WithAKS(aks)
	mi := w.managedIdentityToken(t, nil)
	app := func(tenant, scope string) string {
		tok, err := w.appToken(nil, tenant, appID, mi, scope)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Token
	}
	describe := func(token string) (string, error) {
		client, err := impl.NewManagedClustersClient(aksSubscription, static(token), &arm.ClientOptions{})
		if err != nil {
			return "", err
		}
		c, err := client.Get(context.Background(), "prod", "prod", nil)
		if err != nil {
			return "", err
		}
		g.Expect(c.Properties.AADProfile).NotTo(BeNil())
		creds, err := client.ListClusterUserCredentials(context.Background(), "prod", "prod", nil)
		if err != nil {
			return "", err
		}
		rc, err := clientcmd.RESTConfigFromKubeConfig(creds.Kubeconfigs[0].Value)
		if err != nil {
			return "", err
		}
		g.Expect(rc.CAData).To(Equal(api.CAData))
		return rc.Host, nil
	}

	host, err := describe(app(targetTenant, armScope))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(host).To(Equal(api.URL))
	g.Expect(aks.Calls()).To(Equal([]fakes.AKSCall{
		{Cluster: aksCluster, Operation: "get", TenantID: targetTenant, ClientID: appID},
		{Cluster: aksCluster, Operation: "listClusterUserCredential", TenantID: targetTenant, ClientID: appID},
	}))

	w.entra.AddTenant("66666666-6666-4666-8666-666666666666")
	w.entra.Consent(appID, "66666666-6666-4666-8666-666666666666")
	for _, tt := range []struct{ name, token, code string }{
		{"a token for another resource", app(targetTenant, aksScope), "InvalidAuthenticationTokenAudience"},
		{"a token of another tenant", app("66666666-6666-4666-8666-666666666666", armScope), "InvalidAuthenticationTokenTenant"},
		{"a client without a role", func() string {
			w.entra.AddManagedIdentity(targetTenant, "88888888-8888-4888-8888-888888888888", "99999999-9999-4999-8999-999999999999")
			tok, _ := w.entra.IssueToken(targetTenant, "88888888-8888-4888-8888-888888888888", armScope)
			return tok
		}(), "AuthorizationFailed"},
		{"a token Entra did not mint", "forged", "InvalidAuthenticationToken"},
	} {
		_, err := describe(tt.token)
		var respErr *azcore.ResponseError
		g.Expect(err).To(BeAssignableToTypeOf(respErr), tt.name)
		g.Expect(err.(*azcore.ResponseError).ErrorCode).To(Equal(tt.code), tt.name)
	}

	// The cluster's API server: the app's token for the AKS server app.
	sp, _ := w.entra.ServicePrincipalID(appID, targetTenant)
	who, err := kubeWhoAmI(t, api, app(targetTenant, aksScope))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(who.Username).To(Equal(sp))
	_, err = kubeWhoAmI(t, api, app(targetTenant, armScope))
	g.Expect(err).To(MatchError(ContainSubstring("Unauthorized")))

	_, err = w.impl.NewManagedClustersClient(aksSubscription, static("x"), nil)
	g.Expect(err).To(MatchError(fakes.ErrAzureNotFaked))
}
