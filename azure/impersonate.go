package azure

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	fluxauth "github.com/fluxcd/pkg/auth"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/internal/quote"
)

// Impersonate implements auth.Provider: a client credentials request for
// the app imp.Target in the annotation's tenant, whose client assertion is
// the source token (a managed identity's token for TokenExchangeAudience,
// see SourceScopes), for the caller's scopes. It goes through azidentity's
// client assertion credential, the proxy-aware HTTP client (with its
// timeout, and azcore's retries of throttling and 5xx, bounded by ctx) and
// the caller's context.
//
// Entra's refusals are *EntraError, and those that need a change in Entra
// say which (see ErrNoFederatedCredential, ErrAppNotInTenant,
// ErrTenantNotFound). A success whose token is unusable is an error
// wrapping ErrInvalidToken.
func (p Provider) Impersonate(ctx context.Context, source fluxauth.Token, imp auth.Impersonation,
	opts ...fluxauth.Option) (fluxauth.Token, error) {

	src, ok := source.(*Token)
	if !ok || src == nil {
		return nil, fmt.Errorf("source credentials are %T, not an Azure token", source)
	}
	req, ok := imp.Request.(*clientCredentials)
	if !ok || req == nil {
		return nil, fmt.Errorf("the impersonation's request is %T, not Azure client credentials", imp.Request)
	}
	var o fluxauth.Options
	o.Apply(opts...)
	what := fmt.Sprintf("entra token request for app %s in tenant %s", quote.Tenant(imp.Target), quote.Tenant(req.tenantID))
	if len(o.Scopes) == 0 {
		return nil, fmt.Errorf("%s: %w: set them with auth.WithScopes", what, ErrScopesRequired)
	}

	assertion := src.Token
	cred, err := p.newClientAssertionCredential(req.tenantID, imp.Target,
		func(context.Context) (string, error) { return assertion, nil },
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: o.GetHTTPClient()}})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	at, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: slices.Clone(o.Scopes)})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, requestError(ctx, err, func(err error) error {
			return entraRefusal(err, imp.Target, req.tenantID, assertion)
		}))
	}
	// A success that cannot be used must not be cached or handed out.
	token := &Token{AccessToken: at}
	if err := p.ValidateToken(token, time.Now()); err != nil {
		return nil, fmt.Errorf("%s returned an %w", what, err)
	}
	return token, nil
}
