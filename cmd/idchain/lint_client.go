package main

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// saClient is the Kubernetes client lint plans with: it holds one
// ServiceAccount and answers Get for it, which is all auth.Plan reads. It
// replaces controller-runtime's fake client, whose Build makes a new
// runtime.Scheme each time: 2 ms a ServiceAccount, 95% of lint's time on a
// large repository. Any other call panics on the nil embedded client, so a
// library change that reads more shows in the tests at once.
type saClient struct {
	client.Client
	sa *corev1.ServiceAccount
}

var serviceAccountsResource = schema.GroupResource{Resource: "serviceaccounts"}

// Get copies the ServiceAccount into obj, as the API server would return it,
// or returns the API server's NotFound error.
func (c saClient) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	out, ok := obj.(*corev1.ServiceAccount)
	if !ok {
		return fmt.Errorf("lint reads ServiceAccounts only, not %T", obj)
	}
	if c.sa == nil || key.Namespace != c.sa.Namespace || key.Name != c.sa.Name {
		return apierrors.NewNotFound(serviceAccountsResource, key.Name)
	}
	// A shallow copy: Plan only reads the ServiceAccount, and a deep copy
	// of its maps is a third of a short chain's planning.
	*out = *c.sa
	out.APIVersion, out.Kind = "v1", "ServiceAccount"
	return nil
}
