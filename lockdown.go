package auth

import (
	"errors"
	"fmt"

	fluxauth "github.com/fluxcd/pkg/auth"
	corev1 "k8s.io/api/core/v1"

	"github.com/identitychain/auth/internal/quote"
)

// ErrLockdownForbidsControllerIdentity is returned when an impersonation
// annotation asks for the controller's identity as the source while
// multi-tenancy lockdown is on. Lockdown isolates tenants by namespace, and
// the controller's identity belongs to no namespace.
var ErrLockdownForbidsControllerIdentity = errors.New(
	"multi-tenancy lockdown forbids impersonation from the controller identity")

// ErrAmbiguousSource is returned when an impersonation annotation says
// useServiceAccount: false while the ServiceAccount also names its own cloud
// identity, so it is unclear which identity should impersonate the target.
var ErrAmbiguousSource = errors.New("ambiguous impersonation source")

// defaultServiceAccount returns the ServiceAccount that lockdown falls back
// to, or "" when lockdown is off. The process-wide upstream settings count
// too, so a controller never loses lockdown by switching to this library.
func (o *Options) defaultServiceAccount() string {
	if o.DefaultServiceAccount != "" {
		return o.DefaultServiceAccount
	}
	if sa := fluxauth.GetDefaultServiceAccount(); sa != "" {
		return sa
	}
	return fluxauth.GetDefaultKubeConfigServiceAccount()
}

// lockdown reports whether multi-tenancy lockdown is on for these options.
func (o *Options) lockdown() bool { return o.defaultServiceAccount() != "" }

// useServiceAccount decides whether the ServiceAccount (true) or the
// controller (false) is the source of an impersonation, or refuses.
func useServiceAccount(imp *Impersonation, sa corev1.ServiceAccount, identityAnnotation string, lockdown bool) (bool, error) {
	if imp.UseServiceAccount == nil {
		return lockdown, nil
	}
	if *imp.UseServiceAccount {
		return true, nil
	}
	if lockdown {
		return false, fmt.Errorf("%w: %s on service account %s sets 'useServiceAccount: false', "+
			"but this controller runs with multi-tenancy lockdown (--default-service-account). "+
			"remove 'useServiceAccount: false' so the service account's own identity is the source",
			ErrLockdownForbidsControllerIdentity, imp.Annotation, quote.Tenant(imp.ServiceAccount.String()))
	}
	if v := sa.Annotations[identityAnnotation]; v != "" {
		return false, fmt.Errorf("%w: %s on service account %s sets 'useServiceAccount: false' "+
			"(the controller identity is the source), but the service account also has %s %s. "+
			"remove %s, or set 'useServiceAccount: true' to impersonate from it",
			ErrAmbiguousSource, imp.Annotation, quote.Tenant(imp.ServiceAccount.String()), identityAnnotation,
			quote.Tenant(v), identityAnnotation)
	}
	return false, nil
}
