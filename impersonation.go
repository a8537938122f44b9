package auth

import (
	"context"
	"fmt"
	"time"

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
	token, err := c.cached(ctx, key, true, hop{kind: hopToken}, fetch)
	if err != nil {
		return nil, quote.Error(err)
	}
	return token, nil
}

// hop is what one cached lookup of a chain gets, for its errors. It is
// formatted only when a lookup fails: hits must stay cheap.
type hop struct {
	kind hopKind
	name string // the registry or cluster
}

type hopKind int

const (
	hopToken    hopKind = iota // the chain's token: the source's, or the impersonated one
	hopSource                  // the source credentials of an impersonation
	hopRegistry                // registry credentials made from the token
	hopCluster                 // a REST config made from the tokens
)

// describe names what h gets: the provider, the hop, the target and the
// region.
func (c *Chain) describe(h hop) string {
	switch {
	case h.kind == hopRegistry:
		return fmt.Sprintf("%s registry credentials for %s", c.Provider, quote.Tenant(h.name))
	case h.kind == hopCluster:
		return fmt.Sprintf("%s access to cluster %s", c.Provider, quote.Tenant(h.name))
	case h.kind == hopSource || c.Impersonation == nil:
		return fmt.Sprintf("%s source credentials of %s%s", c.Provider, c.Source, c.inRegion())
	}
	return fmt.Sprintf("%s credentials of %s impersonated from %s%s",
		c.Provider, quote.Tenant(c.Impersonation.Target), c.Source, c.inRegion())
}

func (c *Chain) inRegion() string {
	if r := c.opts.STSRegion; r != "" {
		return " in region " + quote.Tenant(r)
	}
	return ""
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
		source, err := c.cached(ctx, sourceKey, false, hop{kind: hopSource}, fetchSource)
		if err != nil {
			return nil, err
		}
		// The provider checks what the cloud returned (expiry, empty fields).
		return c.provider.Impersonate(ctx, source, imp, c.opts.fluxOptions()...)
	}, nil
}

type fetchFunc = func(context.Context) (fluxauth.Token, error)

// source returns the cache key and the fetch function of the source
// credentials.
func (c *Chain) source(ctx context.Context) (string, fetchFunc, error) {
	o, p := c.opts, c.provider
	fo := c.sourceFluxOptions()
	if c.Source.Kind == SourceController {
		return c.sourceKey(nil), func(ctx context.Context) (fluxauth.Token, error) {
			token, err := p.NewControllerToken(ctx, fo...)
			if err != nil {
				return nil, err
			}
			return token, c.checkToken(token)
		}, nil
	}

	audiences := o.Audiences
	if len(audiences) == 0 {
		var err error
		if audiences, err = p.GetAudiences(ctx, *c.serviceAccount); err != nil {
			return "", nil, fmt.Errorf("failed to get the %s audience of service account %s: %w",
				c.Provider, quote.Tenant(c.Source.ServiceAccount.String()), err)
		}
	}
	return c.sourceKey(audiences), func(ctx context.Context) (fluxauth.Token, error) {
		// A copy: clients may write the object back, and the chain is shared.
		sa := c.serviceAccount.DeepCopy()
		req := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: audiences}}
		if err := o.Client.SubResource("token").Create(ctx, sa, req); err != nil {
			return nil, fmt.Errorf("failed to create a kubernetes token for service account %s: %w%s",
				quote.Tenant(c.Source.ServiceAccount.String()), err,
				rbacHint(err, "create", "serviceaccounts/token", c.Source.ServiceAccount.Namespace))
		}
		token, err := p.NewTokenForServiceAccount(ctx, req.Status.Token, *sa, fo...)
		if err != nil {
			return nil, fmt.Errorf("failed to exchange the kubernetes token: %w", err)
		}
		return token, c.checkToken(token)
	}, nil
}

// sourceScoper is implemented by the providers whose impersonation needs
// source credentials of particular scopes, whatever scopes the caller asks
// of the target: on Azure, the source token is for the token exchange
// (api://AzureADTokenExchange/.default) and the caller's scopes are the
// target app's.
type sourceScoper interface {
	SourceScopes(imp Impersonation) []string
}

// sourceScopesOf returns the scopes of the source credentials of c.
func (c *Chain) sourceScopesOf() []string {
	if c.sourceScopes != nil {
		return c.sourceScopes
	}
	return c.opts.Scopes
}

// sourceFluxOptions are the upstream options of the source credentials:
// the caller's, with the scopes the provider's impersonation needs.
func (c *Chain) sourceFluxOptions() []fluxauth.Option {
	fo := c.opts.fluxOptions()
	if c.sourceScopes != nil {
		fo = append(fo, fluxauth.WithScopes(c.sourceScopes...))
	}
	return fo
}

// tokenValidator is implemented by the providers that can tell a usable
// token from a bad success (a missing or past expiry, an empty field).
type tokenValidator interface {
	ValidateToken(token fluxauth.Token, now time.Time) error
}

// checkToken refuses a source token the cloud should not have returned:
// cached, it would be served until it failed downstream.
func (c *Chain) checkToken(token fluxauth.Token) error {
	if token == nil {
		return errNoTokenFetched
	}
	if v, ok := c.provider.(tokenValidator); ok {
		if err := v.ValidateToken(token, time.Now()); err != nil {
			return fmt.Errorf("the cloud returned an unusable token: %w", err)
		}
	}
	return nil
}

// cached looks key up in the configured cache, fetching on a miss. Only the
// lookup the caller asked for (record) counts as the object's hit or miss.
//
// Every error says what was being fetched (h), timeouts included.
func (c *Chain) cached(ctx context.Context, key string, record bool, h hop, fetch fetchFunc) (fluxauth.Token, error) {
	token, err := c.lookup(ctx, key, record, fetch)
	if err != nil {
		return nil, fmt.Errorf("failed to get %s: %w", c.describe(h), err)
	}
	return token, nil
}

func (c *Chain) lookup(ctx context.Context, key string, record bool, fetch fetchFunc) (fluxauth.Token, error) {
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
