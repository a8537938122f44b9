package fakes

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	entraAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	entraMaxBody       = 64 << 10
	entraFICHelp       = "Please check your federated identity credential Subject, Audience and Issuer against the " +
		"presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
)

// entraRefusal is a refusal in Entra's words: the OAuth error, the AADSTS
// code and the first line of error_description.
type entraRefusal struct {
	status  int
	oauth   string
	code    int
	message string
}

func entraRefuse(oauth string, code int, format string, args ...any) *entraRefusal {
	status := http.StatusBadRequest
	if oauth == "invalid_client" {
		status = http.StatusUnauthorized
	}
	return &entraRefusal{status: status, oauth: oauth, code: code,
		message: fmt.Sprintf("AADSTS%d: ", code) + fmt.Sprintf(format, args...)}
}

func (e *Entra) serveHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.attempts++
	e.mu.Unlock()
	r.Body = http.MaxBytesReader(w, r.Body, entraMaxBody)
	_ = r.ParseForm() // errors are answered below, as a missing parameter
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 4 && parts[1] == "v2.0" && parts[2] == ".well-known" && parts[3] == "openid-configuration" &&
		r.Method == http.MethodGet:
		e.serveConfiguration(w, parts[0])
	case len(parts) == 4 && parts[1] == "oauth2" && parts[2] == "v2.0" && parts[3] == "token" && r.Method == http.MethodPost:
		e.serveToken(w, r, parts[0])
	default:
		http.NotFound(w, r)
	}
}

// tenant returns the ID of the tenant named by an ID or a verified domain.
func (e *Entra) tenant(name string) (string, *entraRefusal) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if id, ok := e.tenants[strings.ToLower(name)]; ok {
		return id, nil
	}
	return "", entraRefuse("invalid_tenant", 90002, "Tenant '%s' not found. Check to make sure you have the correct "+
		"tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may "+
		"happen if there are no active subscriptions for the tenant.", name)
}

// serveConfiguration answers the tenant's OpenID configuration, whose
// token endpoint MSAL then calls. The issuer is Entra's, which MSAL trusts
// whatever host served it.
func (e *Entra) serveConfiguration(w http.ResponseWriter, name string) {
	tenantID, refusal := e.tenant(name)
	if refusal != nil {
		entraWriteRefusal(w, refusal)
		return
	}
	entraWriteJSON(w, http.StatusOK, map[string]any{
		"issuer":                                EntraIssuer(tenantID),
		"token_endpoint":                        e.URL + "/" + tenantID + "/oauth2/v2.0/token",
		"authorization_endpoint":                e.URL + "/" + tenantID + "/oauth2/v2.0/authorize",
		"jwks_uri":                              e.URL + "/" + tenantID + "/discovery/v2.0/keys",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"tenant_region_scope":                   "EU",
	})
}

func (e *Entra) serveToken(w http.ResponseWriter, r *http.Request, name string) {
	call := EntraCall{Tenant: name, ClientID: r.PostForm.Get("client_id")}
	for s := range strings.FieldsSeq(r.PostForm.Get("scope")) {
		if s != "openid" && s != "profile" && s != "offline_access" {
			call.Scopes = append(call.Scopes, s)
		}
	}
	assertion := r.PostForm.Get("client_assertion")
	call.AssertionIssuer, call.AssertionSubject, _ = entraAssertionClaims(assertion)

	token, refusal := e.token(r.PostForm, name, call.Scopes, assertion)
	if refusal != nil {
		call.Err = "AADSTS" + strconv.Itoa(refusal.code)
	}
	e.mu.Lock()
	e.calls = append(e.calls, call)
	e.mu.Unlock()
	if refusal != nil {
		entraWriteRefusal(w, refusal)
		return
	}
	expiresIn := int(token.Expiry.Sub(e.now()).Seconds())
	entraWriteJSON(w, http.StatusOK, map[string]any{
		"token_type": "Bearer", "expires_in": expiresIn, "ext_expires_in": expiresIn, "access_token": token.token,
	})
}

// token runs Entra's checks of a client credentials request with a client
// assertion, in Entra's order, and mints the token.
func (e *Entra) token(form url.Values, name string, scopes []string, assertion string) (mintedToken, *entraRefusal) {
	tenantID, refusal := e.tenant(name)
	if refusal != nil {
		return mintedToken{}, refusal
	}
	if g := form.Get("grant_type"); g != "client_credentials" {
		return mintedToken{}, entraRefuse("unsupported_grant_type", 70003,
			"The app requested an unsupported grant type '%s'.", g)
	}
	clientID := form.Get("client_id")
	if clientID == "" {
		return mintedToken{}, entraRefuse("invalid_request", 900144,
			"The request body must contain the following parameter: 'client_id'.")
	}
	switch {
	case len(scopes) == 0:
		return mintedToken{}, entraRefuse("invalid_request", 900144,
			"The request body must contain the following parameter: 'scope'.")
	case len(scopes) > 1 || !strings.HasSuffix(scopes[0], "/.default"):
		return mintedToken{}, entraRefuse("invalid_scope", 1002012, "The provided value for scope %s is not valid. "+
			"Client credential flows must have a scope value with /.default suffixed to the resource identifier "+
			"(application ID URI).", strings.Join(scopes, " "))
	}

	e.mu.Lock()
	c := e.clients[strings.ToLower(clientID)]
	var objectID string
	var fics []entraFIC
	if c != nil {
		objectID = c.principals[tenantID]
		fics = slices.Clone(c.fics)
	}
	e.mu.Unlock()
	if objectID == "" {
		return mintedToken{}, entraRefuse("unauthorized_client", 700016, "Application with identifier '%s' was not "+
			"found in the directory '%s'. This can happen if the application has not been installed by the "+
			"administrator of the tenant or consented to by any user in the tenant. You may have sent your "+
			"authentication request to the wrong tenant.", clientID, name)
	}

	if form.Get("client_assertion_type") != entraAssertionType || assertion == "" {
		return mintedToken{}, entraRefuse("invalid_client", 7000218,
			"The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}
	iss, sub, aud := entraAssertionClaims(assertion)
	if iss == "" {
		return mintedToken{}, entraRefuse("invalid_client", 50027, "JWT token is invalid or malformed.")
	}
	fic, refusal := entraMatchFIC(fics, iss, sub, aud)
	if refusal != nil {
		return mintedToken{}, refusal
	}
	if refusal := e.validAssertion(assertion, fic); refusal != nil {
		return mintedToken{}, refusal
	}
	return e.mint(tenantID, c, objectID, scopes), nil
}

// entraMatchFIC finds the federated identity credential that trusts an
// assertion, or says which claim none matches.
func entraMatchFIC(fics []entraFIC, iss, sub string, aud []string) (entraFIC, *entraRefusal) {
	if len(fics) == 0 {
		return entraFIC{}, entraRefuse("invalid_client", 70021, "No matching federated identity record found for "+
			"presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'. "+
			"https://learn.microsoft.com/entra/workload-id/workload-identity-federation", iss, sub, strings.Join(aud, ","))
	}
	var issuerMatch, subjectMatch bool
	for _, f := range fics {
		if f.issuer != iss {
			continue
		}
		issuerMatch = true
		if f.subject != sub {
			continue
		}
		subjectMatch = true
		if slices.Contains(aud, f.audience) {
			return f, nil
		}
	}
	switch {
	case !issuerMatch:
		return entraFIC{}, entraRefuse("invalid_client", 700211, "No matching federated identity record found for "+
			"presented assertion issuer '%s'. %s", iss, entraFICHelp)
	case !subjectMatch:
		return entraFIC{}, entraRefuse("invalid_client", 700213, "No matching federated identity record found for "+
			"presented assertion subject '%s'. %s", sub, entraFICHelp)
	}
	return entraFIC{}, entraRefuse("invalid_client", 700212, "No matching federated identity record found for "+
		"presented assertion audience '%s'. %s", strings.Join(aud, ","), entraFICHelp)
}

// validAssertion checks an assertion that a credential trusts: a token of
// this fake not expired, or one an issuer given to TrustIssuer signed.
func (e *Entra) validAssertion(assertion string, fic entraFIC) *entraRefusal {
	expired := entraRefuse("invalid_client", 700024, "Client assertion is not within its valid time range.")
	switch _, reason := e.lookup(assertion); reason {
	case "":
		return nil
	case "expired":
		return expired
	}
	if strings.HasPrefix(fic.issuer, entraIssuerBase) {
		// Entra's own issuer, whose tokens are the ones it minted: this one
		// is not, so its signature is not Entra's.
		return entraRefuse("invalid_client", 700027, "Client assertion failed signature validation.")
	}
	e.mu.Lock()
	iss := e.issuers[fic.issuer]
	e.mu.Unlock()
	if iss == nil {
		return entraRefuse("invalid_client", 90061, "Request to External OIDC endpoint failed.")
	}
	_, err := iss.verifyAt(assertion, fic.audience, e.now())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrExpired), errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, errIssuerNoExpiry):
		return expired
	case errors.Is(err, errIssuerBadSignature):
		return entraRefuse("invalid_client", 700027, "Client assertion failed signature validation.")
	}
	return entraRefuse("invalid_client", 50027, "JWT token is invalid or malformed.")
}

// entraAssertionAlgorithms are those of the assertions Entra takes: its own
// tokens (RS256, ES256 here) and those of Kubernetes issuers.
var entraAssertionAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384, jose.ES512}

// entraAssertionClaims reads iss, sub and aud of a JWT without verifying
// it; iss is "" when it is not a JWT.
func entraAssertionClaims(assertion string) (iss, sub string, aud []string) {
	if assertion == "" || len(assertion) > entraMaxBody {
		return "", "", nil
	}
	parsed, err := jwt.ParseSigned(assertion, entraAssertionAlgorithms)
	if err != nil {
		return "", "", nil
	}
	var claims jwt.Claims
	if err := parsed.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return "", "", nil
	}
	return claims.Issuer, claims.Subject, claims.Audience
}

// entraWriteRefusal writes a refusal as Entra does: JSON with the OAuth
// error, the description followed by trace and correlation IDs, and the
// codes.
func entraWriteRefusal(w http.ResponseWriter, r *entraRefusal) {
	trace, correlation := entraID(), entraID()
	entraWriteJSON(w, r.status, map[string]any{
		"error": r.oauth,
		"error_description": r.message + "\r\nTrace ID: " + trace + "\r\nCorrelation ID: " + correlation +
			"\r\nTimestamp: 2026-01-01 00:00:00Z",
		"error_codes":    []int{r.code},
		"timestamp":      "2026-01-01 00:00:00Z",
		"trace_id":       trace,
		"correlation_id": correlation,
		"error_uri":      "https://login.microsoftonline.com/error?code=" + strconv.Itoa(r.code),
	})
}

func entraWriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client hung up; nothing to tell
}

// entraID is a random GUID, as Entra's trace and correlation IDs.
func entraID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
