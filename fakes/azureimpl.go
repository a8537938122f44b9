package fakes

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/containers/azcontainerregistry"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice"
	"github.com/fluxcd/pkg/auth/azure"
)

// ErrAzureNotFaked is returned by the AzureImplementation methods for what
// was not wired in (WithController, WithACR, WithAKS).
var ErrAzureNotFaked = errors.New("azure service is not faked")

// AzureWorkloadIdentity is the controller's AKS workload identity, as the
// workload identity webhook configures the controller's pod: its
// ServiceAccount's token, signed by the cluster's issuer for audience
// EntraTokenExchangeAudience, is the client assertion of the managed
// identity ClientID of tenant TenantID (the ServiceAccount's
// azure.workload.identity/client-id and tenant-id).
type AzureWorkloadIdentity struct {
	// Issuer is the cluster's issuer, which signs the token.
	Issuer *Issuer
	// Namespace and Name are the controller's ServiceAccount.
	Namespace, Name string
	// TenantID and ClientID are the managed identity's.
	TenantID, ClientID string
}

var _ azure.Implementation = (*AzureImplementation)(nil)

// AzureImplementation implements github.com/fluxcd/pkg/auth/azure.Implementation
// with the real Azure SDK pointed at the fakes:
//
//   - NewClientAssertionCredential is azidentity's, with the authority
//     host moved to the fake Entra, instance discovery off (it would ask
//     login.microsoftonline.com) and the caller's HTTP client made to trust
//     the fakes' certificate, its proxy and timeout kept. Upstream's
//     object-level exchange and the library's impersonation hop both make
//     their credential here.
//   - NewDefaultAzureCredential and NewDefaultAzureCredentialWithoutShellOut
//     return the controller's workload identity given to WithController,
//     the same credential through the same fake; nothing runs the Azure CLI.
//   - ExchangeAADAccessTokenForACRRefreshToken calls the fake ACR wired in
//     with WithACR, with a client of its own: upstream's client points at
//     the registry's host and hides its HTTP client.
//   - NewManagedClustersClient is armcontainerservice's, with Azure Resource
//     Manager moved to the fake AKS wired in with WithAKS.
//
// Without what they need they fail with ErrAzureNotFaked, never reaching
// Azure. AzureImplementation is immutable and safe for concurrent use.
type AzureImplementation struct {
	entra      *Entra
	controller *AzureWorkloadIdentity
	acr        *ACR
	aks        *AKS
}

// Implementation returns an AzureImplementation whose credentials ask e.
func (e *Entra) Implementation() *AzureImplementation { return &AzureImplementation{entra: e} }

// WithController returns a copy of i whose default credential is the
// controller's workload identity w.
func (i *AzureImplementation) WithController(w AzureWorkloadIdentity) *AzureImplementation {
	c := *i
	c.controller = &w
	return &c
}

// WithACR returns a copy of i that sends ACR token exchanges to a.
func (i *AzureImplementation) WithACR(a *ACR) *AzureImplementation {
	c := *i
	c.acr = a
	return &c
}

// WithAKS returns a copy of i whose managed clusters client asks k.
func (i *AzureImplementation) WithAKS(k *AKS) *AzureImplementation {
	c := *i
	c.aks = k
	return &c
}

// NewDefaultAzureCredential implements azure.Implementation.
func (i *AzureImplementation) NewDefaultAzureCredential(o *azidentity.DefaultAzureCredentialOptions) (azcore.TokenCredential, error) {
	return i.NewDefaultAzureCredentialWithoutShellOut(o)
}

// NewDefaultAzureCredentialWithoutShellOut implements azure.Implementation.
func (i *AzureImplementation) NewDefaultAzureCredentialWithoutShellOut(o *azidentity.DefaultAzureCredentialOptions) (azcore.TokenCredential, error) {
	w := i.controller
	if w == nil {
		return nil, fmt.Errorf("failed to get the controller's credential: %w: wire its workload identity in with WithController",
			ErrAzureNotFaked)
	}
	var co azcore.ClientOptions
	if o != nil {
		co = o.ClientOptions
	}
	return i.NewClientAssertionCredential(w.TenantID, w.ClientID, func(context.Context) (string, error) {
		return w.Issuer.Sign(w.Namespace, w.Name, []string{EntraTokenExchangeAudience}, time.Hour)
	}, &azidentity.ClientAssertionCredentialOptions{ClientOptions: co})
}

// NewClientAssertionCredential implements azure.Implementation.
func (i *AzureImplementation) NewClientAssertionCredential(tenantID, clientID string, getAssertion func(context.Context) (string, error),
	o *azidentity.ClientAssertionCredentialOptions) (azcore.TokenCredential, error) {
	var opts azidentity.ClientAssertionCredentialOptions
	if o != nil {
		opts = *o
	}
	var err error
	if opts.Transport, err = i.trusting(opts.Transport); err != nil {
		return nil, err
	}
	opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: i.entra.URL + "/"}
	opts.DisableInstanceDiscovery = true
	return azidentity.NewClientAssertionCredential(tenantID, clientID, getAssertion, &opts)
}

// ExchangeAADAccessTokenForACRRefreshToken implements azure.Implementation.
func (i *AzureImplementation) ExchangeAADAccessTokenForACRRefreshToken(ctx context.Context, _ *azcontainerregistry.AuthenticationClient,
	grantType azcontainerregistry.PostContentSchemaGrantType, service string,
	o *azcontainerregistry.AuthenticationClientExchangeAADAccessTokenForACRRefreshTokenOptions) (azcontainerregistry.AuthenticationClientExchangeAADAccessTokenForACRRefreshTokenResponse, error) {
	var none azcontainerregistry.AuthenticationClientExchangeAADAccessTokenForACRRefreshTokenResponse
	if i.acr == nil {
		return none, fmt.Errorf("failed to exchange the token at ACR: %w: wire a fake in with WithACR", ErrAzureNotFaked)
	}
	client, err := azcontainerregistry.NewAuthenticationClient(i.acr.URL, &azcontainerregistry.AuthenticationClientOptions{
		ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}},
	})
	if err != nil {
		return none, err
	}
	return client.ExchangeAADAccessTokenForACRRefreshToken(ctx, grantType, service, o)
}

// NewManagedClustersClient implements azure.Implementation.
func (i *AzureImplementation) NewManagedClustersClient(subscriptionID string, credential azcore.TokenCredential,
	o *arm.ClientOptions) (azure.AKSClient, error) {
	if i.aks == nil {
		return nil, fmt.Errorf("failed to create the AKS client: %w: wire a fake in with WithAKS", ErrAzureNotFaked)
	}
	var opts arm.ClientOptions
	if o != nil {
		opts = *o
	}
	var err error
	if opts.Transport, err = i.trusting(opts.Transport); err != nil {
		return nil, err
	}
	opts.Cloud = cloud.Configuration{
		ActiveDirectoryAuthorityHost: i.entra.URL + "/",
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: i.aks.URL, Audience: aksARMAudience},
		},
	}
	return armcontainerservice.NewManagedClustersClient(subscriptionID, credential, &opts)
}

// trusting returns a copy of the caller's HTTP client that also trusts the
// certificates of the fakes, keeping its proxy and timeout; a default one
// for none.
func (i *AzureImplementation) trusting(t policy.Transporter) (policy.Transporter, error) {
	pool := x509.NewCertPool()
	pool.AddCert(i.entra.srv.Certificate())
	if i.aks != nil {
		pool.AddCert(i.aks.srv.Certificate())
	}
	var c http.Client
	switch t := t.(type) {
	case nil:
	case *http.Client:
		if t != nil {
			c = *t
		}
	default:
		return nil, fmt.Errorf("the transport is %T, not an *http.Client: the fakes cannot make it trust them", t)
	}
	base, ok := c.Transport.(*http.Transport)
	switch {
	case c.Transport == nil:
		base = http.DefaultTransport.(*http.Transport)
	case !ok:
		return nil, fmt.Errorf("the HTTP client's transport is %T, not an *http.Transport: the fakes cannot "+
			"make it trust them", c.Transport)
	}
	tr := base.Clone()
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	tr.TLSClientConfig.RootCAs = pool
	c.Transport = tr
	return &c, nil
}
