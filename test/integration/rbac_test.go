//go:build integration

package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/identitychain/auth"
)

// A grant is one verb on one resource, "<verb> <resource>[/<subresource>]".
const (
	getSA       = "get serviceaccounts"
	listSA      = "list serviceaccounts"
	watchSA     = "watch serviceaccounts"
	createToken = "create serviceaccounts/token"
)

// minimalRules is all a controller with a direct client needs: read the
// object's ServiceAccount, and mint its token when it is the source.
var minimalRules = []string{getSA, createToken}

// grant gives the controller identity flux-system/<name> exactly grants,
// cluster-wide as Flux controllers have them, and returns a client
// configuration that acts as it (impersonation by the admin), once the API
// server's authorizer allows each grant.
func grant(ctx context.Context, name string, grants []string) (*rest.Config, error) {
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "identitychain:" + name}}
	for _, gr := range grants {
		verb, resource, _ := strings.Cut(gr, " ")
		role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{resource}, Verbs: []string{verb}})
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "flux-system", Name: name}},
	}
	for _, obj := range []client.Object{role, binding} {
		if err := admin.Create(ctx, obj); err != nil {
			return nil, fmt.Errorf("failed to grant %v to %s: %w", grants, name, err)
		}
	}
	user := "system:serviceaccount:flux-system:" + name
	// RBAC reaches the authorizer through its informers: wait until every
	// grant is in force, so that what a test sees is the grants' effect.
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, gr := range grants {
			verb, resource, _ := strings.Cut(gr, " ")
			resource, sub, _ := strings.Cut(resource, "/")
			sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
				User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:flux-system", "system:authenticated"},
				ResourceAttributes: &authzv1.ResourceAttributes{Namespace: "default", Verb: verb, Resource: resource, Subresource: sub},
			}}
			if err := admin.Create(ctx, sar); err != nil {
				return false, err
			}
			if !sar.Status.Allowed {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("grants %v to %s not in force: %w", grants, name, err)
	}
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user}
	return c, nil
}

// without returns grants less one.
func without(grants []string, drop string) []string {
	var out []string
	for _, g := range grants {
		if g != drop {
			out = append(out, g)
		}
	}
	return out
}

// cachedClient is what a controller's mgr.GetClient() is: reads from an
// informer cache that the manager fills with list and watch. It returns
// once the manager runs its runnables, as a reconciler would: a client used
// earlier may add an informer that the manager's start then waits for, so
// that the manager never starts, nor stops, if that informer cannot sync.
func cachedClient(t *testing.T, c *rest.Config) client.Client {
	t.Helper()
	mgr, err := manager.New(c, manager.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	running := make(chan struct{})
	err = mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		close(running)
		<-ctx.Done()
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("manager: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("the manager did not stop within a minute")
		}
	})
	select {
	case <-running:
	case err := <-done:
		t.Fatalf("the manager stopped before it ran: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the manager did not start within a minute")
	}
	return mgr.GetClient()
}

// TestControllerRBAC gives the controller exactly the minimal RBAC, shows
// that it works, then takes each grant away in turn: each refusal must say
// what to grant. The object names my-app, which the fake AWS trusts both as
// a source (aws-object-irsa.yaml) and as a target through the controller
// (aws-pod-identity.yaml). Each row is its own controller identity, so the
// rows run in parallel.
func TestControllerRBAC(t *testing.T) {
	t.Parallel()
	cached := []string{getSA, listSA, watchSA, createToken}
	for i, tt := range []struct {
		name     string
		manifest string
		cached   bool
		grants   []string
		// timeout bounds the call: a cached client whose informer cannot
		// sync waits until the context ends.
		timeout  time.Duration
		wantErr  string // the error the library returns, up to any hint
		wantHint string // what the library adds: the rule to grant
	}{
		{name: "SA source, direct client: get and create token suffice",
			manifest: "aws-object-irsa.yaml", grants: minimalRules},
		{name: "controller source, direct client: get suffices",
			manifest: "aws-pod-identity.yaml", grants: []string{getSA}},
		{name: "SA source, direct client without get",
			manifest: "aws-object-irsa.yaml", grants: without(minimalRules, getSA),
			wantErr: `failed to get service account 'NS/my-app': serviceaccounts "my-app" is forbidden: ` +
				`User "system:serviceaccount:flux-system:rbac-2" cannot get resource "serviceaccounts" in API group "" in the namespace "NS"`,
			wantHint: "grant the controller get on serviceaccounts"},
		{name: "SA source, direct client without create token",
			manifest: "aws-object-irsa.yaml", grants: without(minimalRules, createToken),
			wantErr: "failed to get aws credentials of '" + targetRole + "' impersonated from service account 'NS/my-app' as '" +
				sourceRole + "' in region 'us-east-1': failed to get aws source credentials of service account 'NS/my-app' as '" +
				sourceRole + "' in region 'us-east-1': failed to create a kubernetes token for service account 'NS/my-app': " +
				`serviceaccounts "my-app" is forbidden: User "system:serviceaccount:flux-system:rbac-3" ` +
				`cannot create resource "serviceaccounts/token" in API group "" in the namespace "NS"`,
			wantHint: "create on serviceaccounts/token"},
		{name: "SA source, cached client: get, list, watch and create token suffice",
			manifest: "aws-object-irsa.yaml", cached: true, grants: cached},
		// A cached client reads through an informer: list and watch, never
		// get. Either alone still fills the cache with client-go v0.36: a
		// watch streams the initial list (WatchListClient), and a failing
		// watch makes the reflector list again and again.
		{name: "SA source, cached client without get",
			manifest: "aws-object-irsa.yaml", cached: true, grants: without(cached, getSA)},
		{name: "SA source, cached client without list",
			manifest: "aws-object-irsa.yaml", cached: true, grants: without(cached, listSA)},
		{name: "SA source, cached client without watch",
			manifest: "aws-object-irsa.yaml", cached: true, grants: without(cached, watchSA)},
		{name: "SA source, cached client without list and watch",
			manifest: "aws-object-irsa.yaml", cached: true, grants: []string{getSA, createToken}, timeout: 5 * time.Second,
			wantErr:  "failed to get service account 'NS/my-app': Timeout: failed waiting for *v1.ServiceAccount Informer to sync",
			wantHint: "list and watch on serviceaccounts"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns := newNamespace(t)
			w := newAWSWorld(t)
			w.sts.AllowAssumeRole(controllerRole, targetRole)
			w.sts.AllowWebIdentity(sourceRole, ns, "my-app")
			w.sts.AllowAssumeRole(sourceRole, targetRole)
			applyManifest(t, tt.manifest, ns)

			c, err := grant(context.Background(), fmt.Sprintf("rbac-%d", i), tt.grants)
			g.Expect(err).NotTo(HaveOccurred())
			var kube client.Client
			if tt.cached {
				kube = cachedClient(t, c)
			} else {
				kube, err = client.New(c, client.Options{})
				g.Expect(err).NotTo(HaveOccurred())
			}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = time.Minute
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()

			token, err := auth.GetAccessToken(ctx, w.provider, auth.WithClient(kube),
				auth.WithServiceAccountNamespace(ns), auth.WithServiceAccountName("my-app"),
				auth.WithSTSRegion(region))

			t.Logf("error: %v", err)
			if tt.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(w.whoAmI(t, token)).To(Equal(targetSession(ns)))
				return
			}
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(HavePrefix(strings.ReplaceAll(tt.wantErr, "NS", ns)))
			if tt.wantHint != "" {
				g.Expect(err.Error()).To(ContainSubstring(tt.wantHint))
			}
		})
	}
}
