package gcp

import (
	"errors"
	"fmt"
	"strings"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
)

// ExpiryMargin is how long a token must stay valid after the moment it is
// checked to be accepted. Google grants access tokens for an hour unless
// asked for less (we never ask for less than an hour), and the metadata
// server renews its tokens minutes before they expire, so a healthy source
// never comes this close. A reply that does is broken or comes from a clock
// minutes off, and caching it would hand callers a token that dies before
// it is used.
const ExpiryMargin = time.Minute

// ErrInvalidToken is wrapped by the errors of ValidateToken, and by those
// of Impersonate when IAM Credentials answers with a success whose token
// is unusable: such a reply is an error, never a token.
var ErrInvalidToken = errors.New("invalid GCP access token")

// ValidateToken checks that token is a GCP access token usable at now: a
// *Token with an AccessToken and an Expiry more than ExpiryMargin after now.
// It holds for every token the upstream sources return (GKE metadata server,
// Google STS, impersonation through Google STS) and for generateAccessToken
// replies.
//
// Errors wrap ErrInvalidToken, name every field that is wrong and never
// contain the token.
func (Provider) ValidateToken(token fluxauth.Token, now time.Time) error {
	t, ok := token.(*Token)
	switch {
	case !ok:
		return fmt.Errorf("%w: the token is %T, not *gcp.Token", ErrInvalidToken, token)
	case t == nil:
		return fmt.Errorf("%w: the token is a nil *gcp.Token", ErrInvalidToken)
	}
	var problems []string
	if t.AccessToken == "" {
		problems = append(problems, "AccessToken is empty")
	}
	if t.Expiry.IsZero() {
		problems = append(problems, "Expiry is missing")
	} else if p := expiryProblem("Expiry", t.Expiry, now); p != "" {
		problems = append(problems, p)
	}
	return invalid(problems)
}

// expiryProblem says what is wrong with expiry at now, or returns "".
func expiryProblem(field string, expiry, now time.Time) string {
	if expiry.After(now.Add(ExpiryMargin)) {
		return ""
	}
	return fmt.Sprintf("%s %s is not more than %s after the current time %s", field,
		expiry.UTC().Format(time.RFC3339), ExpiryMargin, now.UTC().Format(time.RFC3339))
}

// invalid returns nil without problems, or an ErrInvalidToken listing them.
func invalid(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidToken, strings.Join(problems, "; "))
}
