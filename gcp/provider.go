// Package gcp impersonates GCP service accounts with IAM Credentials
// generateAccessToken, on top of the upstream fluxcd/pkg/auth GCP provider,
// which supplies the source token (GKE workload identity for the controller,
// or the ServiceAccount's token exchanged at Google STS, through its
// iam.gke.io/gcp-service-account or by direct-access federation).
//
// This file is the only one that touches the upstream provider, so moving to
// a newer fluxcd/pkg/auth changes this file alone.
package gcp

import (
	"context"

	fluxauth "github.com/fluxcd/pkg/auth"
	gcpauth "github.com/fluxcd/pkg/auth/gcp"
	corev1 "k8s.io/api/core/v1"
)

// ProviderName is the name of the GCP provider.
const ProviderName = gcpauth.ProviderName

// Token is the token type this provider returns: the upstream one, so GAR,
// GKE and GCS clients downstream keep working unchanged.
type Token = gcpauth.Token

// Implementation is the seam to the Google libraries: the upstream seam plus
// the IAM Credentials endpoint. Tests and the fakes package replace it to
// point the real libraries at local fakes.
type Implementation interface {
	gcpauth.Implementation
	// IAMCredentialsEndpoint is the base URL of the IAM Credentials API,
	// with a trailing slash.
	IAMCredentialsEndpoint() string
}

// Provider is the GCP provider. The zero value is ready to use and calls the
// real Google APIs. It is safe for concurrent use.
type Provider struct {
	// Implementation replaces the Google library calls. Optional. Defaults
	// to the real libraries.
	Implementation Implementation
}

// upstream is the upstream provider on our implementation, with retries
// on the token endpoints whichever implementation it is.
func (p Provider) upstream() gcpauth.Provider {
	return gcpauth.Provider{Implementation: retryingImplementation{p.impl()}}
}

func (p Provider) impl() Implementation {
	if p.Implementation == nil {
		return defaultImplementation{}
	}
	return p.Implementation
}

// GetName implements fluxauth.Provider.
func (Provider) GetName() string { return ProviderName }

// NewControllerToken implements fluxauth.Provider: the controller's own
// token from GKE workload identity (the metadata server).
func (p Provider) NewControllerToken(ctx context.Context, opts ...fluxauth.Option) (fluxauth.Token, error) {
	return p.upstream().NewControllerToken(ctx, opts...)
}

// GetAudiences implements fluxauth.Provider.
func (p Provider) GetAudiences(ctx context.Context, sa corev1.ServiceAccount) ([]string, error) {
	return p.upstream().GetAudiences(ctx, sa)
}

// IdentityAnnotation implements auth.Provider.
func (Provider) IdentityAnnotation() string { return ServiceAccountAnnotation }

// GetIdentity implements fluxauth.Provider. Empty means direct-access
// federation: the federated token itself is the source.
func (p Provider) GetIdentity(sa corev1.ServiceAccount) (string, error) {
	return p.upstream().GetIdentity(sa)
}

// NewTokenForServiceAccount implements fluxauth.Provider: the
// ServiceAccount's token exchanged at Google STS, then, with
// iam.gke.io/gcp-service-account, for that service account's token.
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
