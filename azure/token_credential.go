package azure

import (
	"context"
	"fmt"
	"slices"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/identitychain/auth"
)

// NewTokenCredential returns a credential for Azure SDK clients whose tokens
// come from auth.GetAccessToken with the zero Provider: the chain of this
// library, lockdown and auth.WithTokenCache included. It has the signature
// of upstream's, so a call site compiles by swapping the imports.
func NewTokenCredential(ctx context.Context, opts ...auth.Option) azcore.TokenCredential {
	return Provider{}.NewTokenCredential(ctx, opts...)
}

// NewTokenCredential is the package-level NewTokenCredential with p as the
// provider, e.g. one whose Implementation is a fake.
//
// As upstream's, tokens are fetched with ctx, not with the context GetToken
// is given: GCP's oauth2.TokenSource has no context of its own, and the
// three adapters behave alike. The wait is still bounded: the HTTP client
// of every cloud call has a timeout, and a TokenCache bounds each fetch.
func (p Provider) NewTokenCredential(ctx context.Context, opts ...auth.Option) azcore.TokenCredential {
	// A copy: the caller may reuse its slice's backing array.
	return &tokenCredential{ctx: ctx, provider: p, opts: slices.Clone(opts)}
}

// tokenCredential is immutable and safe for concurrent use. GetToken calls
// the chain every time, as upstream's does: caching is the TokenCache's
// job, or that of the SDK's bearer token policy.
type tokenCredential struct {
	ctx      context.Context // the adapter's signature puts it here; see NewTokenCredential
	provider Provider
	opts     []auth.Option
}

// GetToken implements azcore.TokenCredential. The scopes the SDK asks for
// override any of the options, as upstream's: they are part of the cache
// key, so tokens for different scopes never mix.
func (t *tokenCredential) GetToken(_ context.Context, tokenOpts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	opts := t.opts
	if tokenOpts.Scopes != nil {
		opts = append(slices.Clip(opts), auth.WithScopes(tokenOpts.Scopes...))
	}
	token, err := auth.GetAccessToken(t.ctx, t.provider, opts...)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	azureToken, ok := token.(*Token)
	if !ok || azureToken == nil {
		return azcore.AccessToken{}, fmt.Errorf("failed to cast token to Azure token: %T", token)
	}
	return azureToken.AccessToken, nil
}
