package auth

import (
	"net/url"

	fluxauth "github.com/fluxcd/pkg/auth"
	"github.com/fluxcd/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Option configures a call to GetAccessToken, GetArtifactRegistryCredentials
// or GetRESTConfig.
type Option func(*Options)

// Options is the configuration of one call. Build it with Option values; the
// zero value asks for the controller's own identity with no cache. Each call
// builds its own, so it needs no locking.
//
// An Option may also be written as a function that sets fields directly,
// e.g. func(o *auth.Options) { o.STSRegion = "us-east-1" }, the way
// upstream's tests write options: every option, ours and upstream's, writes
// the same struct, so nothing a function sets is lost.
//
// Printing Options with any fmt verb or logging it with slog shows no
// secret: the proxy URL's user info is redacted and the CA data left out.
type Options struct {
	// Options is the upstream view of the configuration (o.STSRegion,
	// o.Client, ...). Upstream options write it directly.
	fluxauth.Options

	// DefaultServiceAccount turns on multi-tenancy lockdown for this call.
	// Optional. When empty, the process-wide upstream settings
	// (fluxauth.SetDefaultServiceAccount, SetDefaultKubeConfigServiceAccount)
	// decide.
	DefaultServiceAccount string

	// TokenCache caches tokens without blocking. Optional.
	TokenCache *TokenCache

	// Policy is the operator's impersonation policy. Optional. Without
	// it, any impersonation the cloud allows is made.
	Policy *ImpersonationPolicy
}

// apply applies opts in order.
func (o *Options) apply(opts ...Option) {
	for _, opt := range opts {
		opt(o)
	}
}

// fluxOptions returns the options to hand to the upstream providers: one
// that copies the upstream view as it is now.
func (o *Options) fluxOptions() []fluxauth.Option {
	view := o.Options
	return []fluxauth.Option{func(fo *fluxauth.Options) { *fo = view }}
}

func newOptions(opts ...Option) *Options {
	var o Options
	o.apply(opts...)
	return &o
}

func withFlux(opts ...fluxauth.Option) Option {
	return func(o *Options) { o.Options.Apply(opts...) }
}

// WithFluxOptions passes any other upstream option through unchanged.
func WithFluxOptions(opts ...fluxauth.Option) Option { return withFlux(opts...) }

// WithClient sets the client used to read ServiceAccounts and request their tokens.
func WithClient(c client.Client) Option { return withFlux(fluxauth.WithClient(c)) }

// WithServiceAccountName names the ServiceAccount of the Flux object.
func WithServiceAccountName(name string) Option {
	return withFlux(fluxauth.WithServiceAccountName(name))
}

// WithServiceAccountNamespace sets the namespace of the Flux object.
func WithServiceAccountNamespace(ns string) Option {
	return withFlux(fluxauth.WithServiceAccountNamespace(ns))
}

// WithAudiences sets the audiences of the ServiceAccount token.
func WithAudiences(aud ...string) Option { return withFlux(fluxauth.WithAudiences(aud...)) }

// WithScopes sets the scopes of the returned token.
func WithScopes(scopes ...string) Option { return withFlux(fluxauth.WithScopes(scopes...)) }

// WithSTSRegion sets the AWS region; required for AWS impersonation.
func WithSTSRegion(region string) Option { return withFlux(fluxauth.WithSTSRegion(region)) }

// WithSTSEndpoint sets the STS endpoint; validated as upstream does.
func WithSTSEndpoint(endpoint string) Option {
	return withFlux(fluxauth.WithSTSEndpoint(endpoint))
}

// WithProxyURL sends every cloud call through an HTTP/S proxy.
func WithProxyURL(u url.URL) Option { return withFlux(fluxauth.WithProxyURL(u)) }

// WithCAData sets the CA of the cluster for GetRESTConfig.
func WithCAData(caData string) Option { return withFlux(fluxauth.WithCAData(caData)) }

// WithClusterResource sets the cloud resource name of the cluster for GetRESTConfig.
func WithClusterResource(r string) Option { return withFlux(fluxauth.WithClusterResource(r)) }

// WithClusterAddress sets the API server address for GetRESTConfig.
func WithClusterAddress(a string) Option { return withFlux(fluxauth.WithClusterAddress(a)) }

// WithCache uses an upstream cache. Kept so call sites compile by swapping
// the import; prefer WithTokenCache, which never blocks a hit behind a miss.
func WithCache(c cache.TokenCache, obj cache.InvolvedObject) Option {
	return withFlux(fluxauth.WithCache(c, obj))
}

// WithDefaultServiceAccount turns on multi-tenancy lockdown for this call:
// an object that names no ServiceAccount uses this one, and the controller's
// own identity is never used for impersonation.
func WithDefaultServiceAccount(name string) Option {
	return func(o *Options) { o.DefaultServiceAccount = name }
}

// WithImpersonationPolicy makes Plan refuse, with ErrPolicyDenied, every
// impersonation that p allows by no rule, and makes AWS sessions carry
// what p's aws section asks for. Pass the same policy on every call; a nil
// p is no policy.
func WithImpersonationPolicy(p *ImpersonationPolicy) Option {
	return func(o *Options) { o.Policy = p }
}

// WithTokenCache caches tokens in c and records hits and misses for obj.
func WithTokenCache(c *TokenCache, obj cache.InvolvedObject) Option {
	return func(o *Options) {
		o.TokenCache = c
		o.InvolvedObject = obj
	}
}

// WithGitURL sets the URL of the Git repository, for upstream's Git
// credential providers. It is not part of the token cache keys: the
// providers of this library do not read it, so it never changes whose
// token a chain gets.
func WithGitURL(gitURL url.URL) Option { return withFlux(fluxauth.WithGitURL(gitURL)) }

// WithAllowShellOut lets the controller's own credentials come from binary
// tools (e.g. the Azure CLI). As upstream: for the Flux CLI only, never in a
// controller, where a tenant must not reach the operator's CLI login.
func WithAllowShellOut() Option { return withFlux(fluxauth.WithAllowShellOut()) }
