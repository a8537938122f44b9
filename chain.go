package auth

import (
	"context"
	"fmt"
	"strings"

	fluxauth "github.com/fluxcd/pkg/auth"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth/internal/quote"
)

// SourceKind says where the source credentials of a chain come from.
type SourceKind string

const (
	// SourceController is the controller pod's own identity: EKS Pod
	// Identity, IRSA, GKE workload identity, Azure workload identity.
	SourceController SourceKind = "controller"
	// SourceServiceAccount is the object's ServiceAccount: its Kubernetes
	// token is exchanged at the cloud's STS (object-level workload identity).
	SourceServiceAccount SourceKind = "service-account"
)

// Source is the first link of a chain.
type Source struct {
	// Kind says whether the controller or a ServiceAccount is the source.
	Kind SourceKind
	// ServiceAccount is set when Kind is SourceServiceAccount.
	ServiceAccount client.ObjectKey
	// Identity is the cloud identity the ServiceAccount's annotation names
	// (e.g. its eks.amazonaws.com/role-arn); empty for the controller and for
	// GCP direct-access federation.
	Identity string
}

// String describes s for people, tenant text quoted: "the controller
// identity", "service account 'ns/name' as 'arn:...'".
func (s Source) String() string {
	switch {
	case s.Kind == SourceController:
		return "the controller identity"
	case s.Identity == "":
		return fmt.Sprintf("service account %s (direct access)", quote.Tenant(s.ServiceAccount.String()))
	default:
		return fmt.Sprintf("service account %s as %s", quote.Tenant(s.ServiceAccount.String()), quote.Tenant(s.Identity))
	}
}

// Chain is the plan for one token: where the source credentials come from
// and, optionally, which identity they impersonate. Plan builds it without
// calling any cloud; Token runs it. A Chain is immutable and safe for
// concurrent use.
type Chain struct {
	// Provider is the provider's name, e.g. "aws".
	Provider string
	// Lockdown reports whether multi-tenancy lockdown was on.
	Lockdown bool
	// DefaultServiceAccountUsed reports whether lockdown substituted the
	// default ServiceAccount because the object named none.
	DefaultServiceAccountUsed bool
	// Source is where the source credentials come from.
	Source Source
	// Impersonation is the hop from the source to the target, or nil.
	Impersonation *Impersonation

	provider       Provider
	opts           *Options
	serviceAccount *corev1.ServiceAccount
	// sourceScopes are the scopes of the source credentials when the
	// provider's impersonation needs its own (see sourceScoper); nil
	// means the caller's.
	sourceScopes []string
}

// Plan reads the ServiceAccount, parses its annotations and applies the
// lockdown rules, and returns the chain GetAccessToken would follow. It makes
// no cloud call, so refusals cost nothing and can be shown to a person.
//
// Its errors, like those of every function of this package that reads a
// ServiceAccount, quote tenant-written text escaped and cut, and stay a few
// KiB at most whatever the annotations hold.
func Plan(ctx context.Context, provider Provider, opts ...Option) (*Chain, error) {
	c, err := plan(ctx, provider, newOptions(opts...))
	if err != nil {
		return nil, quote.Error(err)
	}
	return c, nil
}

func plan(ctx context.Context, provider Provider, o *Options) (*Chain, error) {
	c := &Chain{
		Provider: provider.GetName(),
		Lockdown: o.lockdown(),
		Source:   Source{Kind: SourceController},
		provider: provider,
		opts:     o,
	}

	key := client.ObjectKey{Namespace: o.ServiceAccountNamespace, Name: o.ServiceAccountName}
	if key.Name == "" && c.Lockdown {
		key.Name = o.defaultServiceAccount()
		c.DefaultServiceAccountUsed = true
	}
	if key.Namespace == "" || key.Name == "" {
		return c, nil
	}
	if err := checkObjectLevelGate(key, c.DefaultServiceAccountUsed, c.Lockdown); err != nil {
		return nil, err
	}

	sa, err := getServiceAccount(ctx, o.Client, key, c.DefaultServiceAccountUsed)
	if err != nil {
		return nil, err
	}
	c.serviceAccount = sa

	imp, err := provider.ParseImpersonation(*sa, o.fluxOptions()...)
	if err != nil {
		return nil, err
	}
	useSA := true
	if imp != nil {
		if useSA, err = useServiceAccount(imp, *sa, provider.IdentityAnnotation(), c.Lockdown); err != nil {
			return nil, err
		}
		c.Impersonation = imp
		if s, ok := provider.(sourceScoper); ok {
			c.sourceScopes = s.SourceScopes(*imp)
		}
	}
	if useSA {
		identity, err := provider.GetIdentity(*sa)
		if err != nil {
			err = fmt.Errorf("failed to get provider identity from service account %s annotations: %w", quote.Tenant(key.String()), err)
			if imp != nil && imp.UseServiceAccount == nil && c.Lockdown {
				// The annotation alone looks like controller-level
				// impersonation; say why the ServiceAccount is the source.
				err = fmt.Errorf("%w (under multi-tenancy lockdown the service account, not the controller, "+
					"is the source of %s)", err, imp.Annotation)
			}
			return nil, err
		}
		c.Source = Source{Kind: SourceServiceAccount, ServiceAccount: key, Identity: identity}
	}
	if err := c.applyPolicy(); err != nil {
		return nil, err
	}
	return c, nil
}

// applyPolicy refuses the chain's impersonation when the operator's policy
// allows it by no rule, and otherwise records what the policy adds to the
// session. A chain without impersonation is not the policy's business.
func (c *Chain) applyPolicy() error {
	p := c.opts.Policy
	if p == nil || c.Impersonation == nil {
		return nil
	}
	if err := p.check(c); err != nil {
		c.opts.TokenCache.countPolicyDenial(c.Impersonation.ServiceAccount.Namespace)
		return err
	}
	a := p.Attribution()
	c.Impersonation.Attribution = a
	if at, ok := c.provider.(attributor); ok {
		return at.Attribute(c.Impersonation, a)
	}
	return nil
}

// attributor is implemented by the providers whose sessions can carry what
// the operator's policy asks for to name the tenant (aws.Provider).
type attributor interface {
	Attribute(imp *Impersonation, a Attribution) error
}

// checkObjectLevelGate refuses every ServiceAccount while the upstream
// ObjectLevelWorkloadIdentity feature gate is off, as upstream and the
// proposal do: a ServiceAccount that only asks for controller-level
// impersonation is refused too, so switching a controller to this library
// opens no path that its operator never enabled.
func checkObjectLevelGate(key client.ObjectKey, isDefault, lockdown bool) error {
	if fluxauth.IsObjectLevelWorkloadIdentityEnabled() {
		return nil
	}
	if isDefault {
		return fmt.Errorf("%w: multi-tenancy lockdown uses the default service account %s for an object that "+
			"names none, and any service account needs the gate. start the controller with --feature-gates=%s=true",
			fluxauth.ErrObjectLevelWorkloadIdentityNotEnabled, quote.Tenant(key.String()),
			fluxauth.FeatureGateObjectLevelWorkloadIdentity)
	}
	fix := ", or remove the service account from the object to use the controller identity"
	if lockdown {
		fix = ""
	}
	return fmt.Errorf("%w: the object names service account %s, and any service account needs the gate. "+
		"start the controller with --feature-gates=%s=true%s",
		fluxauth.ErrObjectLevelWorkloadIdentityNotEnabled, quote.Tenant(key.String()),
		fluxauth.FeatureGateObjectLevelWorkloadIdentity, fix)
}

func getServiceAccount(ctx context.Context, c client.Client, key client.ObjectKey, isDefault bool) (*corev1.ServiceAccount, error) {
	if c == nil {
		return nil, fmt.Errorf("failed to get service account %s: no Kubernetes client. pass auth.WithClient", quote.Tenant(key.String()))
	}
	var sa corev1.ServiceAccount
	if err := c.Get(ctx, key, &sa); err != nil {
		if apierrors.IsNotFound(err) && isDefault {
			return nil, fmt.Errorf("failed to get default service account %s: %w. "+
				"create it, or set .spec.serviceAccountName on the object",
				quote.Tenant(key.String()), fluxauth.ErrDefaultServiceAccountNotFound)
		}
		return nil, fmt.Errorf("failed to get service account %s: %w%s", quote.Tenant(key.String()), err,
			rbacHint(err, "get", "serviceaccounts", key.Namespace))
	}
	return &sa, nil
}

// rbacHint says which rule the controller's own ServiceAccount lacks when
// the API server refuses it, or "" for any other error.
func rbacHint(err error, verb, resource, namespace string) string {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Sprintf(". grant the controller %s on %s in namespace %s (a Role or ClusterRole rule "+
			"with verbs [%s] on resources [%s])", verb, resource, quote.Tenant(namespace), verb, resource)
	case verb == "get" && isInformerSyncTimeout(err):
		// A cached client (a manager's GetClient) lists and watches
		// ServiceAccounts through an informer; without the verbs, its
		// cache never syncs and the error says only that.
		return ". the controller reads service accounts through a cached client: grant it list and watch " +
			"on serviceaccounts as well as get (a ClusterRole rule with verbs [get, list, watch] on resources " +
			"[serviceaccounts])"
	}
	return ""
}

func isInformerSyncTimeout(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "failed waiting for") && strings.Contains(msg, "Informer to sync")
}
