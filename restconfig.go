package auth

import (
	"context"
	"fmt"
	"slices"

	fluxauth "github.com/fluxcd/pkg/auth"

	"github.com/identitychain/auth/internal/quote"
)

// RESTConfigProvider is a Provider that can make Kubernetes REST configs for
// managed clusters (EKS, GKE, AKS).
type RESTConfigProvider interface {
	Provider
	GetAccessTokenOptionsForCluster(opts ...fluxauth.Option) ([][]fluxauth.Option, error)
	NewRESTConfig(ctx context.Context, accessTokens []fluxauth.Token, opts ...fluxauth.Option) (*fluxauth.RESTConfig, error)
}

func proxyKey(o *Options) string {
	if o.ProxyURL == nil {
		return ""
	}
	return o.ProxyURL.String()
}

// GetRESTConfig returns a REST config for the cluster named by
// WithClusterResource, authenticated with the access tokens GetAccessToken
// would return, impersonation included.
func GetRESTConfig(ctx context.Context, provider RESTConfigProvider, opts ...Option) (*fluxauth.RESTConfig, error) {
	conf, err := getRESTConfig(ctx, provider, opts...)
	if err != nil {
		return nil, quote.Error(err)
	}
	return conf, nil
}

func getRESTConfig(ctx context.Context, provider RESTConfigProvider, opts ...Option) (*fluxauth.RESTConfig, error) {
	o := newOptions(opts...)
	perToken, err := provider.GetAccessTokenOptionsForCluster(o.fluxOptions()...)
	if err != nil {
		return nil, err
	}

	var first *Chain
	// The config carries the CA data and goes through the proxy; its
	// tokens are keyed without them, so they are shared with GetAccessToken.
	keys := []keyInput{{Name: "cluster", Value: o.ClusterResource}, {Name: "address", Value: o.ClusterAddress}, {Name: "caData", Value: o.CAData},
		{Name: "proxyURL", Value: proxyKey(o)}}
	fetches := make([]func(context.Context) (fluxauth.Token, error), len(perToken))
	for i, extra := range perToken {
		c, err := Plan(ctx, provider, append(slices.Clone(opts), WithFluxOptions(extra...))...)
		if err != nil {
			return nil, err
		}
		if first == nil {
			first = c
		}
		key, fetch, err := c.resolve(ctx)
		if err != nil {
			return nil, err
		}
		keys = append(keys, keyInput{Name: fmt.Sprintf("accessToken%d", i), Value: key})
		fetches[i] = func(ctx context.Context) (fluxauth.Token, error) {
			return c.cached(ctx, key, false, hop{kind: hopToken}, fetch)
		}
	}
	if first == nil {
		return nil, fmt.Errorf("provider %s needs no access token for a cluster", provider.GetName())
	}

	cluster := o.ClusterResource
	if cluster == "" {
		cluster = o.ClusterAddress
	}
	conf, err := first.cached(ctx, hashKey(keys...), true, hop{kind: hopCluster, name: cluster}, func(ctx context.Context) (fluxauth.Token, error) {
		tokens := make([]fluxauth.Token, len(fetches))
		for i, fetch := range fetches {
			token, err := fetch(ctx)
			if err != nil {
				return nil, err
			}
			tokens[i] = token
		}
		return provider.NewRESTConfig(ctx, tokens, o.fluxOptions()...)
	})
	if err != nil {
		return nil, err
	}
	return conf.(*fluxauth.RESTConfig), nil
}
