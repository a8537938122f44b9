package gcp

import (
	"context"
	"fmt"
	"slices"

	"golang.org/x/oauth2"

	"github.com/identitychain/auth"
)

// NewTokenSource returns a token source for Google API clients (e.g.
// option.WithTokenSource) whose tokens come from auth.GetAccessToken with
// the zero Provider: the chain of this library, impersonation, lockdown and
// auth.WithTokenCache included. It has the signature of upstream's, so a
// call site compiles by swapping the imports.
func NewTokenSource(ctx context.Context, opts ...auth.Option) oauth2.TokenSource {
	return Provider{}.NewTokenSource(ctx, opts...)
}

// NewTokenSource is the package-level NewTokenSource with p as the
// provider, e.g. one whose Implementation points at fakes.
//
// Tokens are fetched with ctx: oauth2.TokenSource.Token takes no context.
// The wait is bounded nonetheless: the HTTP client of every cloud call has
// a timeout, and a TokenCache bounds each fetch.
func (p Provider) NewTokenSource(ctx context.Context, opts ...auth.Option) oauth2.TokenSource {
	// A copy: the caller may reuse its slice's backing array.
	return &tokenSource{ctx: ctx, provider: p, opts: slices.Clone(opts)}
}

// tokenSource is immutable and safe for concurrent use. Token calls the
// chain every time, as upstream's does: caching is the TokenCache's job, or
// that of an oauth2.ReuseTokenSource in front.
type tokenSource struct {
	ctx      context.Context // the adapter's signature puts it here; see NewTokenSource
	provider Provider
	opts     []auth.Option
}

// Token implements oauth2.TokenSource. Each call returns a token of its
// own: with a TokenCache every caller gets the same cached *Token, which
// must not be changed through the pointer upstream's adapter hands out.
func (t *tokenSource) Token() (*oauth2.Token, error) {
	token, err := auth.GetAccessToken(t.ctx, t.provider, t.opts...)
	if err != nil {
		return nil, err
	}
	gcpToken, ok := token.(*Token)
	if !ok || gcpToken == nil {
		return nil, fmt.Errorf("failed to cast token to GCP token: %T", token)
	}
	copied := gcpToken.Token
	return &copied, nil
}
