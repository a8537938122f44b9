package gcp

import (
	fluxauth "github.com/fluxcd/pkg/auth"
	corev1 "k8s.io/api/core/v1"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/internal/provider"
)

const (
	// ImpersonateAnnotation configures impersonation of a GCP service account.
	ImpersonateAnnotation = "gcp.auth.fluxcd.io/impersonate"

	// ServiceAccountAnnotation names the ServiceAccount's own GCP service
	// account; without it, object level means direct-access federation.
	ServiceAccountAnnotation = "iam.gke.io/gcp-service-account"

	// WorkloadIdentityProviderAnnotation (upstream) names the workload
	// identity provider for clusters outside GKE.
	WorkloadIdentityProviderAnnotation = "gcp.auth.fluxcd.io/workload-identity-provider"
)

// ImpersonateConfig is the YAML value of the ImpersonateAnnotation.
type ImpersonateConfig struct {
	// GCPServiceAccount is the email of the service account to impersonate.
	// Required.
	GCPServiceAccount string `json:"gcpServiceAccount"`
	// UseServiceAccount makes the ServiceAccount's own identity (its
	// iam.gke.io/gcp-service-account, or its federated identity when that is
	// absent) the source instead of the controller's. Optional. Defaults to
	// true under multi-tenancy lockdown and false otherwise.
	UseServiceAccount *bool `json:"useServiceAccount,omitempty"`

	// Delegates are the service accounts between the source and
	// GCPServiceAccount, in order from the source: the source needs
	// roles/iam.serviceAccountTokenCreator on the first, each on the next,
	// the last on GCPServiceAccount. At most 10. Optional.
	Delegates []string `json:"delegates,omitempty"`
	// Lifetime is the token's lifetime: a duration with a unit, such as
	// "30m" or "1h", from MinLifetime to MaxLifetime; above 1h, only where
	// the organization policy
	// constraints/iam.allowServiceAccountCredentialLifetimeExtension lists
	// GCPServiceAccount. Optional; DefaultLifetime without it.
	Lifetime *string `json:"lifetime,omitempty" annotation:"duration"`
	// Scopes are the OAuth scopes of the token; they take the place of
	// auth.WithScopes for this ServiceAccount. Optional.
	Scopes []string `json:"scopes,omitempty"`
}

// ParseImpersonate strictly parses the ImpersonateAnnotation of sa. It
// returns nil, nil when the annotation is absent.
// Every field is checked against Google's own limits, so a value Google
// would refuse costs no cloud call.
func ParseImpersonate(sa corev1.ServiceAccount) (*ImpersonateConfig, error) {
	conf, _, err := parseImpersonate(sa)
	return conf, err
}

func parseImpersonate(sa corev1.ServiceAccount) (*ImpersonateConfig, *impersonateParams, error) {
	var conf ImpersonateConfig
	ok, err := provider.DecodeAnnotation(sa, ImpersonateAnnotation, &conf)
	if !ok || err != nil {
		return nil, nil, err
	}
	invalid := func(reason string) error {
		return provider.Invalid(sa, ImpersonateAnnotation, reason)
	}
	switch {
	case conf.GCPServiceAccount == "":
		return nil, nil, invalid("gcpServiceAccount is required, e.g. 'gcpServiceAccount: target@project.iam.gserviceaccount.com'")
	}
	if err := ValidateServiceAccountEmail(conf.GCPServiceAccount); err != nil {
		return nil, nil, invalid("gcpServiceAccount " + err.Error())
	}
	params, err := conf.params()
	if err != nil {
		return nil, nil, invalid(err.Error())
	}
	return &conf, params, nil
}

// SourceAnnotations implements auth.Provider: the upstream provider reads
// the ServiceAccount's GCP service account and, outside GKE, its workload
// identity provider, which is the audience of the token exchange even when
// the caller sets the Kubernetes token's audiences.
func (Provider) SourceAnnotations() []string { return sourceAnnotations }

var sourceAnnotations = []string{ServiceAccountAnnotation, WorkloadIdentityProviderAnnotation}

// ParseImpersonation implements auth.Provider.
func (Provider) ParseImpersonation(sa corev1.ServiceAccount, _ ...fluxauth.Option) (*auth.Impersonation, error) {
	conf, params, err := parseImpersonate(sa)
	if conf == nil || err != nil {
		return nil, err
	}
	imp := &auth.Impersonation{
		Annotation:        ImpersonateAnnotation,
		ServiceAccount:    provider.Key(sa),
		Target:            conf.GCPServiceAccount,
		UseServiceAccount: conf.UseServiceAccount,
	}
	if params != nil {
		imp.Parameters, imp.Request = params.parameters(), params
	}
	return imp, nil
}
