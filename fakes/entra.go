package fakes

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// EntraTokenExchangeAudience is the audience of a managed identity's token
// that Entra accepts as a client assertion, and of the federated identity
// credentials that trust it.
const EntraTokenExchangeAudience = "api://AzureADTokenExchange"

// entraIssuerBase is where real Entra's v2.0 tokens say they come from,
// whatever host served them: a federated identity credential that trusts a
// managed identity names this issuer, so the fake's tokens carry it too.
const entraIssuerBase = "https://login.microsoftonline.com/"

// EntraIssuer returns the issuer of the tokens Entra mints in tenantID,
// "https://login.microsoftonline.com/<tenantID>/v2.0": the issuer of a
// federated identity credential that trusts a managed identity of that
// tenant.
func EntraIssuer(tenantID string) string { return entraIssuerBase + tenantID + "/v2.0" }

var entraGUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// EntraOptions configures StartEntra. The zero value is valid.
type EntraOptions struct {
	// TTL is the lifetime of every token the fake mints. Optional.
	// Defaults to one hour.
	TTL time.Duration
	// Now is the clock that stamps and checks token expiry. Optional.
	// Defaults to time.Now.
	Now func() time.Time
}

// EntraToken is what Entra knows of a token it minted. It holds no token.
type EntraToken struct {
	// TenantID is the tenant the token was issued in.
	TenantID string
	// ClientID is the app's or the managed identity's client ID.
	ClientID string
	// ObjectID is the object ID of the client's service principal in
	// TenantID: for a managed identity, its principal ID.
	ObjectID string
	// ManagedIdentity tells a managed identity from an app registration.
	ManagedIdentity bool
	// Audience is the resource the token is for, e.g.
	// "https://management.core.windows.net/" or EntraTokenExchangeAudience.
	Audience string
	// Scopes are the scopes asked for.
	Scopes []string
	// Expiry is when the token expires, on the fake's clock.
	Expiry time.Time
}

// EntraCall is one token request as the fake saw it, recorded whether it
// succeeded or not. It holds no token.
type EntraCall struct {
	// Tenant is the tenant of the request's path, as sent: an ID or a domain.
	Tenant string
	// ClientID is the client_id asked for.
	ClientID string
	// Scopes are the scopes asked for, openid, profile and offline_access
	// left out.
	Scopes []string
	// AssertionIssuer and AssertionSubject are the iss and sub claims of
	// the client assertion, "" when it could not be read.
	AssertionIssuer, AssertionSubject string
	// Err is "" on success, otherwise Entra's code of the refusal, e.g.
	// "AADSTS70021".
	Err string
}

// Entra is a fake of the Microsoft Entra ID token endpoint on 127.0.0.1,
// over HTTPS (azidentity refuses any other authority): what
// azidentity's client assertion credential calls, the tenant's OpenID
// configuration (GET /{tenant}/v2.0/.well-known/openid-configuration) and
// client credentials with a client assertion
// (POST /{tenant}/oauth2/v2.0/token). Point the real SDK at it with
// Implementation.
//
// It checks what Entra checks, in Entra's order, and refuses with Entra's
// codes and wording: the tenant exists, by ID or verified domain
// (AADSTS90002); the request is client credentials (AADSTS70003) for one
// resource's /.default scope (AADSTS900144, AADSTS1002012); the client has
// a service principal in the tenant, for an app through Consent, for a
// managed identity only in its own tenant (AADSTS700016); a client
// assertion is sent (AADSTS7000218) and is a JWT (AADSTS50027); a
// federated identity credential of the client (AllowFederatedCredential)
// matches the assertion's iss, sub and aud (AADSTS70021 when the client has
// none, else AADSTS700211 for the issuer, AADSTS700213 for the subject,
// AADSTS700212 for the audience); the assertion is valid: a token this fake
// minted and not expired (AADSTS700024), or a token of an Issuer given to
// TrustIssuer (AADSTS90061 for another issuer), signed by it
// (AADSTS700027) and within its time claims (AADSTS700024).
//
// A managed identity's token for EntraTokenExchangeAudience, whether
// minted by IssueToken or by this endpoint for a federated Kubernetes
// token, is thus the client assertion of an app that trusts the managed
// identity, in any tenant where the app has a service principal.
//
// Tokens are JWTs signed by the fake, with the claims of Entra's v2.0
// access tokens (iss EntraIssuer(tenant), sub and oid the service
// principal's object ID, tid, azp, aud), and are known to the fake, which
// WhoIs answers from: to their holders they are as opaque as Entra's. They
// never appear in errors, logs or recorded calls.
//
// Entra is safe for concurrent use.
type Entra struct {
	// URL is the authority host of the fake, "https://127.0.0.1:<port>".
	URL string

	srv    *httptest.Server
	signer jose.Signer
	ttl    time.Duration
	now    func() time.Time

	// mu guards every field below.
	mu sync.Mutex
	// tenants maps a lower-case tenant ID or verified domain to the ID.
	tenants map[string]string
	// clients holds apps and managed identities by lower-case client ID.
	clients  map[string]*entraClient
	issuers  map[string]*Issuer
	tokens   map[string]EntraToken
	calls    []EntraCall
	attempts int
}

// entraClient is an app registration or a user-assigned managed identity.
type entraClient struct {
	clientID        string
	managedIdentity bool
	// principals maps the tenants where the client has a service principal
	// to its object ID there.
	principals map[string]string
	fics       []entraFIC
}

// entraFIC is a federated identity credential.
type entraFIC struct{ issuer, subject, audience string }

// StartEntra starts the fake on 127.0.0.1. Close it when done.
func StartEntra(opts EntraOptions) *Entra {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("fakes: StartEntra: " + err.Error())
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic("fakes: StartEntra: " + err.Error())
	}
	e := &Entra{
		signer:  signer,
		ttl:     opts.TTL,
		now:     opts.Now,
		tenants: map[string]string{},
		clients: map[string]*entraClient{},
		issuers: map[string]*Issuer{},
		tokens:  map[string]EntraToken{},
	}
	if e.ttl <= 0 {
		e.ttl = time.Hour
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.srv = httptest.NewTLSServer(http.HandlerFunc(e.serveHTTP))
	e.URL = e.srv.URL
	return e
}

// Close shuts the server down, blocking until outstanding requests finish.
func (e *Entra) Close() { e.srv.Close() }

// Client returns an HTTP client that trusts the fake's certificate, for
// requests of a test's own.
func (e *Entra) Client() *http.Client { return e.srv.Client() }

// AddTenant creates the tenant tenantID (a lower-case GUID) with its
// verified domains. It panics for an invalid ID or a tenant or domain
// added before.
func (e *Entra) AddTenant(tenantID string, domains ...string) {
	if !entraGUID.MatchString(tenantID) {
		panic("fakes: Entra.AddTenant: invalid tenant ID '" + tenantID + "': want a lower-case GUID")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, name := range append([]string{tenantID}, domains...) {
		name = strings.ToLower(name)
		if _, ok := e.tenants[name]; ok {
			panic("fakes: Entra.AddTenant: '" + name + "' exists")
		}
		e.tenants[name] = tenantID
	}
}

// AddManagedIdentity creates a user-assigned managed identity in tenantID
// with its client ID and principal (object) ID. A managed identity has a
// service principal in its own tenant only.
func (e *Entra) AddManagedIdentity(tenantID, clientID, principalID string) {
	e.addClient(tenantID, clientID, principalID, true)
}

// AddApp registers an app in tenantID, multi-tenant, with its service
// principal there; Consent adds one in another tenant.
func (e *Entra) AddApp(tenantID, clientID string) {
	e.addClient(tenantID, clientID, entraObjectID(clientID, tenantID), false)
}

func (e *Entra) addClient(tenantID, clientID, objectID string, mi bool) {
	if !entraGUID.MatchString(clientID) || !entraGUID.MatchString(objectID) {
		panic("fakes: Entra: invalid client ID '" + clientID + "' or object ID '" + objectID + "': want lower-case GUIDs")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mustTenant(tenantID)
	if _, ok := e.clients[clientID]; ok {
		panic("fakes: Entra: client '" + clientID + "' exists")
	}
	e.clients[clientID] = &entraClient{clientID: clientID, managedIdentity: mi,
		principals: map[string]string{tenantID: objectID}}
}

// Consent gives the app appClientID a service principal in tenantID, as an
// administrator of that tenant granting admin consent does. It panics for
// a managed identity, which exists in its own tenant only.
func (e *Entra) Consent(appClientID, tenantID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mustTenant(tenantID)
	c := e.mustClient(appClientID)
	if c.managedIdentity {
		panic("fakes: Entra.Consent: '" + appClientID + "' is a managed identity: it has no service principal outside its tenant")
	}
	c.principals[tenantID] = entraObjectID(appClientID, tenantID)
}

// AllowFederatedCredential adds to the app or managed identity clientID a
// federated identity credential trusting the tokens of issuer for subject,
// with audience EntraTokenExchangeAudience. To trust a managed identity,
// issuer is EntraIssuer(its tenant) and subject its principal ID; to trust
// a Kubernetes ServiceAccount, the cluster's issuer URL and
// ServiceAccountSubject(namespace, name).
func (e *Entra) AllowFederatedCredential(clientID, issuer, subject string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.mustClient(clientID)
	c.fics = append(c.fics, entraFIC{issuer: issuer, subject: subject, audience: EntraTokenExchangeAudience})
}

// TrustIssuer makes the fake verify the client assertions whose iss is
// iss.URL() with iss, as Entra reads an external issuer's keys from its
// discovery document.
func (e *Entra) TrustIssuer(iss *Issuer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.issuers[iss.URL()] = iss
}

// ServicePrincipalID returns the object ID of the service principal of
// clientID in tenantID, and whether there is one.
func (e *Entra) ServicePrincipalID(clientID, tenantID string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.clients[clientID]
	if !ok {
		return "", false
	}
	id, ok := c.principals[tenantID]
	return id, ok
}

// IssueToken mints a token of clientID in tenantID for the resource of
// scope (e.g. EntraTokenExchangeAudience + "/.default"), as if Entra had
// issued it by other means, such as a managed identity endpoint. It returns
// the token and its expiry on the fake's clock, and panics when the client
// has no service principal in the tenant.
func (e *Entra) IssueToken(tenantID, clientID, scope string) (string, time.Time) {
	e.mu.Lock()
	c := e.mustClient(clientID)
	objectID, ok := c.principals[tenantID]
	e.mu.Unlock()
	if !ok {
		panic("fakes: Entra.IssueToken: '" + clientID + "' has no service principal in tenant '" + tenantID + "'")
	}
	t := e.mint(tenantID, c, objectID, []string{scope})
	return t.token, t.Expiry
}

// WhoIs returns what the fake knows of token. An expired token still
// answers: whose a token is does not change when it expires.
func (e *Entra) WhoIs(token string) (EntraToken, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tokens[token]
	t.Scopes = slices.Clone(t.Scopes)
	return t, ok
}

// Calls returns a copy of every token request, in arrival order.
func (e *Entra) Calls() []EntraCall {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]EntraCall, len(e.calls))
	for i, c := range e.calls {
		c.Scopes = slices.Clone(c.Scopes)
		out[i] = c
	}
	return out
}

// Attempts returns how many HTTP requests reached the fake, OpenID
// configuration requests included.
func (e *Entra) Attempts() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.attempts
}

// lookup returns a token the fake minted, and "" or why it cannot be used
// now: "expired".
func (e *Entra) lookup(token string) (EntraToken, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tokens[token]
	switch {
	case !ok:
		return EntraToken{}, "unknown"
	case !e.now().Before(t.Expiry):
		return t, "expired"
	}
	return t, ""
}

func (e *Entra) mustTenant(tenantID string) {
	if e.tenants[tenantID] != tenantID {
		panic("fakes: Entra: unknown tenant ID '" + tenantID + "': add it with AddTenant")
	}
}

func (e *Entra) mustClient(clientID string) *entraClient {
	c, ok := e.clients[clientID]
	if !ok {
		panic("fakes: Entra: unknown client '" + clientID + "': add it with AddApp or AddManagedIdentity")
	}
	return c
}

// mintedToken is a minted token with what the fake knows of it.
type mintedToken struct {
	EntraToken
	token string
}

// entraClaims are the claims of Entra's v2.0 access tokens that a client
// may read.
type entraClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  string           `json:"aud"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	Expiry    *jwt.NumericDate `json:"exp"`
	ObjectID  string           `json:"oid"`
	TenantID  string           `json:"tid"`
	AppID     string           `json:"azp"`
	IDType    string           `json:"idtyp"`
	Version   string           `json:"ver"`
	UTI       string           `json:"uti"`
}

// mint creates and remembers a token of c in tenantID for the resource of
// scopes[0]. Expiry is truncated to the second, as expires_in says it.
func (e *Entra) mint(tenantID string, c *entraClient, objectID string, scopes []string) mintedToken {
	now := e.now()
	exp := now.Add(e.ttl).Truncate(time.Second)
	t := EntraToken{TenantID: tenantID, ClientID: c.clientID, ObjectID: objectID, ManagedIdentity: c.managedIdentity,
		Audience: entraResource(scopes[0]), Scopes: slices.Clone(scopes), Expiry: exp}
	token, err := jwt.Signed(e.signer).Claims(entraClaims{
		Issuer: EntraIssuer(tenantID), Subject: objectID, Audience: t.Audience,
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(exp),
		ObjectID: objectID, TenantID: tenantID, AppID: c.clientID, IDType: "app", Version: "2.0", UTI: rand.Text(),
	}).Serialize()
	if err != nil {
		panic("fakes: Entra: failed to sign a token: " + err.Error())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokens[token] = t
	return mintedToken{EntraToken: t, token: token}
}

// entraResource is the resource of a /.default scope, the audience of the
// token: "https://management.core.windows.net//.default" is for
// "https://management.core.windows.net/".
func entraResource(scope string) string { return strings.TrimSuffix(scope, "/.default") }

// entraObjectID derives the object ID of an app's service principal in a
// tenant, stable like a real object's.
func entraObjectID(clientID, tenantID string) string {
	sum := sha256.Sum256([]byte(clientID + "/" + tenantID))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
