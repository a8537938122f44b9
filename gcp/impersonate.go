package gcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iamcredentials/v1"
	"google.golang.org/api/option"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/internal/quote"
)

// DefaultScopes are the scopes of an impersonated token when the caller
// sets none with auth.WithScopes.
var DefaultScopes = []string{"https://www.googleapis.com/auth/cloud-platform"}

// Impersonate implements auth.Provider: IAM Credentials generateAccessToken
// for imp.Target, authorized by the source token, through the proxy-aware
// HTTP client (with its timeout) and the caller's context, retrying
// throttling, 5xx and broken connections as retry.go says. A success whose
// token is unusable is an error wrapping ErrInvalidToken.
func (p Provider) Impersonate(ctx context.Context, source fluxauth.Token, imp auth.Impersonation,
	opts ...fluxauth.Option) (fluxauth.Token, error) {

	src, ok := source.(*Token)
	if !ok {
		return nil, fmt.Errorf("source credentials are %T, not a GCP token", source)
	}
	params, ok := imp.Request.(*impersonateParams)
	if imp.Request != nil && !ok {
		return nil, fmt.Errorf("the impersonation's request is %T, not GCP generateAccessToken parameters", imp.Request)
	}
	var o fluxauth.Options
	o.Apply(opts...)
	scopes := o.Scopes
	if params != nil && params.scopes != nil {
		scopes = params.scopes // the annotation's take the caller's place
	}
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	lifetime := params.lifetimeOrDefault()

	hc := o.GetHTTPClient()
	hc.Transport = &oauth2.Transport{Source: oauth2.StaticTokenSource(&src.Token), Base: retrying(hc.Transport)}
	clientOpts := []option.ClientOption{option.WithHTTPClient(hc)}
	if e := p.impl().IAMCredentialsEndpoint(); e != "" {
		clientOpts = append(clientOpts, option.WithEndpoint(e))
	}
	svc, err := iamcredentials.NewService(ctx, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("failed to create IAM Credentials client: %w", err)
	}

	target := quote.Tenant(imp.Target)
	resp, err := svc.Projects.ServiceAccounts.GenerateAccessToken(
		"projects/-/serviceAccounts/"+imp.Target,
		&iamcredentials.GenerateAccessTokenRequest{
			Delegates: params.delegateNames(),
			Scope:     append([]string(nil), scopes...),
			Lifetime:  lifetimeText(lifetime),
		},
	).Context(ctx).Do()
	if err != nil {
		var apiErr *googleapi.Error
		switch {
		case errors.As(err, &apiErr) && apiErr.Code == http.StatusForbidden:
			return nil, fmt.Errorf("iamcredentials generateAccessToken for %s: %w. %s", target, oneLine(err),
				params.chainHint(imp.Target))
		case errors.As(err, &apiErr) && apiErr.Code == http.StatusBadRequest && lifetime > DefaultLifetime:
			return nil, fmt.Errorf("iamcredentials generateAccessToken for %s: %w. the annotation asks for "+
				"lifetime %s, above 1h: that needs the organization policy %s to list %s. ask the "+
				"organization's administrator for it, or set lifetime to 1h or less", target, oneLine(err),
				shortDuration(lifetime), lifetimeConstraint, target)
		}
		return nil, fmt.Errorf("iamcredentials generateAccessToken for %s: %w", target, oneLine(err))
	}
	// A success that cannot be used must not be cached or handed out.
	token, err := parseGenerateAccessToken(resp, time.Now())
	if err != nil {
		return nil, fmt.Errorf("iamcredentials generateAccessToken for %s returned an %w", target, err)
	}
	return token, nil
}

// parseGenerateAccessToken turns a generateAccessToken reply into a token,
// or into an ErrInvalidToken naming each wire field that is wrong at now.
func parseGenerateAccessToken(resp *iamcredentials.GenerateAccessTokenResponse, now time.Time) (*Token, error) {
	var problems []string
	if resp.AccessToken == "" {
		problems = append(problems, "accessToken is empty")
	}
	var expiry time.Time
	if resp.ExpireTime == "" {
		problems = append(problems, "expireTime is missing")
	} else if t, err := time.Parse(time.RFC3339, resp.ExpireTime); err != nil {
		// Not a secret, but not ours either: escaped and cut.
		problems = append(problems, "expireTime "+quote.Tenant(resp.ExpireTime)+" is not an RFC 3339 time")
	} else if p := expiryProblem("expireTime", t, now); p != "" {
		problems = append(problems, p)
	} else {
		expiry = t
	}
	if err := invalid(problems); err != nil {
		return nil, err
	}
	return &Token{Token: oauth2.Token{AccessToken: resp.AccessToken, TokenType: "Bearer", Expiry: expiry}}, nil
}
