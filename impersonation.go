package auth

import (
	"context"
	"fmt"

	fluxauth "github.com/fluxcd/pkg/auth"
	"github.com/fluxcd/pkg/cache"
	authnv1 "k8s.io/api/authentication/v1"

	"github.com/identitychain/auth/internal/quote"
)

// GetAccessToken returns a token for the identity the object's
// ServiceAccount asks for: its own (as upstream), or one impersonated from
// the controller's or the ServiceAccount's identity. The token is of the
// upstream type of the provider (*aws.Credentials, *gcp.Token, *azure.Token).
func GetAccessToken(ctx context.Context, provider Provider, opts ...Option) (fluxauth.Token, error) {
	c, err := Plan(ctx, provider, opts...)
	if err != nil {
		return nil, err
	}
	return c.Token(ctx)
}

// Token runs the chain: source credentials, then the impersonation hop if
// any, each level cached under its own key when a cache is configured, so
// many targets reached from one source cost one source exchange.
func (c *Chain) Token(ctx context.Context) (fluxauth.Token, error) {
	key, fetch, err := c.resolve(ctx)
	if err != nil {
		return nil, quote.Error(err)
	}
	token, err := c.cached(ctx, key, true, fetch)
	if err != nil {
		return nil, quote.Error(err)
	}
	return token, nil
}

// resolve returns the cache key of the chain's token and the function that
// makes it on a miss.
func (c *Chain) resolve(ctx context.Context) (string, fetchFunc, error) {
	sourceKey, fetchSource, err := c.source(ctx)
	if err != nil || c.Impersonation == nil {
		return sourceKey, fetchSource, err
	}
	imp := *c.Impersonation
	return c.targetKey(sourceKey), func(ctx context.Context) (fluxauth.Token, error) {
		source, err := c.cached(ctx, sourceKey, false, fetchSource)
		if err != nil {
			return nil, err
		}
		token, err := c.provider.Impersonate(ctx, source, imp, c.opts.FluxOptions()...)
		if err != nil {
			return nil, fmt.Errorf("failed to impersonate %s from %s: %w", quote.Tenant(imp.Target), c.Source, err)
		}
		return token, nil
	}, nil
}

type fetchFunc = func(context.Context) (fluxauth.Token, error)

// source returns the cache key and the fetch function of the source
// credentials.
func (c *Chain) source(ctx context.Context) (string, fetchFunc, error) {
	o, p := c.opts, c.provider
	if c.Source.Kind == SourceController {
		return c.sourceKey(nil), func(ctx context.Context) (fluxauth.Token, error) {
			token, err := p.NewControllerToken(ctx, o.FluxOptions()...)
			if err != nil {
				return nil, fmt.Errorf("failed to create provider access token for the controller: %w", err)
			}
			return token, nil
		}, nil
	}

	audiences := o.Audiences
	if len(audiences) == 0 {
		var err error
		if audiences, err = p.GetAudiences(ctx, *c.serviceAccount); err != nil {
			return "", nil, fmt.Errorf("failed to get provider audience: %w", err)
		}
	}
	return c.sourceKey(audiences), func(ctx context.Context) (fluxauth.Token, error) {
		// A copy: clients may write the object back, and the chain is shared.
		sa := c.serviceAccount.DeepCopy()
		req := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: audiences}}
		if err := o.Client.SubResource("token").Create(ctx, sa, req); err != nil {
			return nil, fmt.Errorf("failed to create kubernetes token for service account %s: %w",
				quote.Tenant(c.Source.ServiceAccount.String()), err)
		}
		token, err := p.NewTokenForServiceAccount(ctx, req.Status.Token, *sa, o.FluxOptions()...)
		if err != nil {
			return nil, fmt.Errorf("failed to create provider access token for service account %s: %w",
				quote.Tenant(c.Source.ServiceAccount.String()), err)
		}
		return token, nil
	}, nil
}

// cached looks key up in the configured cache, fetching on a miss. Only the
// lookup the caller asked for (record) counts as the object's hit or miss.
func (c *Chain) cached(ctx context.Context, key string, record bool, fetch fetchFunc) (fluxauth.Token, error) {
	o := c.opts
	var obj cache.InvolvedObject
	if record {
		obj = o.InvolvedObject
	}
	switch {
	case o.TokenCache != nil:
		token, _, err := o.TokenCache.getOrFetch(ctx, key, obj, fetch)
		return token, err
	case o.Cache != nil && record:
		// Upstream's cache holds its lock while it fetches, so a nested
		// lookup would deadlock: only the outer level is cached there.
		token, _, err := o.Cache.GetOrSet(ctx, key, func(ctx context.Context) (cache.Token, error) {
			return fetch(ctx)
		}, cache.WithInvolvedObject(obj.Kind, obj.Name, obj.Namespace, obj.Operation))
		if err != nil {
			return nil, err
		}
		return token, nil
	default:
		return fetch(ctx)
	}
}
