package azure

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"

	"github.com/identitychain/auth/internal/quote"
)

var (
	guidRegex = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// A DNS label: letters, digits and hyphens, not at either end.
	domainLabelRegex = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)
)

const nilGUID = "00000000-0000-0000-0000-000000000000"

// ValidateClientID checks that clientID is an application (client) ID as
// Entra defines them: a GUID, and not the nil GUID that examples use as a
// placeholder. The error says what is wrong; the ID in it is quoted,
// escaped and cut.
func ValidateClientID(clientID string) error {
	switch {
	case clientID == nilGUID:
		return fmt.Errorf("%s is the nil GUID, a placeholder: set the Application (client) ID of the app registration",
			quote.Tenant(clientID))
	case !guidRegex.MatchString(clientID):
		return fmt.Errorf("%s is not a GUID: it must look like 00001111-aaaa-2222-bbbb-3333cccc4444, "+
			"the Application (client) ID of the app registration", quote.Tenant(clientID))
	}
	return nil
}

// ValidateTenantID checks that tenantID names one tenant as Entra's token
// endpoint takes it: its ID (a GUID, not the nil one) or one of its
// verified domains (a DNS name of at least two labels, such as
// contoso.onmicrosoft.com). "common", "organizations" and "consumers"
// name no tenant, and client credentials need one.
func ValidateTenantID(tenantID string) error {
	switch strings.ToLower(tenantID) {
	case "common", "organizations", "consumers":
		return fmt.Errorf("%s names no tenant: client credentials need the ID or a verified domain of the "+
			"tenant to get the token in", quote.Tenant(tenantID))
	case nilGUID:
		return fmt.Errorf("%s is the nil GUID, a placeholder: set the ID of the tenant to get the token in",
			quote.Tenant(tenantID))
	}
	if guidRegex.MatchString(tenantID) || isDomain(tenantID) {
		return nil
	}
	return fmt.Errorf("%s is neither a tenant ID (a GUID such as aaaabbbb-0000-cccc-1111-dddd2222eeee) "+
		"nor a verified domain (such as contoso.onmicrosoft.com)", quote.Tenant(tenantID))
}

// isDomain reports whether s is a DNS name of at least two labels whose
// last label is not all digits (which would make it an IP address).
func isDomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !domainLabelRegex.MatchString(l) {
			return false
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}

// ExpiryMargin is how long a token must stay valid after the moment it is
// checked to be accepted. Entra grants access tokens for an hour or more,
// and managed identity endpoints renew theirs minutes before expiry, so a
// healthy source never comes this close. A reply that does is broken or
// comes from a clock minutes off, and caching it would hand callers a
// token that dies before it is used.
const ExpiryMargin = time.Minute

// ErrInvalidToken is wrapped by the errors of ValidateToken, and by those
// of Impersonate when Entra answers with a success whose token is
// unusable: such a reply is an error, never a token.
var ErrInvalidToken = errors.New("invalid Azure access token")

// ValidateToken checks that token is an Azure access token usable at now:
// a *Token with a Token and an ExpiresOn more than ExpiryMargin after now.
// It holds for every token the upstream sources return (workload identity,
// managed identity, the ServiceAccount's federated identity) and for the
// app's tokens of Impersonate.
//
// Errors wrap ErrInvalidToken, name every field that is wrong and never
// contain the token.
func (Provider) ValidateToken(token fluxauth.Token, now time.Time) error {
	t, ok := token.(*Token)
	switch {
	case !ok:
		return fmt.Errorf("%w: the token is %T, not *azure.Token", ErrInvalidToken, token)
	case t == nil:
		return fmt.Errorf("%w: the token is a nil *azure.Token", ErrInvalidToken)
	}
	var problems []string
	if t.Token == "" {
		problems = append(problems, "Token is empty")
	}
	switch {
	case t.ExpiresOn.IsZero():
		problems = append(problems, "ExpiresOn is missing")
	case !t.ExpiresOn.After(now.Add(ExpiryMargin)):
		problems = append(problems, fmt.Sprintf("ExpiresOn %s is not more than %s after the current time %s",
			t.ExpiresOn.UTC().Format(time.RFC3339), ExpiryMargin, now.UTC().Format(time.RFC3339)))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidToken, strings.Join(problems, "; "))
	}
	return nil
}
