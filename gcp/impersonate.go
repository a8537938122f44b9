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
)

// DefaultScopes are the scopes of an impersonated token when the caller
// sets none with auth.WithScopes.
var DefaultScopes = []string{"https://www.googleapis.com/auth/cloud-platform"}

// tokenLifetime is the longest lifetime generateAccessToken grants without
// an organization policy exception.
const tokenLifetime = "3600s"

// Impersonate implements auth.Provider: IAM Credentials generateAccessToken
// for imp.Target, authorized by the source token, through the proxy-aware
// HTTP client (with its timeout) and the caller's context.
func (p Provider) Impersonate(ctx context.Context, source fluxauth.Token, imp auth.Impersonation,
	opts ...fluxauth.Option) (fluxauth.Token, error) {

	src, ok := source.(*Token)
	if !ok {
		return nil, fmt.Errorf("source credentials are %T, not a GCP token", source)
	}
	var o fluxauth.Options
	o.Apply(opts...)
	scopes := o.Scopes
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}

	hc := o.GetHTTPClient()
	hc.Transport = &oauth2.Transport{Source: oauth2.StaticTokenSource(&src.Token), Base: hc.Transport}
	clientOpts := []option.ClientOption{option.WithHTTPClient(hc)}
	if e := p.iamEndpoint(); e != "" {
		clientOpts = append(clientOpts, option.WithEndpoint(e))
	}
	svc, err := iamcredentials.NewService(ctx, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("failed to create IAM Credentials client: %w", err)
	}

	resp, err := svc.Projects.ServiceAccounts.GenerateAccessToken(
		"projects/-/serviceAccounts/"+imp.Target,
		&iamcredentials.GenerateAccessTokenRequest{Scope: append([]string(nil), scopes...), Lifetime: tokenLifetime},
	).Context(ctx).Do()
	if err != nil {
		var apiErr *googleapi.Error
		if errors.As(err, &apiErr) && apiErr.Code == http.StatusForbidden {
			return nil, fmt.Errorf("iamcredentials generateAccessToken: %w. grant the source identity "+
				"roles/iam.serviceAccountTokenCreator on '%s'", err, imp.Target)
		}
		return nil, fmt.Errorf("iamcredentials generateAccessToken: %w", err)
	}
	expiry, err := time.Parse(time.RFC3339, resp.ExpireTime)
	if err != nil {
		return nil, fmt.Errorf("iamcredentials generateAccessToken returned an invalid expireTime '%s'", resp.ExpireTime)
	}
	return &Token{Token: oauth2.Token{AccessToken: resp.AccessToken, TokenType: "Bearer", Expiry: expiry}}, nil
}
