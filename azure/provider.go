// Package azure passes Azure through the impersonation chain unchanged and
// answers the impersonation annotation with what to do instead: Azure has no
// call by which one identity becomes another, only workload identity
// federation, which upstream already supports.
//
// This file is the only one that touches the upstream provider, so moving to
// a newer fluxcd/pkg/auth changes this file alone.
package azure

import (
	"context"

	fluxauth "github.com/fluxcd/pkg/auth"
	azureauth "github.com/fluxcd/pkg/auth/azure"
	corev1 "k8s.io/api/core/v1"
)

// ProviderName is the name of the Azure provider.
const ProviderName = azureauth.ProviderName

// Token is the token type this provider returns: the upstream one.
type Token = azureauth.Token

// Implementation is the seam to the Azure SDK, upstream's own.
type Implementation = azureauth.Implementation

// Provider is the Azure provider. The zero value is ready to use and calls
// the real Azure APIs. It is safe for concurrent use.
type Provider struct {
	// Implementation replaces the Azure SDK calls. Optional. Defaults to the
	// real SDK.
	Implementation Implementation
}

func (p Provider) upstream() azureauth.Provider {
	return azureauth.Provider{Implementation: p.Implementation}
}

// GetName implements fluxauth.Provider.
func (Provider) GetName() string { return ProviderName }

// NewControllerToken implements fluxauth.Provider.
func (p Provider) NewControllerToken(ctx context.Context, opts ...fluxauth.Option) (fluxauth.Token, error) {
	return p.upstream().NewControllerToken(ctx, opts...)
}

// GetAudiences implements fluxauth.Provider.
func (p Provider) GetAudiences(ctx context.Context, sa corev1.ServiceAccount) ([]string, error) {
	return p.upstream().GetAudiences(ctx, sa)
}

// GetIdentity implements fluxauth.Provider.
func (p Provider) GetIdentity(sa corev1.ServiceAccount) (string, error) {
	return p.upstream().GetIdentity(sa)
}

// NewTokenForServiceAccount implements fluxauth.Provider.
func (p Provider) NewTokenForServiceAccount(ctx context.Context, oidcToken string,
	sa corev1.ServiceAccount, opts ...fluxauth.Option) (fluxauth.Token, error) {
	return p.upstream().NewTokenForServiceAccount(ctx, oidcToken, sa, opts...)
}

// GetAccessTokenOptionsForArtifactRepository implements auth.RegistryProvider.
func (p Provider) GetAccessTokenOptionsForArtifactRepository(repo string) ([]fluxauth.Option, error) {
	return p.upstream().GetAccessTokenOptionsForArtifactRepository(repo)
}

// ParseArtifactRepository implements auth.RegistryProvider.
func (p Provider) ParseArtifactRepository(repo string) (string, error) {
	return p.upstream().ParseArtifactRepository(repo)
}

// NewArtifactRegistryCredentials implements auth.RegistryProvider.
func (p Provider) NewArtifactRegistryCredentials(ctx context.Context, registryInput string,
	accessToken fluxauth.Token, opts ...fluxauth.Option) (*fluxauth.ArtifactRegistryCredentials, error) {
	return p.upstream().NewArtifactRegistryCredentials(ctx, registryInput, accessToken, opts...)
}

// GetAccessTokenOptionsForCluster implements auth.RESTConfigProvider.
func (p Provider) GetAccessTokenOptionsForCluster(opts ...fluxauth.Option) ([][]fluxauth.Option, error) {
	return p.upstream().GetAccessTokenOptionsForCluster(opts...)
}

// NewRESTConfig implements auth.RESTConfigProvider.
func (p Provider) NewRESTConfig(ctx context.Context, accessTokens []fluxauth.Token,
	opts ...fluxauth.Option) (*fluxauth.RESTConfig, error) {
	return p.upstream().NewRESTConfig(ctx, accessTokens, opts...)
}
