package azure

import (
	"context"
	"errors"
	"fmt"

	fluxauth "github.com/fluxcd/pkg/auth"
	corev1 "k8s.io/api/core/v1"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/internal/quote"
)

const (
	// ImpersonateAnnotation is refused: see ErrNoImpersonation.
	ImpersonateAnnotation = "azure.auth.fluxcd.io/impersonate"

	// ClientIDAnnotation and TenantIDAnnotation (upstream) configure
	// workload identity federation.
	ClientIDAnnotation = "azure.workload.identity/client-id"
	TenantIDAnnotation = "azure.workload.identity/tenant-id"
)

// ErrNoImpersonation is returned for the ImpersonateAnnotation: Microsoft
// Entra ID has no STS-style call by which one identity gets a token of
// another.
var ErrNoImpersonation = errors.New("azure has no identity-to-identity impersonation")

// ParseImpersonation implements auth.Provider. Any value of the
// ImpersonateAnnotation is refused with the workload identity federation
// annotations to use instead, filled in for this ServiceAccount.
func (Provider) ParseImpersonation(sa corev1.ServiceAccount, _ ...fluxauth.Option) (*auth.Impersonation, error) {
	if _, ok := sa.Annotations[ImpersonateAnnotation]; !ok {
		return nil, nil
	}
	key := auth.ServiceAccountKey(sa)
	return nil, fmt.Errorf("%w: remove %s from service account %s and use workload identity federation: "+
		"add a federated identity credential for subject 'system:serviceaccount:%s:%s' to the target managed identity "+
		"or app registration, then annotate the service account with %s: <client-id> and %s: <tenant-id>",
		ErrNoImpersonation, ImpersonateAnnotation, quote.Tenant(key.String()), key.Namespace, key.Name, ClientIDAnnotation, TenantIDAnnotation)
}

// SourceAnnotations implements auth.Provider: the upstream provider reads
// the client and tenant IDs, and tells an absent tenant ID from an empty
// one.
func (Provider) SourceAnnotations() []string { return sourceAnnotations }

var sourceAnnotations = []string{ClientIDAnnotation, TenantIDAnnotation}

// IdentityAnnotation implements auth.Provider.
func (Provider) IdentityAnnotation() string { return ClientIDAnnotation }

// Impersonate implements auth.Provider. ParseImpersonation never returns an
// impersonation, so this is reached only by a caller that builds one by hand.
func (Provider) Impersonate(context.Context, fluxauth.Token, auth.Impersonation, ...fluxauth.Option) (fluxauth.Token, error) {
	return nil, ErrNoImpersonation
}
