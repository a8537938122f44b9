package fakes

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// Source identity: the SourceIdentity parameter of AssumeRole, which names
// who stands behind a role session (here: the ServiceAccount a controller
// acts for). Unlike the session name, it cannot be changed once set: every
// session chained from one with a source identity has it too. Setting it,
// or carrying it into a chained session, needs sts:SetSourceIdentity in
// the target's trust (AllowSetSourceIdentity), and the trust may pin its
// value (RequireSourceIdentity).

// awsSourceIdentityPattern is the declared pattern of SourceIdentity.
var awsSourceIdentityPattern = regexp.MustCompile(`^[\w+=,.@-]*$`)

const (
	awsMinSourceIdentityLength = 2
	awsMaxSourceIdentityLength = 64
)

// RequireSourceIdentity makes the trust policy require sts:SourceIdentity
// == value (StringEquals, case-sensitive). A value ending in '*' is a
// StringLike prefix match: "flux-system.*" holds for every source identity
// starting with "flux-system.". The condition holds for the source identity
// the new session gets, whether the request sends it or the calling session
// passes its own on, as AWS puts both in sts:SourceIdentity; it never holds
// for a session without one. A request it does not hold for is refused with
// the AccessDenied of an untrusted caller. Several RequireSourceIdentity
// options on one statement must all hold.
func RequireSourceIdentity(value string) TrustOption {
	return func(t *awsTrust) { t.sourceIdentities = append(t.sourceIdentities, value) }
}

// AllowSetSourceIdentity makes the trust policy allow sts:SetSourceIdentity
// as well as sts:AssumeRole, which AssumeRole needs when the new session
// gets a source identity: one the request sends, or the one the calling
// session passes on.
func AllowSetSourceIdentity() TrustOption {
	return func(t *awsTrust) { t.setSourceIdentity = true }
}

// SessionSourceIdentity returns the source identity of the session the
// access key belongs to, "" when it has none. ok is false when the fake did
// not issue the key.
func (s *AWSSTS) SessionSourceIdentity(accessKeyID string) (sourceIdentity string, ok bool) {
	s.mu.RLock()
	issued, ok := s.creds[accessKeyID]
	s.mu.RUnlock()
	return issued.sourceIdentity, ok
}

// awsSourceIdentityMatches reports whether the sts:SourceIdentity condition
// want holds for the source identity got ("" when the request has none).
func awsSourceIdentityMatches(want, got string) bool {
	if got == "" {
		return false
	}
	if prefix, like := strings.CutSuffix(want, "*"); like {
		return strings.HasPrefix(got, prefix)
	}
	return got == want
}

// awsValidateSourceIdentity checks the declared constraints of
// SourceIdentity, when sent. A value starting with "aws:", which AWS
// reserves, needs no check of its own: ':' is outside the declared pattern,
// so STS refuses such a value with the pattern's ValidationError, as the
// fake does.
func awsValidateSourceIdentity(id *string) *awsError {
	if id == nil {
		return nil
	}
	if c, ok := awsLengthConstraint(*id, awsMinSourceIdentityLength, awsMaxSourceIdentityLength); !ok {
		return awsValidationError(id, "sourceIdentity", c)
	}
	if !awsSourceIdentityPattern.MatchString(*id) {
		return awsValidationError(id, "sourceIdentity", `Member must satisfy regular expression pattern: [\w+=,.@-]*`)
	}
	return nil
}

// awsSessionSourceIdentity returns the source identity of the session that
// caller's AssumeRole of target with p creates: the one the caller has,
// which it cannot change, else the one p sends; "" when neither. A request
// sending another than the caller's is refused with AccessDenied, as AWS
// documents ("the assume role request will be denied"); the end of the
// message, after the action and resource, is the fake's.
func awsSessionSourceIdentity(caller *awsIssued, target string, p awsSessionParams) (string, *awsError) {
	switch {
	case caller.sourceIdentity == "":
		if p.sourceIdentity == nil {
			return "", nil
		}
		return *p.sourceIdentity, nil
	case p.sourceIdentity != nil && *p.sourceIdentity != caller.sourceIdentity:
		return "", &awsError{http.StatusForbidden, "AccessDenied", fmt.Sprintf(
			"User: %s is not authorized to perform: %s on resource: %s because the source identity of the calling session cannot be changed",
			awsAssumedRoleUser(caller.roleARN, caller.sessionName).Arn, awsActionSetSourceIdentity, target)}
	default:
		return caller.sourceIdentity, nil
	}
}
