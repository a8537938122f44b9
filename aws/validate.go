package aws

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	fluxauth "github.com/fluxcd/pkg/auth"
)

// ExpiryMargin is how long credentials must stay valid after the moment
// they are checked to be accepted. STS never grants less than 15 minutes and
// the EC2 instance metadata service rotates credentials at least 5 minutes
// before they expire, so a healthy source never comes this close. A reply
// that does is broken or comes from a clock minutes off, and caching it
// would hand callers credentials that die before they are used.
const ExpiryMargin = time.Minute

// ErrInvalidCredentials is wrapped by the errors of ValidateToken, and by
// those of Impersonate when STS answers with a success whose credentials
// fail ValidateToken: such a reply is an error, never a token.
var ErrInvalidCredentials = errors.New("invalid AWS credentials")

// ValidateToken checks that token is AWS credentials usable at now: a
// *Credentials with an AccessKeyId, a SecretAccessKey and a SessionToken,
// and an Expiration more than ExpiryMargin after now. It holds for every
// credential the upstream sources return (EKS Pod Identity, IRSA, web
// identity, instance metadata) and for AssumeRole replies. Long-lived
// access keys, which have neither a session token nor an expiry, fail it.
//
// Errors wrap ErrInvalidCredentials, name every field that is wrong and
// never contain a secret.
func (Provider) ValidateToken(token fluxauth.Token, now time.Time) error {
	creds, ok := token.(*Credentials)
	switch {
	case !ok:
		return fmt.Errorf("%w: the token is %T, not *aws.Credentials", ErrInvalidCredentials, token)
	case creds == nil:
		return fmt.Errorf("%w: the token is a nil *aws.Credentials", ErrInvalidCredentials)
	}
	var problems []string
	for _, f := range []struct {
		name  string
		value *string
	}{
		{"AccessKeyId", creds.AccessKeyId},
		{"SecretAccessKey", creds.SecretAccessKey},
		{"SessionToken", creds.SessionToken},
	} {
		if aws.ToString(f.value) == "" {
			problems = append(problems, f.name+" is empty")
		}
	}
	switch exp := creds.Expiration; {
	case exp == nil:
		problems = append(problems, "Expiration is missing")
	case exp.IsZero():
		problems = append(problems, "Expiration is zero")
	case !exp.After(now.Add(ExpiryMargin)):
		problems = append(problems, fmt.Sprintf("Expiration %s is not more than %s after the current time %s",
			exp.UTC().Format(time.RFC3339), ExpiryMargin, now.UTC().Format(time.RFC3339)))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidCredentials, strings.Join(problems, "; "))
	}
	return nil
}
