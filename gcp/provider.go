// This file is the only one that touches the upstream provider, so moving
// to a newer fluxcd/pkg/auth changes this file alone.

package gcp

import (
	"context"
	"slices"

	fluxauth "github.com/fluxcd/pkg/auth"
	gcpauth "github.com/fluxcd/pkg/auth/gcp"
	corev1 "k8s.io/api/core/v1"

	"github.com/identitychain/auth/internal/ctxcall"
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
// token from GKE workload identity (the metadata server). The token source
// upstream uses there reads the metadata without a context, behind a
// process-wide mutex of the metadata client, so the call is bounded here:
// it returns at the caller's deadline, and the abandoned call ends on its
// own within the metadata client's limits (5s a request, 5 retries).
func (p Provider) NewControllerToken(ctx context.Context, opts ...fluxauth.Option) (fluxauth.Token, error) {
	const what = "the controller's token from the GKE metadata server"
	call := func(ctx context.Context) (fluxauth.Token, error) {
		return p.upstream().NewControllerToken(ctx, opts...)
	}
	if p.Implementation != nil {
		return ctxcall.Do(ctx, what, call)
	}
	var o fluxauth.Options
	o.Apply(opts...)
	var proxy string // the only option upstream reads here
	if o.ProxyURL != nil {
		proxy = o.ProxyURL.String()
	}
	token, err := controllerTokens.Do(ctx, proxy, what, call)
	if t, ok := token.(*Token); ok && t != nil && err == nil {
		c := *t // each caller its own
		return &c, nil
	}
	return token, err
}

// controllerTokens shares the controller's token of the real libraries
// among concurrent callers with the same proxy, so that while the metadata
// server hangs, callers that give up leave one call behind, not one each
// queued on the metadata client's mutex. Callers of other implementations
// are not shared: their tokens may differ.
var controllerTokens ctxcall.Group[fluxauth.Token]

// metadataLoads shares upstream's load of the GKE cluster metadata among
// callers. Upstream loads it once per process under a mutex, so while the
// metadata server hangs, callers queue on that mutex past their deadlines.
// It is process-wide because upstream's state is.
var metadataLoads ctxcall.Group[[]string]

// GetAudiences implements fluxauth.Provider. Without a workload identity
// provider annotation the audience comes from the GKE metadata server:
// callers wait for it until their own deadline, and one load at a time
// runs, ending on its own within the metadata client's limits.
func (p Provider) GetAudiences(ctx context.Context, sa corev1.ServiceAccount) ([]string, error) {
	if sa.Annotations[WorkloadIdentityProviderAnnotation] != "" {
		return p.upstream().GetAudiences(ctx, sa) // no network call
	}
	// The result depends on nothing but the cluster, so callers share it.
	audiences, err := metadataLoads.Do(ctx, "gke", "the GKE metadata server",
		func(ctx context.Context) ([]string, error) { return p.upstream().GetAudiences(ctx, sa) })
	return slices.Clone(audiences), err
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
// iam.gke.io/gcp-service-account, for that service account's token. Both
// hops return at the caller's deadline.
func (p Provider) NewTokenForServiceAccount(ctx context.Context, oidcToken string,
	sa corev1.ServiceAccount, opts ...fluxauth.Option) (fluxauth.Token, error) {
	// Upstream first reads the GKE metadata (without a workload identity
	// provider annotation). Loading it here, bounded, leaves upstream
	// nothing to wait for on its mutex.
	if _, err := p.GetAudiences(ctx, sa); err != nil {
		return nil, err
	}
	return ctxcall.Do(ctx, "the Google STS token exchange", func(ctx context.Context) (fluxauth.Token, error) {
		return p.upstream().NewTokenForServiceAccount(ctx, oidcToken, sa, opts...)
	})
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
