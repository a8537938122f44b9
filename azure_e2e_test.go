package auth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/fakes"
)

// The Azure cross-tenant world of testdata/azure-impersonate.yaml and
// testdata/azure-object-impersonate.yaml.
const (
	azHomeTenant          = "11111111-1111-4111-8111-111111111111" // the cluster's, with both managed identities
	azTargetTenant        = "22222222-2222-4222-8222-222222222222"
	azTargetDomain        = "contoso.onmicrosoft.com"
	azApp                 = "33333333-3333-4333-8333-333333333333" // multi-tenant, registered in the home tenant
	azControllerMI        = "44444444-4444-4444-8444-444444444444"
	azControllerPrincipal = "55555555-5555-4555-8555-555555555555"
	azMyAppMI             = "66666666-6666-4666-8666-666666666666"
	azMyAppPrincipal      = "77777777-7777-4777-8777-777777777777"

	azExchangeScope = "api://AzureADTokenExchange/.default"
	azARMScope      = "https://management.azure.com/.default"
	azVaultScope    = "https://vault.azure.net/.default"
	azACRScope      = "https://containerregistry.azure.net/.default"
	azAKSScope      = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
	azAKSARMScope   = "https://management.core.windows.net//.default" // upstream's, to describe a cluster
	azRegistry      = "prodregistry.azurecr.io"
	azCluster       = "/subscriptions/aaaaaaaa-0000-4000-8000-000000000001/resourceGroups/prod/providers/" +
		"Microsoft.ContainerService/managedClusters/prod"
)

// ficWorld is a fake Azure where the app registration trusts managed
// identities as federated identity credentials: Entra, an ACR registry and
// an AKS cluster in the target tenant that the app may use, and a provider
// whose controller identity is the AKS workload identity of
// flux-system/source-controller.
type ficWorld struct {
	issuer   *fakes.Issuer
	entra    *fakes.Entra
	acr      *fakes.ACR
	aks      *fakes.AKS
	aksAPI   *fakes.KubeAPIServer
	provider azure.Provider
}

// ficSetup says which of the app's grants a world has.
type ficSetup struct {
	noFederatedCredentials, noConsent bool
}

func newFICWorld(t *testing.T) *ficWorld { return newFICWorldWith(t, ficSetup{}) }

func newFICWorldWith(t *testing.T, s ficSetup) *ficWorld {
	t.Helper()
	issuer, err := fakes.NewIssuer("https://oidc.prod-aks.azure.com/flux-cluster")
	if err != nil {
		t.Fatal(err)
	}
	e := fakes.StartEntra(fakes.EntraOptions{})
	t.Cleanup(e.Close)
	e.AddTenant(azHomeTenant)
	e.AddTenant(azTargetTenant, azTargetDomain)
	e.TrustIssuer(issuer)
	e.AddManagedIdentity(azHomeTenant, azControllerMI, azControllerPrincipal)
	e.AllowFederatedCredential(azControllerMI, issuer.URL(), fakes.ServiceAccountSubject("flux-system", "source-controller"))
	e.AddManagedIdentity(azHomeTenant, azMyAppMI, azMyAppPrincipal)
	e.AllowFederatedCredential(azMyAppMI, issuer.URL(), fakes.ServiceAccountSubject("my-app", "my-app"))
	e.AddApp(azHomeTenant, azApp)
	if !s.noFederatedCredentials {
		e.AllowFederatedCredential(azApp, fakes.EntraIssuer(azHomeTenant), azControllerPrincipal)
		e.AllowFederatedCredential(azApp, fakes.EntraIssuer(azHomeTenant), azMyAppPrincipal)
	}
	if !s.noConsent {
		e.Consent(azApp, azTargetTenant)
	}
	acr := fakes.StartACR(e)
	t.Cleanup(acr.Close)
	acr.AddRegistry(azRegistry, azTargetTenant, azApp)
	aks := fakes.StartAKS(e)
	t.Cleanup(aks.Close)
	api := aks.AddCluster(azCluster, azTargetTenant, azApp)
	impl := e.Implementation().WithController(fakes.AzureWorkloadIdentity{
		Issuer: issuer, Namespace: "flux-system", Name: "source-controller", TenantID: azHomeTenant, ClientID: azControllerMI,
	}).WithACR(acr).WithAKS(aks)
	return &ficWorld{issuer: issuer, entra: e, acr: acr, aks: aks, aksAPI: api, provider: azure.Provider{Implementation: impl}}
}

// whoIs says whose token is, as Entra knows it.
func (w *ficWorld) whoIs(t *testing.T, token any) fakes.EntraToken {
	t.Helper()
	tok, ok := token.(*azure.Token)
	if !ok {
		t.Fatalf("token is %T, want *azure.Token", token)
	}
	who, ok := w.entra.WhoIs(tok.Token)
	if !ok {
		t.Fatal("the returned token was not minted by the fake Entra")
	}
	return who
}

// appIn is the app's service principal in tenant, as Entra's tokens name it.
func (w *ficWorld) appIn(tenant string) string {
	id, _ := w.entra.ServicePrincipalID(azApp, tenant)
	return id
}

// clients lists who asked Entra for which scope, in order: the source
// managed identity for the exchange, then the app.
func (w *ficWorld) clients() [][2]string {
	var out [][2]string
	for _, c := range w.entra.Calls() {
		out = append(out, [2]string{c.ClientID, c.Scopes[0]})
	}
	return out
}

func lockdownName(on bool) string {
	return map[bool]string{false: "lockdown off", true: "lockdown on"}[on]
}

// The controller's managed identity is the source: the app's token comes
// from the target tenant for the caller's scope. Under lockdown the same
// manifest makes the ServiceAccount the source, which names no managed
// identity: refused before any call.
func TestAzureControllerFICImpersonate(t *testing.T) {
	for _, lockdown := range []bool{false, true} {
		t.Run(lockdownName(lockdown), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := newFICWorld(t)
			kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "azure-impersonate.yaml"))
			extra := []auth.Option{auth.WithScopes(azARMScope)}
			if lockdown {
				extra = append(extra, auth.WithDefaultServiceAccount("default"))
			}

			token, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube, extra...)...)

			if lockdown {
				g.Expect(err).To(MatchError(azure.ErrNoServiceAccountIdentity))
				g.Expect(err).To(MatchError("failed to get provider identity from service account 'my-app/my-app' " +
					"annotations: the service account names no managed identity: add azure.workload.identity/client-id " +
					"and azure.workload.identity/tenant-id with the managed identity the service account's token is " +
					"exchanged for (under multi-tenancy lockdown the service account, not the controller, is the source " +
					"of azure.auth.fluxcd.io/impersonate)"))
				g.Expect(w.entra.Attempts()).To(BeZero())
				g.Expect(kube.TokenRequests()).To(BeZero())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			who := w.whoIs(t, token)
			g.Expect(who.ClientID).To(Equal(azApp))
			g.Expect(who.TenantID).To(Equal(azTargetTenant))
			g.Expect(who.Audience).To(Equal("https://management.azure.com"))
			calls := w.entra.Calls()
			g.Expect(calls).To(Equal([]fakes.EntraCall{
				{Tenant: azHomeTenant, ClientID: azControllerMI, Scopes: []string{azExchangeScope},
					AssertionIssuer: w.issuer.URL(), AssertionSubject: "system:serviceaccount:flux-system:source-controller"},
				{Tenant: azTargetTenant, ClientID: azApp, Scopes: []string{azARMScope},
					AssertionIssuer: fakes.EntraIssuer(azHomeTenant), AssertionSubject: azControllerPrincipal},
			}))
			g.Expect(kube.TokenRequests()).To(BeZero())
		})
	}
}

// The ServiceAccount's managed identity is the source, with and without
// lockdown; the controller's is never asked for.
func TestAzureObjectLevelFICImpersonate(t *testing.T) {
	for _, lockdown := range []bool{false, true} {
		t.Run(lockdownName(lockdown), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := newFICWorld(t)
			kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "azure-object-impersonate.yaml"))
			extra := []auth.Option{auth.WithScopes(azVaultScope)}
			if lockdown {
				extra = append(extra, auth.WithDefaultServiceAccount("default"))
			}

			token, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube, extra...)...)

			g.Expect(err).NotTo(HaveOccurred())
			who := w.whoIs(t, token)
			g.Expect(who.ClientID).To(Equal(azApp))
			g.Expect(who.TenantID).To(Equal(azTargetTenant), "the verified domain names the target tenant")
			g.Expect(who.Audience).To(Equal("https://vault.azure.net"))
			g.Expect(w.entra.Calls()).To(Equal([]fakes.EntraCall{
				{Tenant: azHomeTenant, ClientID: azMyAppMI, Scopes: []string{azExchangeScope},
					AssertionIssuer: w.issuer.URL(), AssertionSubject: "system:serviceaccount:my-app:my-app"},
				{Tenant: azTargetTenant, ClientID: azApp, Scopes: []string{azVaultScope},
					AssertionIssuer: fakes.EntraIssuer(azHomeTenant), AssertionSubject: azMyAppPrincipal},
			}))
			g.Expect(kube.TokenRequests()).To(Equal(int64(1)))
		})
	}
}

// The Azure rows of the lockdown table that refuse.
func TestAzureFICLockdownRefusals(t *testing.T) {
	const target = "clientID: " + azApp + "\ntenantID: " + azTargetTenant + "\nuseServiceAccount: false"
	withMI := sa("app", map[string]string{
		azure.ClientIDAnnotation: azMyAppMI, azure.TenantIDAnnotation: azHomeTenant, azure.ImpersonateAnnotation: target,
	})
	controllerOnly := sa("app", map[string]string{azure.ImpersonateAnnotation: target})
	for _, tt := range []struct {
		name     string
		lockdown bool
		sa       *corev1.ServiceAccount
		wantErr  error
	}{
		{"useServiceAccount false with client-id: ambiguous", false, withMI, auth.ErrAmbiguousSource},
		{"useServiceAccount false with client-id: refused", true, withMI, auth.ErrLockdownForbidsControllerIdentity},
		{"useServiceAccount false: refused", true, controllerOnly, auth.ErrLockdownForbidsControllerIdentity},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := newFICWorld(t)
			kube := fakes.NewKubeClient(w.issuer, tt.sa.DeepCopy()) // the fake client writes to it
			opts := []auth.Option{auth.WithClient(kube), auth.WithServiceAccountNamespace("my-app"),
				auth.WithServiceAccountName("app"), auth.WithScopes(azARMScope)}
			if tt.lockdown {
				opts = append(opts, auth.WithDefaultServiceAccount("default"))
			}
			_, err := auth.GetAccessToken(context.Background(), w.provider, opts...)
			g.Expect(err).To(MatchError(tt.wantErr))
			g.Expect(w.entra.Attempts()).To(BeZero())
			g.Expect(kube.TokenRequests()).To(BeZero())
		})
	}
}

// Entra's refusals reach the caller through the chain saying what to
// create or grant, pinned word for word.
func TestAzureFICEntraRefusals(t *testing.T) {
	const (
		controllerHop = "failed to get azure credentials of '" + azApp + "' impersonated from the controller identity: "
		objectSource  = "service account 'my-app/my-app' as '" + azHomeTenant + "/" + azMyAppMI + "'"
	)
	for _, tt := range []struct {
		name     string
		setup    ficSetup
		manifest string
		noMIFIC  bool
		wantErr  string
		sentinel error
	}{
		{
			name: "the app trusts no managed identity", setup: ficSetup{noFederatedCredentials: true},
			manifest: "azure-impersonate.yaml", sentinel: azure.ErrNoFederatedCredential,
			wantErr: controllerHop + "entra token request for app '" + azApp + "' in tenant '" + azTargetTenant + "': " +
				"HTTP 401: AADSTS70021: No matching federated identity record found for presented assertion. no " +
				"federated identity credential trusts the source identity: add one to app registration '" + azApp +
				"' with issuer 'https://login.microsoftonline.com/" + azHomeTenant + "/v2.0', subject '" +
				azControllerPrincipal + "' (the principal ID of the source managed identity) and audience " +
				"'api://AzureADTokenExchange'",
		},
		{
			name: "no admin consent in the target tenant", setup: ficSetup{noConsent: true},
			manifest: "azure-object-impersonate.yaml", sentinel: azure.ErrAppNotInTenant,
			wantErr: "failed to get azure credentials of '" + azApp + "' impersonated from " + objectSource + ": " +
				"entra token request for app '" + azApp + "' in tenant '" + azTargetDomain + "': HTTP 400: " +
				"AADSTS700016: Application with identifier '" + azApp + "' was not found in the directory '" +
				azTargetTenant + "'. the app has no service principal in the target tenant: check the annotation's " +
				"clientID; if it is right, an administrator of tenant '" + azTargetDomain + "' grants the app admin " +
				"consent ('az ad sp create --id " + azApp + "', signed in to that tenant), and the app registration " +
				"must be multi-tenant",
		},
		{
			name: "the ServiceAccount's managed identity does not trust it", noMIFIC: true,
			manifest: "azure-object-impersonate.yaml", sentinel: azure.ErrNoFederatedCredential,
			wantErr: "failed to get azure credentials of '" + azApp + "' impersonated from " + objectSource + ": " +
				"failed to get azure source credentials of " + objectSource + ": failed to exchange the " +
				"kubernetes token: HTTP 401: AADSTS700213: No matching federated identity record found for presented " +
				"assertion subject 'system:serviceaccount:my-app:my-app'. no federated identity credential trusts the " +
				"source identity: add one to managed identity '" + azMyAppMI + "' with issuer " +
				"'https://oidc.prod-aks.azure.com/flux-cluster', subject 'system:serviceaccount:my-app:my-app' (the " +
				"Kubernetes service account) and audience 'api://AzureADTokenExchange'",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := newFICWorldWith(t, tt.setup)
			sa := loadServiceAccount(t, tt.manifest)
			if tt.noMIFIC {
				sa.Annotations[azure.ClientIDAnnotation] = "88888888-8888-4888-8888-888888888888"
				w.entra.AddManagedIdentity(azHomeTenant, "88888888-8888-4888-8888-888888888888",
					"99999999-9999-4999-8999-999999999999")
				w.entra.AllowFederatedCredential("88888888-8888-4888-8888-888888888888", w.issuer.URL(),
					"system:serviceaccount:other:other")
				tt.wantErr = strings.ReplaceAll(tt.wantErr, azMyAppMI, "88888888-8888-4888-8888-888888888888")
			}
			kube := fakes.NewKubeClient(w.issuer, sa)

			_, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube, auth.WithScopes(azARMScope))...)

			g.Expect(err).To(MatchError(tt.wantErr))
			g.Expect(err).To(MatchError(tt.sentinel))
		})
	}
}

// ACR registry credentials are the app's in the target tenant: the ACR
// scope goes to the app's hop, the source stays the exchange.
func TestAzureFICRegistryLogin(t *testing.T) {
	for _, manifest := range []string{"azure-impersonate.yaml", "azure-object-impersonate.yaml"} {
		t.Run(manifest, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := newFICWorld(t)
			kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, manifest))

			creds, err := auth.GetArtifactRegistryCredentials(context.Background(), w.provider,
				azRegistry+"/charts/podinfo", myAppOptions(kube)...)

			g.Expect(err).NotTo(HaveOccurred())
			login, err := creds.Authorization()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(login.Username).To(Equal("00000000-0000-0000-0000-000000000000"))
			who, ok := w.acr.WhoIs(login.Password)
			g.Expect(ok).To(BeTrue())
			g.Expect(who.ClientID).To(Equal(azApp))
			g.Expect(who.TenantID).To(Equal(azTargetTenant))
			calls := w.clients()
			g.Expect(calls).To(HaveLen(2))
			g.Expect(calls[0][1]).To(Equal(azExchangeScope))
			g.Expect(calls[1]).To(Equal([2]string{azApp, azACRScope}))
			g.Expect(w.acr.Calls()).To(Equal([]fakes.ACRCall{{Service: azRegistry, TenantID: azTargetTenant, ClientID: azApp}}))
		})
	}
}

// An AKS REST config is the app's: the cluster is described with the app's
// ARM token and used with its AKS token, both from one source exchange
// when a TokenCache holds the source.
func TestAzureFICRESTConfig(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := newFICWorld(t)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "azure-impersonate.yaml"))
	tc, err := auth.NewTokenCache(10)
	g.Expect(err).NotTo(HaveOccurred())

	conf, err := auth.GetRESTConfig(context.Background(), w.provider, myAppOptions(kube,
		auth.WithClusterResource(azCluster), auth.WithTokenCache(tc, cache.InvolvedObject{Kind: "Kustomization"}))...)

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(conf.Host).To(Equal(w.aksAPI.URL))
	user, err := clusterWhoAmI(t, conf)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(user.Username).To(Equal(w.appIn(azTargetTenant)))
	g.Expect(w.clients()).To(Equal([][2]string{
		{azControllerMI, azExchangeScope}, {azApp, azAKSScope}, {azApp, azAKSARMScope},
	}))
	g.Expect(w.aks.Calls()).To(Equal([]fakes.AKSCall{
		{Cluster: azCluster, Operation: "get", TenantID: azTargetTenant, ClientID: azApp},
		{Cluster: azCluster, Operation: "listClusterUserCredential", TenantID: azTargetTenant, ClientID: azApp},
	}))
}

// The app's tokens are cached per scope: the source's key holds the
// exchange scope, so the caller's must be in the target's. One source
// exchange serves every scope.
func TestAzureFICCacheKeysByScope(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := newFICWorld(t)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "azure-impersonate.yaml"))
	tc, err := auth.NewTokenCache(10)
	g.Expect(err).NotTo(HaveOccurred())
	get := func(scope string) fakes.EntraToken {
		token, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube,
			auth.WithScopes(scope), auth.WithTokenCache(tc, cache.InvolvedObject{Kind: "Bucket"}))...)
		g.Expect(err).NotTo(HaveOccurred())
		return w.whoIs(t, token)
	}

	g.Expect(get(azARMScope).Audience).To(Equal("https://management.azure.com"))
	g.Expect(get(azVaultScope).Audience).To(Equal("https://vault.azure.net"))
	g.Expect(get(azARMScope).Audience).To(Equal("https://management.azure.com"))
	g.Expect(w.clients()).To(Equal([][2]string{
		{azControllerMI, azExchangeScope}, {azApp, azARMScope}, {azApp, azVaultScope},
	}))
}

// The SDK adapter follows the chain: an Azure SDK client's credential is
// the app's in the target tenant, for the scopes the client asks.
func TestAzureFICTokenCredential(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := newFICWorld(t)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "azure-object-impersonate.yaml"))
	cred := w.provider.NewTokenCredential(context.Background(), myAppOptions(kube)...)

	token, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{azVaultScope}})

	g.Expect(err).NotTo(HaveOccurred())
	who, ok := w.entra.WhoIs(token.Token)
	g.Expect(ok).To(BeTrue())
	g.Expect([]string{who.ClientID, who.TenantID, who.Audience}).To(Equal(
		[]string{azApp, azTargetTenant, "https://vault.azure.net"}))
}
