package auth

import (
	"context"

	fluxauth "github.com/fluxcd/pkg/auth"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
}
