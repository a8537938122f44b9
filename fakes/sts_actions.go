package fakes

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Constraints real STS applies to request parameters.
var (
	awsRoleARNPattern     = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role/((?:[\w+=,.@-]+/)*)([\w+=,.@-]{1,64})$`)
	awsSessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]*$`)
)

const (
	awsMinDurationSeconds = 900
	awsMaxDurationSeconds = 43200
)

type awsCredentialsXML struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration,omitempty"`
}

type awsAssumedRoleUserXML struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

type awsAssumeRoleResponse struct {
	XMLName         xml.Name              `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleResponse"`
	AssumedRoleUser awsAssumedRoleUserXML `xml:"AssumeRoleResult>AssumedRoleUser"`
	Credentials     awsCredentialsXML     `xml:"AssumeRoleResult>Credentials"`
	SourceIdentity  string                `xml:"AssumeRoleResult>SourceIdentity,omitempty"`
	RequestID       string                `xml:"ResponseMetadata>RequestId"`
}

type awsAssumeRoleWithWebIdentityResponse struct {
	XMLName         xml.Name              `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleWithWebIdentityResponse"`
	Subject         string                `xml:"AssumeRoleWithWebIdentityResult>SubjectFromWebIdentityToken"`
	Audience        string                `xml:"AssumeRoleWithWebIdentityResult>Audience"`
	AssumedRoleUser awsAssumedRoleUserXML `xml:"AssumeRoleWithWebIdentityResult>AssumedRoleUser"`
	Credentials     awsCredentialsXML     `xml:"AssumeRoleWithWebIdentityResult>Credentials"`
	Provider        string                `xml:"AssumeRoleWithWebIdentityResult>Provider"`
	RequestID       string                `xml:"ResponseMetadata>RequestId"`
}

type awsGetCallerIdentityResponse struct {
	XMLName   xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetCallerIdentityResponse"`
	Arn       string   `xml:"GetCallerIdentityResult>Arn"`
	UserID    string   `xml:"GetCallerIdentityResult>UserId"`
	Account   string   `xml:"GetCallerIdentityResult>Account"`
	RequestID string   `xml:"ResponseMetadata>RequestId"`
}

func (s *AWSSTS) assumeRoleWithWebIdentity(params url.Values, requestID string, fault Fault, call *AWSSTSCall) (any, *awsError) {
	call.RoleARN = params.Get("RoleArn")
	call.RoleSessionName = params.Get("RoleSessionName")
	session := awsParseSessionParams(params)
	session.record(call)
	sourceIdentity, setsSourceIdentity := awsTokenSourceIdentity(params.Get("WebIdentityToken"))
	call.SourceIdentity = sourceIdentity
	ttl, serr := s.validateAssumeRoleParams(params, "webIdentityToken", "WebIdentityToken", session, false)
	if serr != nil {
		return nil, serr
	}
	if time.Duration(session.durationSeconds)*time.Second > s.maxSessionDurationOf(call.RoleARN) {
		return nil, &awsError{http.StatusBadRequest, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."}
	}
	policies, serr := s.sessionPolicies(session)
	if serr != nil {
		return nil, serr
	}

	claims, serr := s.verifyWebIdentityToken(params.Get("WebIdentityToken"))
	if serr != nil {
		return nil, serr
	}
	call.Caller = claims.Subject

	s.mu.RLock()
	trusted := s.webIdentityTrust[call.RoleARN][claims.Subject]
	s.mu.RUnlock()
	if !trusted {
		return nil, &awsError{http.StatusForbidden, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"}
	}
	if setsSourceIdentity {
		// The trust AllowWebIdentity models allows only
		// sts:AssumeRoleWithWebIdentity, and AWS fails the call when the
		// token sets a source identity without sts:SetSourceIdentity. The
		// wording is modelled on the refusal above.
		return nil, &awsError{http.StatusForbidden, "AccessDenied", "Not authorized to perform sts:SetSourceIdentity"}
	}

	creds := s.issueSession(awsIssued{
		roleARN:     call.RoleARN,
		sessionName: call.RoleSessionName,
		policies:    policies,
	}, fault.lifetime(ttl))
	return awsAssumeRoleWithWebIdentityResponse{
		Subject:         claims.Subject,
		Audience:        awsSTSAudience,
		AssumedRoleUser: awsAssumedRoleUser(call.RoleARN, call.RoleSessionName),
		Credentials:     awsCredentialsToXML(creds, fault),
		Provider:        claims.Issuer,
		RequestID:       requestID,
	}, nil
}

// awsSourceIdentityClaim is the claim of a web identity token that sets the
// session's source identity.
const awsSourceIdentityClaim = "https://aws.amazon.com/source_identity"

// awsTokenSourceIdentity returns the source identity claim of a web
// identity token, as sent and unverified: its string value, or its JSON
// text when it is not a string. ok is false when the token has none or is
// no JWT.
func awsTokenSourceIdentity(token string) (sourceIdentity string, ok bool) {
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return "", false
	}
	var claims map[string]json.RawMessage
	if parsed.UnsafeClaimsWithoutVerification(&claims) != nil {
		return "", false
	}
	raw, ok := claims[awsSourceIdentityClaim]
	if !ok {
		return "", false
	}
	if json.Unmarshal(raw, &sourceIdentity) != nil {
		sourceIdentity = string(raw)
	}
	return sourceIdentity, true
}

// verifyWebIdentityToken checks the token the way STS checks it against a
// registered IAM OIDC provider, mapping failures to STS error codes.
func (s *AWSSTS) verifyWebIdentityToken(token string) (jwt.Claims, *awsError) {
	invalid := func(msg string) *awsError {
		return &awsError{http.StatusBadRequest, "InvalidIdentityToken", msg}
	}
	// STS finds the OIDC provider by the unverified iss claim first.
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return jwt.Claims{}, invalid("The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
	}
	var unverified jwt.Claims
	if err := parsed.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return jwt.Claims{}, invalid("The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
	}
	if s.issuer == nil || unverified.Issuer != s.issuer.URL() {
		return jwt.Claims{}, invalid(fmt.Sprintf("No OpenIDConnect provider found in your account for %s", unverified.Issuer))
	}

	now := s.now()
	claims, err := s.issuer.verifyAt(token, awsSTSAudience, now)
	switch {
	case err == nil:
		return claims, nil
	case errors.Is(err, jwt.ErrExpired):
		return jwt.Claims{}, &awsError{http.StatusBadRequest, "ExpiredTokenException", fmt.Sprintf(
			"Token expired: current date/time %d must be before the expiration date/time %d",
			now.Unix(), claims.Expiry.Time().Unix())}
	case errors.Is(err, errIssuerWrongAudience):
		return jwt.Claims{}, invalid("Incorrect token audience")
	case errors.Is(err, errIssuerBadSignature):
		return jwt.Claims{}, invalid("Couldn't verify the signature of the web identity token with the keys of the OpenIDConnect provider")
	case errors.Is(err, errIssuerNoExpiry):
		return jwt.Claims{}, invalid("Missing a required claim: exp")
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return jwt.Claims{}, invalid("Token is not yet valid")
	default:
		return jwt.Claims{}, invalid("The web identity token is invalid")
	}
}

func (s *AWSSTS) assumeRole(r *http.Request, body []byte, params url.Values, requestID string, fault Fault, call *AWSSTSCall) (any, *awsError) {
	call.RoleARN = params.Get("RoleArn")
	call.RoleSessionName = params.Get("RoleSessionName")
	session := awsParseSessionParams(params)
	session.record(call)
	// Real STS authenticates before it validates parameters.
	caller, region, serr := s.authenticate(r, body)
	call.Region = region
	if caller != nil {
		call.Caller = caller.roleARN
	}
	if serr != nil {
		return nil, serr
	}
	ttl, serr := s.validateAssumeRoleParams(params, "", "", session, true)
	if serr != nil {
		return nil, serr
	}
	// The caller always holds role session credentials: AssumeRole is
	// role chaining, whose sessions STS caps at one hour.
	if time.Duration(session.durationSeconds)*time.Second > awsRoleChainingLimit {
		return nil, &awsError{http.StatusBadRequest, "ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."}
	}
	policies, serr := s.sessionPolicies(session)
	if serr != nil {
		return nil, serr
	}
	tags, transitiveKeys, serr := awsSessionTags(caller, session)
	if serr != nil {
		return nil, serr
	}
	sourceIdentity, serr := awsSessionSourceIdentity(caller, call.RoleARN, session)
	if serr != nil {
		return nil, serr
	}
	c := awsTrustContext{externalID: session.externalID, tags: tags, sourceIdentity: sourceIdentity}
	if serr := s.authorizeAssumeRole(caller, call.RoleARN, session, c); serr != nil {
		return nil, serr
	}

	creds := s.issueSession(awsIssued{
		roleARN:        call.RoleARN,
		sessionName:    call.RoleSessionName,
		tags:           tags,
		transitiveKeys: transitiveKeys,
		policies:       policies,
		sourceIdentity: sourceIdentity,
	}, fault.lifetime(ttl))
	call.SessionTags = maps.Clone(tags)
	return awsAssumeRoleResponse{
		AssumedRoleUser: awsAssumedRoleUser(call.RoleARN, call.RoleSessionName),
		Credentials:     awsCredentialsToXML(creds, fault),
		SourceIdentity:  sourceIdentity,
		RequestID:       requestID,
	}, nil
}

// authorizeAssumeRole checks that caller may assume target with the
// request's parameters, whose request context is c: the target's trust
// must allow sts:AssumeRole by the caller's role under its conditions,
// sts:TagSession when the session gets tags, requested or inherited, and
// sts:SetSourceIdentity when it gets a source identity, sent or inherited;
// the caller's session policies, if any, must allow sts:AssumeRole,
// sts:TagSession when the request passes tags, and sts:SetSourceIdentity
// when the session gets a source identity. Trust refusals never say which
// condition failed, as on AWS.
func (s *AWSSTS) authorizeAssumeRole(caller *awsIssued, target string, p awsSessionParams, c awsTrustContext) *awsError {
	denied := func(action, why string) *awsError {
		return &awsError{http.StatusForbidden, "AccessDenied", fmt.Sprintf(
			"User: %s is not authorized to perform: %s on resource: %s%s",
			awsAssumedRoleUser(caller.roleARN, caller.sessionName).Arn, action, target, why)}
	}
	if !s.trusts(target, caller.roleARN, awsActionAssumeRole, c) {
		return denied(awsActionAssumeRole, "")
	}
	if why := caller.sessionPolicyRefusal(awsActionAssumeRole, target); why != "" {
		return denied(awsActionAssumeRole, why)
	}
	if p.carriesTags() || len(caller.transitiveKeys) > 0 {
		if !s.trusts(target, caller.roleARN, awsActionTagSession, c) {
			return denied(awsActionTagSession, "")
		}
		if p.carriesTags() {
			if why := caller.sessionPolicyRefusal(awsActionTagSession, target); why != "" {
				return denied(awsActionTagSession, why)
			}
		}
	}
	if c.sourceIdentity != "" {
		// Sent or inherited alike: AWS requires sts:SetSourceIdentity of
		// both the target's trust and the caller's permissions when a
		// session with a source identity chains to another role.
		if !s.trusts(target, caller.roleARN, awsActionSetSourceIdentity, c) {
			return denied(awsActionSetSourceIdentity, "")
		}
		if why := caller.sessionPolicyRefusal(awsActionSetSourceIdentity, target); why != "" {
			return denied(awsActionSetSourceIdentity, why)
		}
	}
	return nil
}

func (s *AWSSTS) getCallerIdentity(r *http.Request, body []byte, requestID string, call *AWSSTSCall) (any, *awsError) {
	caller, region, serr := s.authenticate(r, body)
	call.Region = region
	if caller != nil {
		call.Caller = caller.roleARN
	}
	if serr != nil {
		return nil, serr
	}
	account, _, _ := awsParseRoleARN(caller.roleARN)
	user := awsAssumedRoleUser(caller.roleARN, caller.sessionName)
	return awsGetCallerIdentityResponse{
		Arn:       user.Arn,
		UserID:    user.AssumedRoleID,
		Account:   account,
		RequestID: requestID,
	}, nil
}

// validateAssumeRoleParams checks RoleArn, RoleSessionName, DurationSeconds,
// when tokenParam is set that the token parameter is present, and the
// declared constraints of the session parameters, those of AssumeRole only
// (ExternalId, Tags, TransitiveTagKeys, SourceIdentity) when assumeRole is
// set. It returns the lifetime of the credentials to issue.
func (s *AWSSTS) validateAssumeRoleParams(params url.Values, tokenMember, tokenParam string,
	sessionParams awsSessionParams, assumeRole bool) (time.Duration, *awsError) {
	invalid := func(msg string) *awsError {
		return &awsError{http.StatusBadRequest, "ValidationError", msg}
	}
	notNull := func(member string) *awsError {
		return invalid(fmt.Sprintf("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member))
	}

	roleARN, ok := params["RoleArn"]
	if !ok {
		return 0, notNull("roleArn")
	}
	if len(roleARN[0]) < 20 || len(roleARN[0]) > 2048 {
		return 0, invalid(fmt.Sprintf("1 validation error detected: Value '%s' at 'roleArn' failed to satisfy constraint: Member must have length between 20 and 2048", roleARN[0]))
	}
	session, ok := params["RoleSessionName"]
	if !ok {
		return 0, notNull("roleSessionName")
	}
	switch {
	case len(session[0]) < 2:
		return 0, invalid(fmt.Sprintf("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2", session[0]))
	case len(session[0]) > 64:
		return 0, invalid(fmt.Sprintf("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must have length less than or equal to 64", session[0]))
	case !awsSessionNamePattern.MatchString(session[0]):
		return 0, invalid(fmt.Sprintf("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*", session[0]))
	}
	if tokenParam != "" && params.Get(tokenParam) == "" {
		return 0, notNull(tokenMember)
	}

	ttl := s.ttl
	if d := params.Get("DurationSeconds"); d != "" {
		n, err := strconv.Atoi(d)
		switch {
		case err != nil:
			return 0, invalid(fmt.Sprintf("Value '%s' for parameter DurationSeconds is invalid. It must be an integer", d))
		case n < awsMinDurationSeconds:
			return 0, invalid(fmt.Sprintf("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to %d", n, awsMinDurationSeconds))
		case n > awsMaxDurationSeconds:
			return 0, invalid(fmt.Sprintf("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to %d", n, awsMaxDurationSeconds))
		}
		ttl = min(ttl, time.Duration(n)*time.Second)
	}
	if serr := sessionParams.validate(assumeRole); serr != nil {
		return 0, serr
	}

	// STS checks the ARN's shape after the declared constraints.
	if _, _, ok := awsParseRoleARN(roleARN[0]); !ok {
		return 0, invalid("Request ARN is invalid")
	}
	return ttl, nil
}

// awsParseRoleARN returns the account ID and role name of an IAM role ARN.
func awsParseRoleARN(roleARN string) (account, name string, ok bool) {
	m := awsRoleARNPattern.FindStringSubmatch(roleARN)
	if m == nil {
		return "", "", false
	}
	return m[2], m[4], true
}

// awsAssumedRoleUser returns the identity STS reports for a session of
// roleARN: arn:aws:sts::<account>:assumed-role/<name>/<session>.
func awsAssumedRoleUser(roleARN, sessionName string) awsAssumedRoleUserXML {
	partition := "aws"
	if p := strings.SplitN(roleARN, ":", 3); len(p) == 3 {
		partition = p[1]
	}
	account, name, _ := awsParseRoleARN(roleARN)
	return awsAssumedRoleUserXML{
		Arn:           "arn:" + partition + ":sts::" + account + ":assumed-role/" + name + "/" + sessionName,
		AssumedRoleID: awsRoleID(roleARN) + ":" + sessionName,
	}
}

// awsCredentialsToXML renders c as STS does, altered by an injected bad
// success.
func awsCredentialsToXML(c aws.Credentials, fault Fault) awsCredentialsXML {
	x := awsCredentialsXML{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    c.SessionToken,
	}
	if fault.emptiesCredentials() {
		x.AccessKeyID, x.SecretAccessKey, x.SessionToken = "", "", ""
	}
	if exp, ok := fault.reportExpiry(c.Expires); ok {
		x.Expiration = exp.UTC().Format(time.RFC3339)
	}
	return x
}
