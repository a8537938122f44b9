package fakes

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"

	"github.com/go-jose/go-jose/v4/jwt"
)

// Audiences of the Entra tokens ACR exchanges: its own, and Azure Resource
// Manager's, which ACR takes too.
var acrAudiences = []string{"https://containerregistry.azure.net", "https://management.core.windows.net/",
	"https://management.azure.com", "https://management.azure.com/"}

// ACRCall is one token exchange as the fake saw it, recorded whether it
// succeeded or not. It holds no token.
type ACRCall struct {
	// Service is the registry asked for.
	Service string
	// TenantID and ClientID say whose the Entra token is; "" when it was
	// missing or unknown.
	TenantID, ClientID string
	// Err is "" on success, otherwise ACR's error code: "UNAUTHORIZED" or
	// "UNSUPPORTED".
	Err string
}

// ACR is a fake of Azure Container Registry's exchange of an Entra access
// token for a registry refresh token (POST /oauth2/exchange, the first
// step of `az acr login --expose-token`) on 127.0.0.1, for the registries
// added with AddRegistry. AzureImplementation.WithACR points upstream's
// exchange at it.
//
// It checks what ACR checks: grant_type is access_token (UNSUPPORTED), and
// the access token is one the fake Entra minted, not expired, for ACR's or
// Azure Resource Manager's audience, issued in the registry's tenant, to a
// client given pull access (UNAUTHORIZED for each). The refresh token is a
// JWT with the expiry of the access token, which upstream reads, and WhoIs
// tells whose it is.
//
// ACR is safe for concurrent use.
type ACR struct {
	// URL is the base URL of the fake, "http://127.0.0.1:<port>".
	URL string

	entra *Entra
	srv   *httptest.Server

	// mu guards registries, tokens and calls.
	mu         sync.Mutex
	registries map[string]acrRegistry
	tokens     map[string]EntraToken
	calls      []ACRCall
}

type acrRegistry struct {
	tenantID string
	clients  []string
}

// StartACR starts a fake ACR on 127.0.0.1 taking the tokens of e. Close it
// when done.
func StartACR(e *Entra) *ACR {
	a := &ACR{entra: e, registries: map[string]acrRegistry{}, tokens: map[string]EntraToken{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serveHTTP))
	a.URL = a.srv.URL
	return a
}

// Close shuts the fake down, blocking until outstanding requests finish.
func (a *ACR) Close() { a.srv.Close() }

// AddRegistry creates the registry host (e.g. "myregistry.azurecr.io") in
// tenantID, whose clients (apps or managed identities of that tenant, by
// client ID) may pull.
func (a *ACR) AddRegistry(host, tenantID string, clientIDs ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.registries[host] = acrRegistry{tenantID: tenantID, clients: slices.Clone(clientIDs)}
}

// WhoIs returns whose Entra token a refresh token of the fake was made of.
func (a *ACR) WhoIs(refreshToken string) (EntraToken, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.tokens[refreshToken]
	return t, ok
}

// Calls returns a copy of every token exchange, in arrival order.
func (a *ACR) Calls() []ACRCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.calls)
}

func (a *ACR) serveHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, entraMaxBody)
	if r.URL.Path != "/oauth2/exchange" || r.Method != http.MethodPost || r.ParseForm() != nil {
		acrWriteError(w, http.StatusNotFound, "NOT_FOUND", "the requested resource was not found")
		return
	}
	call := ACRCall{Service: r.PostForm.Get("service")}
	fail := func(status int, code, message string) {
		call.Err = code
		a.record(call)
		acrWriteError(w, status, code, message)
	}
	if r.PostForm.Get("grant_type") != "access_token" {
		fail(http.StatusBadRequest, "UNSUPPORTED", "grant type not supported")
		return
	}
	token, reason := a.entra.lookup(r.PostForm.Get("access_token"))
	if reason != "unknown" {
		call.TenantID, call.ClientID = token.TenantID, token.ClientID
	}
	a.mu.Lock()
	reg, ok := a.registries[call.Service]
	a.mu.Unlock()
	if reason != "" || !ok || !slices.Contains(acrAudiences, token.Audience) || token.TenantID != reg.tenantID ||
		!slices.Contains(reg.clients, token.ClientID) {
		fail(http.StatusUnauthorized, "UNAUTHORIZED",
			"authentication required, visit https://aka.ms/acr/authorization for more information.")
		return
	}
	refresh, err := jwt.Signed(a.entra.signer).Claims(map[string]any{
		"jti": rand.Text(), "sub": token.ObjectID, "aud": call.Service, "iss": "Azure Container Registry",
		"tenant": token.TenantID, "grant_type": "refresh_token", "exp": jwt.NewNumericDate(token.Expiry),
		"iat": jwt.NewNumericDate(a.entra.now()), "nbf": jwt.NewNumericDate(a.entra.now()),
	}).Serialize()
	if err != nil {
		fail(http.StatusInternalServerError, "UNKNOWN", "failed to sign the refresh token")
		return
	}
	a.mu.Lock()
	a.tokens[refresh] = token
	a.mu.Unlock()
	a.record(call)
	entraWriteJSON(w, http.StatusOK, map[string]string{"refresh_token": refresh})
}

func (a *ACR) record(c ACRCall) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, c)
}

// acrWriteError writes an error as the registry API does.
func acrWriteError(w http.ResponseWriter, status int, code, message string) {
	entraWriteJSON(w, status, map[string]any{"errors": []map[string]string{{"code": code, "message": message}}})
}
