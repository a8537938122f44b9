package auth

import (
	"context"
	"fmt"
	"strings"

	fluxauth "github.com/fluxcd/pkg/auth"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth/internal/quote"
)

// Provider is a cloud provider that can get source credentials the upstream
// way and impersonate another identity with them. The aws, gcp and azure
// packages implement it.
type Provider interface {
	fluxauth.Provider

	// IdentityAnnotation is the annotation that names the ServiceAccount's
	// own cloud identity, e.g. "eks.amazonaws.com/role-arn".
	IdentityAnnotation() string

	// SourceAnnotations lists every annotation the provider reads from a
	// ServiceAccount that is the source of the credentials (e.g. GCP's
	// iam.gke.io/gcp-service-account and
	// gcp.auth.fluxcd.io/workload-identity-provider). All of them are in
	// the source's cache key, so no annotation can change the identity
	// without changing the key.
	SourceAnnotations() []string

	// ParseImpersonation reads and validates the provider's impersonation
	// annotation on serviceAccount, and every option impersonation will need,
	// without calling the cloud. It returns nil, nil when the annotation is
	// absent.
	ParseImpersonation(serviceAccount corev1.ServiceAccount, opts ...fluxauth.Option) (*Impersonation, error)

	// Impersonate exchanges source credentials for a token of imp.Target.
	Impersonate(ctx context.Context, source fluxauth.Token, imp Impersonation,
		opts ...fluxauth.Option) (fluxauth.Token, error)
}

// Impersonation is a parsed impersonation annotation.
type Impersonation struct {
	// Annotation is the key the configuration was read from.
	Annotation string
	// ServiceAccount is the ServiceAccount that carries the annotation.
	ServiceAccount client.ObjectKey
	// Target is the identity to become: an IAM role ARN or a GCP service
	// account email.
	Target string
	// UseServiceAccount is nil when unset: lockdown then decides.
	UseServiceAccount *bool
	// Parameters are the other request parameters the annotation sets
	// (an external ID, a duration, session tags, delegates...), validated
	// and in the form they are sent, in a fixed order. Every one is part
	// of the target's cache key, so two ServiceAccounts share a token only
	// when all their parameters are equal; idchain explain prints them.
	Parameters []Parameter
	// Request is the provider's own form of the parameters, for its
	// Impersonate; nil when the annotation sets none.
	Request any
	// Attribution is what the session carries to name the tenant, as the
	// operator's ImpersonationPolicy asks; Plan sets it. Providers without
	// such a notion ignore it.
	Attribution Attribution
}

// Parameter is one request parameter of an impersonation, as sent.
type Parameter struct {
	// Field is the annotation field that sets it, e.g. "externalID".
	Field string
	// SentAs is the parameter of the cloud's API, e.g. "ExternalId".
	SentAs string
	// Value is the value as sent, for a single value.
	Value string
	// Values are the values as sent of a list, or of a map in the order
	// of Keys; nil for a single value.
	Values []string
	// Keys are the keys of a map, sorted; nil for a list or a single value.
	Keys []string
}

// IsList reports whether the parameter holds a list or a map.
func (p Parameter) IsList() bool { return p.Values != nil }

// String renders the parameter for people, tenant text quoted, escaped and
// cut: "externalID 'abc' (sent as ExternalId)", "sessionTags ['team'='a']
// (sent as Tags)".
func (p Parameter) String() string {
	if !p.IsList() {
		return fmt.Sprintf("%s %s (sent as %s)", p.Field, quote.Tenant(p.Value), p.SentAs)
	}
	values := make([]string, len(p.Values))
	for i, v := range p.Values {
		values[i] = quote.Tenant(v)
		if p.Keys != nil {
			values[i] = quote.Tenant(p.Keys[i]) + "=" + values[i]
		}
	}
	return fmt.Sprintf("%s [%s] (sent as %s)", p.Field, strings.Join(values, ", "), p.SentAs)
}
