//go:build integration

// Package integration runs the library against a real kube-apiserver and
// etcd (controller-runtime's envtest): ServiceAccounts are read through the
// API server's authorization, source tokens come from its TokenRequest API,
// and the fake clouds verify them with its published keys. Only the clouds
// are fakes.
//
// Run with `make test`, or build the servers once with
// `make envtest-assets` and then:
//
//	KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh) go test -race -count=1 -tags integration ./test/integration/...
package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	"github.com/go-logr/logr"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/identitychain/auth/fakes"
)

// The suite's API server, started once by TestMain.
var (
	// cfg is the admin (system:masters) client configuration.
	cfg *rest.Config
	// admin is a direct client with cfg, standing in for kubectl.
	admin client.Client
	// controller is a direct client as the controller's identity,
	// flux-system/source-controller, with exactly the minimal RBAC of a
	// controller whose objects name ServiceAccounts.
	controller client.Client
	// issuer trusts the API server's service account tokens: it holds the
	// keys its discovery document names, read through the real API.
	issuer *fakes.Issuer
)

// assetsHelp is what a developer without the servers must do. Without them
// this package fails rather than skips: a skipped suite looks green.
const assetsHelp = "run `make envtest-assets` (it builds kube-apiserver and etcd into a cache " +
	"directory and prints it) and set KUBEBUILDER_ASSETS to that directory, or run `make test`"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if err := checkAssets(os.Getenv("KUBEBUILDER_ASSETS")); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	// Upstream's object-level workload identity is opt-in; the tests of the
	// gate turn it off and back on.
	fluxauth.EnableObjectLevelWorkloadIdentity()
	// controller-runtime complains, with a stack trace, about logs sent
	// before a logger is set; the tests assert on errors, not logs.
	logf.SetLogger(logr.Discard())

	env := &envtest.Environment{ControlPlaneStartTimeout: 2 * time.Minute, ControlPlaneStopTimeout: time.Minute}
	// Without it the API server looks for a default route to find its
	// address, and there is none on a machine with loopback only.
	env.ControlPlane.GetAPIServer().Configure().Set("advertise-address", "127.0.0.1")
	var err error
	if cfg, err = env.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: failed to start kube-apiserver and etcd from %s: %v\n", os.Getenv("KUBEBUILDER_ASSETS"), err)
		_ = env.Stop()
		return 1
	}
	code := func() int {
		defer func() {
			if err := env.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "failed to stop the control plane: %v\n", err)
			}
		}()
		if err := setup(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
			return 1
		}
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: goroutines left behind: %v\n", err)
			return 1
		}
	}
	return code
}

func checkAssets(dir string) error {
	if dir == "" {
		return errors.New("KUBEBUILDER_ASSETS is not set: " + assetsHelp)
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		p := filepath.Join(dir, bin)
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("no executable %s in KUBEBUILDER_ASSETS=%s: %s", bin, dir, assetsHelp)
		}
	}
	return nil
}

// setup makes the clients, the issuer the fake clouds trust, and the
// controller's namespace and identity.
func setup(ctx context.Context) error {
	var err error
	if admin, err = client.New(cfg, client.Options{}); err != nil {
		return fmt.Errorf("failed to create the admin client: %w", err)
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return fmt.Errorf("failed to create an HTTP client for the API server: %w", err)
	}
	defer httpClient.CloseIdleConnections()
	if issuer, err = fakes.DiscoverIssuer(ctx, httpClient, cfg.Host); err != nil {
		return fmt.Errorf("failed to read the API server's service account issuer: %w", err)
	}
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}}); err != nil {
		return fmt.Errorf("failed to create namespace flux-system: %w", err)
	}
	// The controller's own ServiceAccount: its IRSA token is minted for it.
	if err := admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Namespace: "flux-system", Name: "source-controller"}}); err != nil {
		return fmt.Errorf("failed to create the controller's service account: %w", err)
	}
	controllerCfg, err := grant(ctx, "source-controller", minimalRules)
	if err != nil {
		return err
	}
	if controller, err = client.New(controllerCfg, client.Options{}); err != nil {
		return fmt.Errorf("failed to create the controller client: %w", err)
	}
	return nil
}

// newNamespace creates a namespace of the test's own, so that tests
// applying the same manifests run in parallel.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "it-"}}
	if err := admin.Create(context.Background(), ns); err != nil {
		t.Fatalf("failed to create a namespace: %v", err)
	}
	// envtest runs no namespace controller: the namespace stays
	// Terminating, which is harmless for the suite's single run.
	t.Cleanup(func() {
		if err := admin.Delete(context.Background(), ns); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("failed to delete namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// readServiceAccount reads a ServiceAccount manifest of the repository's
// testdata, the same files the unit tests drive, into namespace ns.
func readServiceAccount(t *testing.T, name, ns string) *corev1.ServiceAccount {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var sa corev1.ServiceAccount
	if err := yaml.UnmarshalStrict(b, &sa); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	sa.Namespace = ns
	return &sa
}

// apply creates sa through the API server for the rest of the test.
func apply(t *testing.T, sa *corev1.ServiceAccount) *corev1.ServiceAccount {
	t.Helper()
	sa = sa.DeepCopy()
	if err := admin.Create(context.Background(), sa); err != nil {
		t.Fatalf("failed to create service account %s/%s: %v", sa.Namespace, sa.Name, err)
	}
	t.Cleanup(func() {
		if err := admin.Delete(context.Background(), sa); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("failed to delete service account %s/%s: %v", sa.Namespace, sa.Name, err)
		}
	})
	return sa
}

// applyManifest creates the ServiceAccount of a testdata manifest in ns.
func applyManifest(t *testing.T, name, ns string) *corev1.ServiceAccount {
	t.Helper()
	return apply(t, readServiceAccount(t, name, ns))
}

// setEnv applies env for the rest of the test; such tests cannot be
// parallel: the Google libraries read the metadata server's address from
// the process.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
}
