package fakes_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

const (
	homeTenant   = "11111111-1111-4111-8111-111111111111"
	targetTenant = "22222222-2222-4222-8222-222222222222"
	appID        = "33333333-3333-4333-8333-333333333333"
	miClientID   = "44444444-4444-4444-8444-444444444444"
	miPrincipal  = "55555555-5555-4555-8555-555555555555"
	exchange     = fakes.EntraTokenExchangeAudience + "/.default"
	armScope     = "https://management.core.windows.net//.default"
)

// entraWorld is a home tenant with a managed identity that a Kubernetes
// ServiceAccount federates to, and a multi-tenant app trusting the managed
// identity, consented in a target tenant with a verified domain.
type entraWorld struct {
	entra  *fakes.Entra
	issuer *fakes.Issuer
	impl   *fakes.AzureImplementation
}

func newEntraWorld(t *testing.T) *entraWorld {
	t.Helper()
	issuer, err := fakes.NewIssuer("https://oidc.prod-aks.azure.com/cluster")
	if err != nil {
		t.Fatal(err)
	}
	e := fakes.StartEntra(fakes.EntraOptions{})
	t.Cleanup(e.Close)
	e.AddTenant(homeTenant)
	e.AddTenant(targetTenant, "contoso.onmicrosoft.com")
	e.AddManagedIdentity(homeTenant, miClientID, miPrincipal)
	e.AllowFederatedCredential(miClientID, issuer.URL(), fakes.ServiceAccountSubject("flux-system", "source-controller"))
	e.TrustIssuer(issuer)
	e.AddApp(homeTenant, appID)
	e.AllowFederatedCredential(appID, fakes.EntraIssuer(homeTenant), miPrincipal)
	e.Consent(appID, targetTenant)
	return &entraWorld{entra: e, issuer: issuer, impl: e.Implementation().WithController(fakes.AzureWorkloadIdentity{
		Issuer: issuer, Namespace: "flux-system", Name: "source-controller", TenantID: homeTenant, ClientID: miClientID,
	})}
}

// managedIdentityToken is the controller's managed identity's token for
// the exchange, through the real azidentity and the fake's federation.
func (w *entraWorld) managedIdentityToken(t *testing.T, hc *http.Client) string {
	t.Helper()
	cred, err := w.impl.NewDefaultAzureCredentialWithoutShellOut(&azidentity.DefaultAzureCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: hc}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{exchange}})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

// appToken asks for the app's token in tenant with assertion, through the
// real azidentity.
func (w *entraWorld) appToken(hc *http.Client, tenant, clientID, assertion string, scopes ...string) (azcore.AccessToken, error) {
	cred, err := w.impl.NewClientAssertionCredential(tenant, clientID,
		func(context.Context) (string, error) { return assertion, nil },
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: hc}})
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: scopes})
}

// The whole hop through the real SDK: the ServiceAccount's token federates
// to the managed identity, whose token is the assertion of the app in the
// target tenant, by ID and by verified domain.
func TestEntraManagedIdentityAsFederatedCredential(t *testing.T) {
	t.Parallel()
	for _, tenant := range []string{targetTenant, "Contoso.onmicrosoft.com"} {
		t.Run(tenant, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := newEntraWorld(t)

			mi := w.managedIdentityToken(t, nil)
			who, ok := w.entra.WhoIs(mi)
			g.Expect(ok).To(BeTrue())
			g.Expect(who.ClientID).To(Equal(miClientID))
			g.Expect(who.ObjectID).To(Equal(miPrincipal))
			g.Expect(who.TenantID).To(Equal(homeTenant))
			g.Expect(who.Audience).To(Equal(fakes.EntraTokenExchangeAudience))
			g.Expect(who.ManagedIdentity).To(BeTrue())

			tok, err := w.appToken(nil, tenant, appID, mi, armScope)
			g.Expect(err).NotTo(HaveOccurred())
			who, ok = w.entra.WhoIs(tok.Token)
			g.Expect(ok).To(BeTrue())
			sp, _ := w.entra.ServicePrincipalID(appID, targetTenant)
			g.Expect(who).To(Equal(fakes.EntraToken{TenantID: targetTenant, ClientID: appID, ObjectID: sp,
				Audience: "https://management.core.windows.net/", Scopes: []string{armScope}, Expiry: who.Expiry}))
			g.Expect(tok.ExpiresOn).To(BeTemporally("~", who.Expiry, 2*time.Second))

			calls := w.entra.Calls()
			g.Expect(calls).To(HaveLen(2))
			g.Expect(calls[0]).To(Equal(fakes.EntraCall{Tenant: homeTenant, ClientID: miClientID, Scopes: []string{exchange},
				AssertionIssuer: w.issuer.URL(), AssertionSubject: "system:serviceaccount:flux-system:source-controller"}))
			// MSAL asks the token endpoint of the tenant's OpenID
			// configuration, which names it by ID.
			g.Expect(calls[1]).To(Equal(fakes.EntraCall{Tenant: targetTenant, ClientID: appID, Scopes: []string{armScope},
				AssertionIssuer: fakes.EntraIssuer(homeTenant), AssertionSubject: miPrincipal}))
		})
	}
}

// entraRefusal returns the AADSTS code and the first line of Entra's
// description from a refusal the real SDK reports.
func entraRefusal(t *testing.T, err error) (code, message string) {
	t.Helper()
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil {
		t.Fatalf("want an AuthenticationFailedError with Entra's reply, got %v", err)
	}
	body, err := runtime.Payload(afe.RawResponse)
	if err != nil {
		t.Fatal(err)
	}
	var reply struct {
		Description string `json:"error_description"`
		Codes       []int  `json:"error_codes"`
	}
	if err := json.Unmarshal(body, &reply); err != nil || len(reply.Codes) != 1 {
		t.Fatalf("reply %q is not Entra's error", body)
	}
	line, _, _ := strings.Cut(reply.Description, "\r\n")
	code, _, _ = strings.Cut(line, ":")
	return code, line
}

// Each refusal has Entra's code and wording, and is recorded.
func TestEntraRefusals(t *testing.T) {
	t.Parallel()
	const (
		otherTenant = "66666666-6666-4666-8666-666666666666"
		lonelyApp   = "77777777-7777-4777-8777-777777777777"
		help        = "Please check your federated identity credential Subject, Audience and Issuer against the " +
			"presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
	)
	for _, tt := range []struct {
		name      string
		setup     func(w *entraWorld)
		tenant    string
		clientID  string
		assertion func(t *testing.T, w *entraWorld) string // the managed identity's exchange token without it
		scopes    []string
		want      string
	}{
		{name: "unknown tenant", tenant: "nowhere.example.com", want: "AADSTS90002: Tenant 'nowhere.example.com' not " +
			"found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check " +
			"with your subscription administrator, this may happen if there are no active subscriptions for the tenant."},
		{name: "no consent in the tenant", tenant: otherTenant,
			want: "AADSTS700016: Application with identifier '" + appID + "' was not found in the directory '" +
				otherTenant + "'. This can happen if the application has not been installed by the administrator of " +
				"the tenant or consented to by any user in the tenant. You may have sent your authentication request " +
				"to the wrong tenant."},
		{name: "a managed identity outside its tenant", clientID: miClientID,
			want: "AADSTS700016: Application with identifier '" + miClientID + "' was not found in the directory '" +
				targetTenant + "'. This can happen if the application has not been installed by the administrator of " +
				"the tenant or consented to by any user in the tenant. You may have sent your authentication request " +
				"to the wrong tenant."},
		{name: "an app without federated credentials", clientID: lonelyApp,
			setup: func(w *entraWorld) { w.entra.AddApp(homeTenant, lonelyApp); w.entra.Consent(lonelyApp, targetTenant) },
			want: "AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: '" +
				fakes.EntraIssuer(homeTenant) + "'. Assertion Subject: '" + miPrincipal + "'. Assertion Audience: '" +
				fakes.EntraTokenExchangeAudience + "'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"},
		{name: "issuer of another tenant", clientID: lonelyApp,
			setup: func(w *entraWorld) {
				w.entra.AddApp(homeTenant, lonelyApp)
				w.entra.Consent(lonelyApp, targetTenant)
				w.entra.AllowFederatedCredential(lonelyApp, fakes.EntraIssuer(otherTenant), miPrincipal)
			},
			want: "AADSTS700211: No matching federated identity record found for presented assertion issuer '" +
				fakes.EntraIssuer(homeTenant) + "'. " + help},
		{name: "another subject", clientID: lonelyApp,
			setup: func(w *entraWorld) {
				w.entra.AddApp(homeTenant, lonelyApp)
				w.entra.Consent(lonelyApp, targetTenant)
				w.entra.AllowFederatedCredential(lonelyApp, fakes.EntraIssuer(homeTenant), otherTenant)
			},
			want: "AADSTS700213: No matching federated identity record found for presented assertion subject '" +
				miPrincipal + "'. " + help},
		{name: "the managed identity's token for another audience",
			assertion: func(_ *testing.T, w *entraWorld) string {
				token, _ := w.entra.IssueToken(homeTenant, miClientID, armScope)
				return token
			},
			want: "AADSTS700212: No matching federated identity record found for presented assertion audience " +
				"'https://management.core.windows.net/'. " + help},
		{name: "not a JWT", assertion: func(*testing.T, *entraWorld) string { return "not-a-jwt" },
			want: "AADSTS50027: JWT token is invalid or malformed."},
		{name: "an Entra token Entra did not mint",
			assertion: func(t *testing.T, w *entraWorld) string {
				forger := newEntraWorld(t) // same tenant and identity, another signing key
				token, _ := forger.entra.IssueToken(homeTenant, miClientID, exchange)
				return token
			},
			want: "AADSTS700027: Client assertion failed signature validation."},
		{name: "a Kubernetes token of another issuer's key", clientID: miClientID, tenant: homeTenant,
			assertion: func(t *testing.T, w *entraWorld) string {
				impostor, err := fakes.NewIssuer(w.issuer.URL())
				if err != nil {
					t.Fatal(err)
				}
				token, _ := impostor.Sign("flux-system", "source-controller", []string{fakes.EntraTokenExchangeAudience}, time.Hour)
				return token
			},
			want: "AADSTS700027: Client assertion failed signature validation."},
		{name: "a Kubernetes token of an untrusted issuer", clientID: miClientID, tenant: homeTenant,
			setup: func(w *entraWorld) {
				w.entra.AllowFederatedCredential(miClientID, "https://elsewhere.example.com", "system:serviceaccount:a:b")
			},
			assertion: func(t *testing.T, w *entraWorld) string {
				other, err := fakes.NewIssuer("https://elsewhere.example.com")
				if err != nil {
					t.Fatal(err)
				}
				token, _ := other.Sign("a", "b", []string{fakes.EntraTokenExchangeAudience}, time.Hour)
				return token
			},
			want: "AADSTS90061: Request to External OIDC endpoint failed."},
		{name: "a scope without /.default", scopes: []string{"https://management.azure.com/user_impersonation"},
			want: "AADSTS1002012: The provided value for scope https://management.azure.com/user_impersonation is not " +
				"valid. Client credential flows must have a scope value with /.default suffixed to the resource " +
				"identifier (application ID URI)."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := newEntraWorld(t)
			w.entra.AddTenant(otherTenant)
			if tt.setup != nil {
				tt.setup(w)
			}
			var assertion string
			if tt.assertion != nil {
				assertion = tt.assertion(t, w)
			} else {
				assertion = w.managedIdentityToken(t, nil)
			}
			tenant, clientID, scopes := tt.tenant, tt.clientID, tt.scopes
			if tenant == "" {
				tenant = targetTenant
			}
			if clientID == "" {
				clientID = appID
			}
			if scopes == nil {
				scopes = []string{armScope}
			}

			_, err := w.appToken(nil, tenant, clientID, assertion, scopes...)

			code, message := entraRefusal(t, err)
			g.Expect(message).To(Equal(tt.want))
			g.Expect(err.Error()).NotTo(ContainSubstring(assertion))
			calls := w.entra.Calls()
			if code != "AADSTS90002" { // refused at the OpenID configuration
				g.Expect(calls[len(calls)-1].Err).To(Equal(code))
			}
		})
	}
}

// An assertion that expired is refused, a managed identity's token as a
// Kubernetes one, on the fake's clock.
func TestEntraExpiredAssertion(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := newEntraWorld(t)
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	clock := func() time.Time { return *now.Load() }
	w.issuer.SetClock(clock)
	e := fakes.StartEntra(fakes.EntraOptions{Now: clock})
	t.Cleanup(e.Close)
	e.AddTenant(homeTenant)
	e.AddManagedIdentity(homeTenant, miClientID, miPrincipal)
	e.AllowFederatedCredential(miClientID, w.issuer.URL(), "system:serviceaccount:flux-system:source-controller")
	e.TrustIssuer(w.issuer)
	e.AddApp(homeTenant, appID)
	e.AllowFederatedCredential(appID, fakes.EntraIssuer(homeTenant), miPrincipal)
	w.entra, w.impl = e, e.Implementation()
	mi, _ := e.IssueToken(homeTenant, miClientID, exchange)
	kube, err := w.issuer.Sign("flux-system", "source-controller", []string{fakes.EntraTokenExchangeAudience}, time.Hour)
	g.Expect(err).NotTo(HaveOccurred())

	later := start.Add(time.Hour)
	now.Store(&later)

	for _, tc := range []struct{ clientID, assertion string }{{appID, mi}, {miClientID, kube}} {
		_, err := w.appToken(nil, homeTenant, tc.clientID, tc.assertion, armScope)
		_, message := entraRefusal(t, err)
		g.Expect(message).To(Equal("AADSTS700024: Client assertion is not within its valid time range."))
	}
}

// The wire format of a refusal, as MSAL and the Azure CLI read it.
func TestEntraRefusalWireFormat(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := newEntraWorld(t)

	resp, err := w.entra.Client().PostForm(w.entra.URL+"/"+targetTenant+"/oauth2/v2.0/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {appID}, "scope": {armScope},
	})
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
	var reply map[string]any
	g.Expect(json.NewDecoder(resp.Body).Decode(&reply)).To(Succeed())
	g.Expect(reply).To(HaveKeyWithValue("error", "invalid_client"))
	g.Expect(reply).To(HaveKeyWithValue("error_codes", []any{float64(7000218)}))
	g.Expect(reply["error_description"]).To(HavePrefix("AADSTS7000218: The request body must contain the following " +
		"parameter: 'client_assertion' or 'client_secret'.\r\nTrace ID: "))
	g.Expect(reply).To(HaveKeyWithValue("error_uri", "https://login.microsoftonline.com/error?code=7000218"))
	g.Expect(w.entra.Calls()).To(Equal([]fakes.EntraCall{{Tenant: targetTenant, ClientID: appID,
		Scopes: []string{armScope}, Err: "AADSTS7000218"}}))
}

// The implementation makes only HTTP clients trust the fakes; a transport
// it cannot change is refused rather than sent to Azure.
func TestAzureImplementationRefusesOtherTransports(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := newEntraWorld(t)
	_, err := w.impl.NewClientAssertionCredential(targetTenant, appID,
		func(context.Context) (string, error) { return "", nil },
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: otherTransport{}}})
	g.Expect(err).To(MatchError("the transport is fakes_test.otherTransport, not an *http.Client: the fakes cannot make it trust them"))

	_, err = w.entra.Implementation().NewDefaultAzureCredentialWithoutShellOut(nil)
	g.Expect(err).To(MatchError(fakes.ErrAzureNotFaked))
}

type otherTransport struct{}

func (otherTransport) Do(*http.Request) (*http.Response, error) { return nil, errors.New("unused") }

// connectProxy is an HTTPS proxy (CONNECT) that counts the tunnels it
// opens to host.
func connectProxy(t *testing.T, host string) (*url.URL, *atomic.Int64) {
	t.Helper()
	var tunnels atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(rw, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		upstream, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		if r.Host == host {
			tunnels.Add(1)
		}
		conn, buf, err := rw.(http.Hijacker).Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		_, _ = conn.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n"))
		done := make(chan struct{})
		go func() {
			_, _ = io.Copy(upstream, buf)
			upstream.Close()
			close(done)
		}()
		_, _ = io.Copy(conn, upstream)
		conn.Close()
		<-done
	}))
	t.Cleanup(proxy.Close)
	u, _ := url.Parse(proxy.URL)
	return u, &tunnels
}

// Both hops reach Entra through the caller's proxy, as a controller behind
// one does.
func TestEntraThroughProxy(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := newEntraWorld(t)
	entraURL, _ := url.Parse(w.entra.URL)
	proxyURL, tunnels := connectProxy(t, entraURL.Host)
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 10 * time.Second}

	mi := w.managedIdentityToken(t, hc)
	g.Expect(tunnels.Load()).To(BeNumerically(">=", 1))
	before := tunnels.Load()
	_, err := w.appToken(hc, targetTenant, appID, mi, armScope)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(tunnels.Load()).To(BeNumerically(">", before), "the app's token went through the proxy too")
}
