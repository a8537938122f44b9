package azure_test

import (
	"context"
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
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/fakes"
)

const (
	homeTenant  = "11111111-1111-4111-8111-111111111111"
	miClientID  = "44444444-4444-4444-8444-444444444444"
	miPrincipal = "55555555-5555-4555-8555-555555555555"
	exchange    = "api://AzureADTokenExchange/.default"
)

// fic is a fake Entra where the app trusts the managed identity and has a
// service principal in the target tenant, and a provider that reaches it
// through the real azidentity.
type fic struct {
	entra    *fakes.Entra
	provider azure.Provider
	source   *azure.Token // the managed identity's token for the exchange
}

func newFIC(t *testing.T) *fic {
	t.Helper()
	e := fakes.StartEntra(fakes.EntraOptions{})
	t.Cleanup(e.Close)
	e.AddTenant(homeTenant)
	e.AddTenant(targetTenant, "contoso.onmicrosoft.com")
	e.AddManagedIdentity(homeTenant, miClientID, miPrincipal)
	e.AddApp(homeTenant, appID)
	e.AllowFederatedCredential(appID, fakes.EntraIssuer(homeTenant), miPrincipal)
	e.Consent(appID, targetTenant)
	token, expiry := e.IssueToken(homeTenant, miClientID, exchange)
	return &fic{entra: e, provider: azure.Provider{Implementation: e.Implementation()},
		source: &azure.Token{AccessToken: azcore.AccessToken{Token: token, ExpiresOn: expiry}}}
}

func impersonation(clientID, tenantID string, scopes ...string) auth.Impersonation {
	sa := serviceAccount(map[string]string{azure.ImpersonateAnnotation: "clientID: " + clientID + "\ntenantID: " + tenantID})
	imp, err := azure.Provider{}.ParseImpersonation(sa, fluxauth.WithScopes(scopes...))
	if err != nil {
		panic(err)
	}
	return *imp
}

func (f *fic) impersonate(ctx context.Context, imp auth.Impersonation, opts ...fluxauth.Option) (fluxauth.Token, error) {
	return f.provider.Impersonate(ctx, f.source, imp, opts...)
}

// The source token is the client assertion of the app, which gets a token
// in the target tenant, named by ID or by verified domain, for the scopes
// the caller asks.
func TestImpersonateIsTheAppInTheTargetTenant(t *testing.T) {
	t.Parallel()
	for _, tenant := range []string{targetTenant, "contoso.onmicrosoft.com"} {
		t.Run(tenant, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			f := newFIC(t)
			const vault = "https://vault.azure.net/.default"

			token, err := f.impersonate(context.Background(), impersonation(appID, tenant, armScope), fluxauth.WithScopes(vault))

			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(azure.Provider{}.ValidateToken(token, time.Now())).To(Succeed())
			who, ok := f.entra.WhoIs(token.(*azure.Token).Token)
			g.Expect(ok).To(BeTrue())
			g.Expect(who.TenantID).To(Equal(targetTenant))
			g.Expect(who.ClientID).To(Equal(appID))
			g.Expect(who.Audience).To(Equal("https://vault.azure.net"), "the caller's scopes at the time of the call")
			g.Expect(f.entra.Calls()).To(Equal([]fakes.EntraCall{{Tenant: targetTenant, ClientID: appID,
				Scopes: []string{vault}, AssertionIssuer: fakes.EntraIssuer(homeTenant), AssertionSubject: miPrincipal}}))
		})
	}
}

// Entra's refusals that a person fixes in Entra say what to create or
// grant, pinned word for word; the others show Entra's code and first
// sentence. None shows the reply's trace IDs or a token.
func TestImpersonateTranslatesEntraRefusals(t *testing.T) {
	t.Parallel()
	const (
		prefix      = "entra token request for app '" + appID + "' in tenant '" + targetTenant + "': "
		otherTenant = "66666666-6666-4666-8666-666666666666"
	)
	for _, tt := range []struct {
		name     string
		setup    func(e *fakes.Entra)
		tenant   string
		scope    string
		wantErr  string
		wantCode string
		sentinel error
	}{
		{
			name:     "the app trusts no federated credential",
			setup:    func(e *fakes.Entra) { e.AddApp(homeTenant, otherApp); e.Consent(otherApp, targetTenant) },
			wantCode: "AADSTS70021", sentinel: azure.ErrNoFederatedCredential,
			wantErr: "entra token request for app '" + otherApp + "' in tenant '" + targetTenant + "': HTTP 401: " +
				"AADSTS70021: No matching federated identity record found for presented assertion. no federated " +
				"identity credential trusts the source identity: add one to app registration '" + otherApp + "' with issuer 'https://login.microsoftonline.com/" + homeTenant +
				"/v2.0', subject '" + miPrincipal + "' (the principal ID of the source managed identity) and " +
				"audience 'api://AzureADTokenExchange'",
		},
		{
			name: "the app trusts another managed identity",
			setup: func(e *fakes.Entra) {
				e.AddApp(homeTenant, otherApp)
				e.Consent(otherApp, targetTenant)
				e.AllowFederatedCredential(otherApp, fakes.EntraIssuer(homeTenant), otherTenant)
			},
			wantCode: "AADSTS700213", sentinel: azure.ErrNoFederatedCredential,
			wantErr: "entra token request for app '" + otherApp + "' in tenant '" + targetTenant + "': HTTP 401: " +
				"AADSTS700213: No matching federated identity record found for presented assertion subject '" +
				miPrincipal + "'. no federated identity credential trusts the source identity: " +
				"add one to app registration '" + otherApp + "' with issuer 'https://login.microsoftonline.com/" +
				homeTenant + "/v2.0', subject '" + miPrincipal + "' (the principal ID of the source managed identity) " +
				"and audience 'api://AzureADTokenExchange'",
		},
		{
			name: "no admin consent in the target tenant", tenant: otherTenant,
			wantCode: "AADSTS700016", sentinel: azure.ErrAppNotInTenant,
			wantErr: "entra token request for app '" + appID + "' in tenant '" + otherTenant + "': HTTP 400: " +
				"AADSTS700016: Application with identifier '" + appID + "' was not found in the directory '" +
				otherTenant + "'. the app has no service principal in the target tenant: check the annotation's " +
				"clientID; if it is right, an administrator of tenant '" + otherTenant + "' grants the app admin " +
				"consent ('az ad sp create --id " + appID + "', signed in to that tenant), and the app registration " +
				"must be multi-tenant",
		},
		{
			name: "no such tenant", tenant: "fabrikam.example.com",
			wantCode: "AADSTS90002", sentinel: azure.ErrTenantNotFound,
			wantErr: "entra token request for app '" + appID + "' in tenant 'fabrikam.example.com': HTTP 400: " +
				"AADSTS90002: Tenant 'fabrikam.example.com' not found. entra knows no such tenant: check the " +
				"annotation's tenantID 'fabrikam.example.com', the ID or a verified domain of the tenant to get the " +
				"app's token in",
		},
		{
			name: "anything else: Entra's code and first sentence", scope: "https://management.azure.com/user_impersonation",
			wantCode: "AADSTS1002012",
			wantErr: prefix + "HTTP 400: AADSTS1002012: The provided value for scope " +
				"https://management.azure.com/user_impersonation is not valid",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			f := newFIC(t)
			f.entra.AddTenant(otherTenant)
			if tt.setup != nil {
				tt.setup(f.entra)
			}
			app, tenant, scope := appID, targetTenant, armScope
			if tt.setup != nil {
				app = otherApp
			}
			if tt.tenant != "" {
				tenant = tt.tenant
			}
			if tt.scope != "" {
				scope = tt.scope
			}

			token, err := f.impersonate(context.Background(), impersonation(app, tenant, scope), fluxauth.WithScopes(scope))

			g.Expect(token).To(BeNil())
			g.Expect(err).To(MatchError(tt.wantErr))
			if tt.sentinel != nil {
				g.Expect(err).To(MatchError(tt.sentinel))
			}
			var entraErr *azure.EntraError
			g.Expect(errors.As(err, &entraErr)).To(BeTrue())
			g.Expect(entraErr.Code).To(Equal(tt.wantCode))
			var afe *azidentity.AuthenticationFailedError
			g.Expect(errors.As(err, &afe)).To(BeTrue(), "azidentity's error stays reachable")
			g.Expect(err.Error()).NotTo(ContainSubstring(f.source.Token))
			g.Expect(err.Error()).NotTo(ContainSubstring("Trace ID"))
		})
	}
}

const otherApp = "77777777-7777-4777-8777-777777777777"

// front is an Entra that answers token requests with reply, for the
// replies the fake Entra never sends, and a provider that reaches it.
func front(t *testing.T, reply func(w http.ResponseWriter)) azure.Provider {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/openid-configuration") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"issuer":"https://login.microsoftonline.com/`+targetTenant+`/v2.0",`+
				`"token_endpoint":"`+srv.URL+`/`+targetTenant+`/oauth2/v2.0/token",`+
				`"authorization_endpoint":"`+srv.URL+`/`+targetTenant+`/oauth2/v2.0/authorize"}`)
			return
		}
		reply(w)
	}))
	t.Cleanup(srv.Close)
	return azure.Provider{Implementation: frontImplementation{url: srv.URL, client: srv.Client()}}
}

// frontImplementation makes credentials that ask a front.
type frontImplementation struct {
	azure.Implementation // the other methods are not used
	url                  string
	client               *http.Client
}

func (f frontImplementation) NewClientAssertionCredential(tenantID, clientID string, getAssertion func(context.Context) (string, error),
	o *azidentity.ClientAssertionCredentialOptions) (azcore.TokenCredential, error) {
	opts := *o
	opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: f.url}
	opts.Transport = f.client
	opts.DisableInstanceDiscovery = true
	opts.Retry.MaxRetries = -1
	return azidentity.NewClientAssertionCredential(tenantID, clientID, getAssertion, &opts)
}

// A success whose token cannot be used is an error, never a token; a reply
// that is not Entra's shows a short prefix of it.
func TestImpersonateRefusesBadReplies(t *testing.T) {
	t.Parallel()
	const prefix = "entra token request for app '" + appID + "' in tenant '" + targetTenant + "'"
	for _, tt := range []struct {
		name    string
		status  int
		body    string
		wantErr string // a regular expression when it starts with ^
	}{
		{name: "empty token: MSAL refuses it", status: http.StatusOK,
			body:    `{"token_type":"Bearer","expires_in":3600,"access_token":""}`,
			wantErr: prefix + ": ClientAssertionCredential: response is missing access_token"},
		{name: "about to expire", status: http.StatusOK,
			body:    `{"token_type":"Bearer","expires_in":30,"access_token":"SECRET"}`,
			wantErr: `^` + prefix + ` returned an invalid Azure access token: ExpiresOn \S+ is not more than 1m0s after the current time \S+$`},
		{name: "not Entra's", status: http.StatusTeapot, body: "<html>" + strings.Repeat("x", 100) + "\n</html>",
			wantErr: prefix + ": HTTP 418: <html>" + strings.Repeat("x", 58) + "… (114 bytes in all)"},
		{name: "Entra's JSON without a code", status: http.StatusBadRequest,
			body:    `{"error":"invalid_request","error_description":"Something. More.\r\nTrace ID: 1"}`,
			wantErr: prefix + ": HTTP 400: Something"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			p := front(t, func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			source := &azure.Token{AccessToken: azcore.AccessToken{Token: "SOURCE", ExpiresOn: time.Now().Add(time.Hour)}}

			token, err := p.Impersonate(context.Background(), source, impersonation(appID, targetTenant, armScope),
				fluxauth.WithScopes(armScope))

			g.Expect(token).To(BeNil())
			if strings.HasPrefix(tt.wantErr, "^") {
				g.Expect(err).To(MatchError(MatchRegexp(tt.wantErr)))
			} else {
				g.Expect(err).To(MatchError(tt.wantErr))
			}
			g.Expect(err.Error()).NotTo(ContainSubstring("SECRET"))
			g.Expect(err.Error()).NotTo(ContainSubstring("SOURCE"))
		})
	}
}

// What Impersonate is given is checked before any call.
func TestImpersonateChecksItsInputs(t *testing.T) {
	t.Parallel()
	f := newFIC(t)
	imp := impersonation(appID, targetTenant, armScope)
	for _, tt := range []struct {
		name    string
		source  fluxauth.Token
		imp     auth.Impersonation
		opts    []fluxauth.Option
		wantErr string
	}{
		{name: "not an Azure token", source: notAzure{}, imp: imp, opts: []fluxauth.Option{fluxauth.WithScopes(armScope)},
			wantErr: "source credentials are azure_test.notAzure, not an Azure token"},
		{name: "a nil Azure token", source: (*azure.Token)(nil), imp: imp,
			wantErr: "source credentials are *azure.Token, not an Azure token"},
		{name: "built by hand", source: f.source, imp: auth.Impersonation{Target: appID, ServiceAccount: client.ObjectKey{}},
			wantErr: "the impersonation's request is <nil>, not Azure client credentials"},
		{name: "no scopes", source: f.source, imp: imp,
			wantErr: "entra token request for app '" + appID + "' in tenant '" + targetTenant + "': the scopes of the " +
				"app's token are required: set them with auth.WithScopes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := f.provider.Impersonate(context.Background(), tt.source, tt.imp, tt.opts...)
			g.Expect(err).To(MatchError(tt.wantErr))
		})
	}
	g := NewWithT(t)
	g.Expect(f.entra.Attempts()).To(BeZero())
}

type notAzure struct{}

func (notAzure) GetDuration() time.Duration { return time.Hour }

// The caller's context bounds the request.
func TestImpersonateHonoursTheContext(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	f := newFIC(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	_, err := f.impersonate(ctx, impersonation(appID, targetTenant, armScope), fluxauth.WithScopes(armScope))

	g.Expect(err).To(MatchError(context.Canceled))
	g.Expect(err).To(MatchError(HavePrefix("entra token request for app '" + appID + "' in tenant '" + targetTenant +
		"': context canceled: ClientAssertionCredential: ")))
}

// The token request goes through the caller's proxy.
func TestImpersonateThroughProxy(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	f := newFIC(t)
	entraURL, _ := url.Parse(f.entra.URL)
	var tunnels atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Host != entraURL.Host {
			http.Error(rw, "CONNECT to Entra only", http.StatusForbidden)
			return
		}
		upstream, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		tunnels.Add(1)
		conn, buf, _ := rw.(http.Hijacker).Hijack()
		_, _ = conn.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n"))
		done := make(chan struct{})
		go func() { _, _ = io.Copy(upstream, buf); upstream.Close(); close(done) }()
		_, _ = io.Copy(conn, upstream)
		conn.Close()
		<-done
	}))
	t.Cleanup(proxy.Close)
	proxyURL, _ := url.Parse(proxy.URL)

	_, err := f.impersonate(context.Background(), impersonation(appID, targetTenant, armScope),
		fluxauth.WithScopes(armScope), fluxauth.WithProxyURL(*proxyURL))

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(tunnels.Load()).To(BeNumerically(">=", 1))
	g.Expect(f.entra.Calls()).To(HaveLen(1))
}
