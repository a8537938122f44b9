package auth

import (
	"context"
	"slices"

	fluxauth "github.com/fluxcd/pkg/auth"

	"github.com/identitychain/auth/internal/quote"
)

// RegistryProvider is a Provider that can log in to container registries.
type RegistryProvider interface {
	Provider
	GetAccessTokenOptionsForArtifactRepository(artifactRepository string) ([]fluxauth.Option, error)
	ParseArtifactRepository(artifactRepository string) (string, error)
	NewArtifactRegistryCredentials(ctx context.Context, registryInput string,
		accessToken fluxauth.Token, opts ...fluxauth.Option) (*fluxauth.ArtifactRegistryCredentials, error)
}

// GetArtifactRegistryCredentials returns registry credentials (ECR, GAR,
// ACR) made from the access token GetAccessToken would return, impersonation
// included. Both are cached when a cache is configured.
func GetArtifactRegistryCredentials(ctx context.Context, provider RegistryProvider,
	artifactRepository string, opts ...Option) (*fluxauth.ArtifactRegistryCredentials, error) {
	creds, err := getArtifactRegistryCredentials(ctx, provider, artifactRepository, opts...)
	if err != nil {
		return nil, quote.Error(err)
	}
	return creds, nil
}

func getArtifactRegistryCredentials(ctx context.Context, provider RegistryProvider,
	artifactRepository string, opts ...Option) (*fluxauth.ArtifactRegistryCredentials, error) {

	registryInput, err := provider.ParseArtifactRepository(artifactRepository)
	if err != nil {
		return nil, err
	}
	extra, err := provider.GetAccessTokenOptionsForArtifactRepository(artifactRepository)
	if err != nil {
		return nil, err
	}
	c, err := Plan(ctx, provider, append(slices.Clone(opts), WithFluxOptions(extra...))...)
	if err != nil {
		return nil, err
	}
	tokenKey, fetchToken, err := c.resolve(ctx)
	if err != nil {
		return nil, err
	}

	key := hashKey(keyInput{Name: "accessToken", Value: tokenKey}, keyInput{Name: "artifactRepository", Value: registryInput})
	creds, err := c.cached(ctx, key, true, hop{kind: hopRegistry, name: artifactRepository}, func(ctx context.Context) (fluxauth.Token, error) {
		token, err := c.cached(ctx, tokenKey, false, hop{kind: hopToken}, fetchToken)
		if err != nil {
			return nil, err
		}
		return provider.NewArtifactRegistryCredentials(ctx, registryInput, token, c.opts.fluxOptions()...)
	})
	if err != nil {
		return nil, err
	}
	return creds.(*fluxauth.ArtifactRegistryCredentials), nil
}
