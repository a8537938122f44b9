package azure

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/identitychain/auth/internal/quote"
)

// Errors Impersonate wraps, with what to change, when Entra's refusal needs
// a change in Entra rather than in the annotation's syntax.
var (
	// ErrNoFederatedCredential: the app registration (or, for upstream's
	// exchange of a ServiceAccount's token, the managed identity) has no
	// federated identity credential with the issuer, subject and audience
	// of the source token (AADSTS70021, AADSTS700211, AADSTS700212,
	// AADSTS700213).
	ErrNoFederatedCredential = errors.New("no federated identity credential trusts the source identity")
	// ErrAppNotInTenant: the app has no service principal in the target
	// tenant (AADSTS700016): nobody granted it consent there, it is not
	// multi-tenant, or the client ID is wrong.
	ErrAppNotInTenant = errors.New("the app has no service principal in the target tenant")
	// ErrTenantNotFound: Entra knows no tenant by the annotation's tenantID
	// (AADSTS90002).
	ErrTenantNotFound = errors.New("entra knows no such tenant")
)

// EntraError is a refusal by Microsoft Entra ID's token endpoint, on one
// line and without its trace IDs: azidentity's own error prints the whole
// reply. errors.As still reaches the *azidentity.AuthenticationFailedError.
type EntraError struct {
	// StatusCode is the HTTP status of the reply.
	StatusCode int
	// Code is Entra's error code, e.g. "AADSTS70021"; "" when the reply is
	// not Entra's JSON.
	Code string
	// Message is the first sentence of Entra's error_description, or a
	// short prefix of a reply that is not Entra's JSON, escaped and cut.
	Message string

	err error
}

// Error is Entra's refusal on one line: status, code and first sentence,
// without trace IDs or anything secret.
func (e *EntraError) Error() string {
	msg := fmt.Sprintf("HTTP %d", e.StatusCode)
	switch {
	case e.Code != "" && !strings.HasPrefix(e.Message, e.Code):
		msg += ": " + e.Code
		if e.Message != "" {
			msg += ": " + e.Message
		}
	case e.Message != "":
		msg += ": " + e.Message
	}
	return msg
}

// Unwrap returns azidentity's error, for errors.As.
func (e *EntraError) Unwrap() error { return e.err }

// Limits on what is read of a reply: Entra's errors are about 1 KiB, and a
// message shows one sentence.
const (
	entraMaxReply   = 64 << 10
	entraMaxMessage = 256
	entraMaxPrefix  = 64
)

var entraCodeRegex = regexp.MustCompile(`^AADSTS(\d+)`)

// newEntraError reads what Entra said from the reply azidentity kept, or
// returns nil when err carries no reply (a network error, a timeout).
func newEntraError(err error) *EntraError {
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil {
		return nil
	}
	e := &EntraError{StatusCode: afe.RawResponse.StatusCode, err: err}
	body, _ := runtime.Payload(afe.RawResponse) // MSAL read and kept it
	var reply struct {
		Description string `json:"error_description"`
		Codes       []int  `json:"error_codes"`
	}
	if len(body) > entraMaxReply || json.Unmarshal(body, &reply) != nil || reply.Description == "" {
		e.Message = quote.Clean(string(bytes.TrimSpace(body)), entraMaxPrefix)
		return e
	}
	line, _, _ := strings.Cut(reply.Description, "\n")
	line = strings.TrimSpace(line)
	if i := strings.Index(line, ". "); i >= 0 {
		line = line[:i]
	}
	e.Message = quote.Clean(strings.TrimSuffix(line, "."), entraMaxMessage)
	switch m := entraCodeRegex.FindStringSubmatch(line); {
	case len(reply.Codes) > 0:
		e.Code = "AADSTS" + strconv.Itoa(reply.Codes[0])
	case m != nil:
		e.Code = "AADSTS" + m[1]
	}
	return e
}

// entraRefusal returns the error of a failed token request for app in
// tenant: an *EntraError when Entra answered, followed by what to change
// when the refusal is one a person fixes in Entra. assertion is the source
// token, whose issuer and subject the missing federated credential needs.
func entraRefusal(err error, app, tenant, assertion string) error {
	e := newEntraError(err)
	if e == nil {
		return err
	}
	switch e.Code {
	case "AADSTS70021", "AADSTS700211", "AADSTS700212", "AADSTS700213":
		return fmt.Errorf("%w. %w: add one to app registration %s with %s and audience %s",
			e, ErrNoFederatedCredential, quote.Tenant(app), managedIdentityToken.issuerAndSubject(assertion),
			quote.Tenant(TokenExchangeAudience))
	case "AADSTS700016":
		return fmt.Errorf("%w. %w: check the annotation's clientID; if it is right, an administrator of tenant %s "+
			"grants the app admin consent ('az ad sp create --id %s', signed in to that tenant), and the app "+
			"registration must be multi-tenant", e, ErrAppNotInTenant, quote.Tenant(tenant), quote.Clean(app, 64))
	case "AADSTS90002":
		return fmt.Errorf("%w. %w: check the annotation's tenantID %s, the ID or a verified domain of the tenant "+
			"to get the app's token in", e, ErrTenantNotFound, quote.Tenant(tenant))
	}
	return e
}

// oneLine returns err with Entra's reply, if any, as an *EntraError.
func oneLine(err error) error {
	if e := newEntraError(err); e != nil {
		return e
	}
	return err
}

// sourceRefusal returns the error of upstream's exchange of a
// ServiceAccount's token for its managed identity's: azidentity's error
// prints Entra's whole reply, so it is an *EntraError on one line, followed
// by the federated credential to create when the managed identity has none
// for the ServiceAccount.
func sourceRefusal(err error, managedIdentity, kubeToken string) error {
	e := newEntraError(err)
	if e == nil {
		return err
	}
	switch e.Code {
	case "AADSTS70021", "AADSTS700211", "AADSTS700212", "AADSTS700213":
		return fmt.Errorf("%w. %w: add one to managed identity %s with %s and audience %s",
			e, ErrNoFederatedCredential, quote.Tenant(managedIdentity), kubernetesToken.issuerAndSubject(kubeToken),
			quote.Tenant(TokenExchangeAudience))
	}
	return e
}

// assertionKind says what a client assertion is, to name its issuer and
// subject when they cannot be read from it.
type assertionKind struct {
	subjectIs, issuerRule, subjectRule string
}

var (
	managedIdentityToken = assertionKind{
		subjectIs:   "the principal ID of the source managed identity",
		issuerRule:  "https://login.microsoftonline.com/<tenant ID of the source managed identity>/v2.0",
		subjectRule: "the principal (object) ID of the source managed identity",
	}
	kubernetesToken = assertionKind{
		subjectIs:   "the Kubernetes service account",
		issuerRule:  "the cluster's service account issuer (its OIDC issuer URL)",
		subjectRule: "system:serviceaccount:<namespace>:<name>",
	}
)

// issuerAndSubject names the issuer and subject of a federated credential
// that trusts assertion: Entra matches the credential against the token's
// iss and sub claims (a managed identity's sub is its principal ID). A
// token whose claims cannot be read gets the rule instead.
func (k assertionKind) issuerAndSubject(assertion string) string {
	iss, sub := unverifiedClaims(assertion)
	if iss == "" || sub == "" {
		return fmt.Sprintf("issuer %s, subject %s,", k.issuerRule, k.subjectRule)
	}
	return fmt.Sprintf("issuer %s, subject %s (%s)", quote.Tenant(iss), quote.Tenant(sub), k.subjectIs)
}

// unverifiedClaims reads the iss and sub claims of a JWT without checking
// it, only to name them; "" for what cannot be read.
func unverifiedClaims(token string) (iss, sub string) {
	parts := strings.SplitN(token, ".", 4)
	if len(parts) != 3 || len(parts[1]) > entraMaxReply {
		return "", ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", ""
	}
	var claims struct {
		Issuer  string `json:"iss"`
		Subject string `json:"sub"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return "", ""
	}
	return claims.Issuer, claims.Subject
}
