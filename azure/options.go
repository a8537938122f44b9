package azure

import (
	"errors"
	"fmt"
	"slices"

	fluxauth "github.com/fluxcd/pkg/auth"
	corev1 "k8s.io/api/core/v1"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/internal/provider"
	"github.com/identitychain/auth/internal/quote"
)

const (
	// ImpersonateAnnotation configures the hop from a managed identity to
	// an app registration that trusts it as a federated identity
	// credential, usually in another tenant.
	ImpersonateAnnotation = "azure.auth.fluxcd.io/impersonate"

	// ClientIDAnnotation and TenantIDAnnotation (upstream) name the
	// ServiceAccount's own managed identity for workload identity
	// federation; it is the source when the ServiceAccount is.
	ClientIDAnnotation = "azure.workload.identity/client-id"
	TenantIDAnnotation = "azure.workload.identity/tenant-id"

	// TokenExchangeAudience is the audience of the source token and of
	// every federated identity credential the hop needs: Entra accepts a
	// token of a managed identity as a client assertion only for it.
	TokenExchangeAudience = "api://AzureADTokenExchange"
)

// sourceScopes are the scopes of the source token: the managed identity's
// token for the exchange, whatever the caller asks of the app.
var sourceScopes = []string{TokenExchangeAudience + "/.default"}

// ImpersonateConfig is the YAML value of the ImpersonateAnnotation.
type ImpersonateConfig struct {
	// ClientID is the application (client) ID of the app registration to
	// get a token of, a GUID. The app must trust the source managed
	// identity as a federated identity credential and, to be reached in
	// another tenant, be multi-tenant. Required.
	ClientID string `json:"clientID"`
	// TenantID is the tenant to get the app's token in: its ID (a GUID) or
	// one of its verified domains. The app needs a service principal there
	// (admin consent). Required.
	TenantID string `json:"tenantID"`
	// UseServiceAccount makes the ServiceAccount's own managed identity
	// (its azure.workload.identity/client-id, through object-level workload
	// identity) the source instead of the controller's. Optional. Defaults
	// to true under multi-tenancy lockdown and false otherwise.
	UseServiceAccount *bool `json:"useServiceAccount,omitempty"`
}

// ErrScopesRequired is returned when an app's token is asked for without
// scopes: Entra grants client credentials only for the scopes of one
// resource, and a token for the wrong one is of no use.
var ErrScopesRequired = errors.New("the scopes of the app's token are required")

// ParseImpersonate strictly parses the ImpersonateAnnotation of sa. It
// returns nil, nil when the annotation is absent. The client and tenant
// IDs are checked as Entra defines them, so a value Entra would refuse
// costs no cloud call.
func ParseImpersonate(sa corev1.ServiceAccount) (*ImpersonateConfig, error) {
	var conf ImpersonateConfig
	ok, err := provider.DecodeAnnotation(sa, ImpersonateAnnotation, &conf)
	if !ok || err != nil {
		return nil, err
	}
	invalid := func(reason string) error {
		return provider.Invalid(sa, ImpersonateAnnotation, reason)
	}
	switch {
	case conf.ClientID == "":
		return nil, invalid("clientID is required: the application (client) ID of the app registration, " +
			"e.g. 'clientID: 00001111-aaaa-2222-bbbb-3333cccc4444'")
	case conf.TenantID == "":
		return nil, invalid("tenantID is required: the ID or a verified domain of the tenant to get the " +
			"app's token in, e.g. 'tenantID: aaaabbbb-0000-cccc-1111-dddd2222eeee'")
	}
	if err := ValidateClientID(conf.ClientID); err != nil {
		return nil, invalid("clientID " + err.Error())
	}
	if err := ValidateTenantID(conf.TenantID); err != nil {
		return nil, invalid("tenantID " + err.Error())
	}
	return &conf, nil
}

// clientCredentials is the provider's own form of an impersonation: what
// the token request needs besides the app, which is the Target.
type clientCredentials struct {
	tenantID string
}

// ParseImpersonation implements auth.Provider. Besides the annotation, it
// checks that the caller asks for scopes now, so a misconfiguration costs
// no cloud call. The tenant and the scopes are the impersonation's
// parameters: the scopes are the caller's, and in the target's cache key
// through them, because the source's key holds the exchange scope instead.
func (Provider) ParseImpersonation(sa corev1.ServiceAccount, opts ...fluxauth.Option) (*auth.Impersonation, error) {
	conf, err := ParseImpersonate(sa)
	if conf == nil || err != nil {
		return nil, err
	}
	var o fluxauth.Options
	o.Apply(opts...)
	key := provider.Key(sa)
	if len(o.Scopes) == 0 {
		return nil, fmt.Errorf("%w: service account %s asks for a token of app %s in tenant %s. "+
			"set the scopes of the token (auth.WithScopes), e.g. https://management.azure.com/.default",
			ErrScopesRequired, quote.Tenant(key.String()), quote.Tenant(conf.ClientID), quote.Tenant(conf.TenantID))
	}
	return &auth.Impersonation{
		Annotation:        ImpersonateAnnotation,
		ServiceAccount:    key,
		Target:            conf.ClientID,
		UseServiceAccount: conf.UseServiceAccount,
		Parameters: []auth.Parameter{
			{Field: "tenantID", SentAs: "tenant", Value: conf.TenantID},
			{Field: "scopes", SentAs: "scope", Values: slices.Clone(o.Scopes)},
		},
		Request: &clientCredentials{tenantID: conf.TenantID},
	}, nil
}

// SourceScopes implements the chain's hook for providers whose source
// credentials have scopes of their own: the managed identity's token for
// the exchange audience, which the chain caches as the source level.
func (Provider) SourceScopes(auth.Impersonation) []string { return slices.Clone(sourceScopes) }

// SourceAnnotations implements auth.Provider: the upstream provider reads
// the client and tenant IDs, and tells an absent tenant ID from an empty
// one.
func (Provider) SourceAnnotations() []string { return sourceAnnotationKeys }

var sourceAnnotationKeys = []string{ClientIDAnnotation, TenantIDAnnotation}

// IdentityAnnotation implements auth.Provider.
func (Provider) IdentityAnnotation() string { return ClientIDAnnotation }
