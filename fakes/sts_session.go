package fakes

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// The parameters of AssumeRole and AssumeRoleWithWebIdentity that shape the
// session beyond its role and name: ExternalId, DurationSeconds, Tags,
// TransitiveTagKeys, PolicyArns and Policy, and the trust conditions and
// session state they are checked against.

// Constraints real STS declares on these parameters.
var (
	awsExternalIDPattern = regexp.MustCompile(`^[\w+=,.@:/-]*$`)
	awsTagKeyPattern     = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$`)
	awsTagValuePattern   = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
	awsPolicyPattern     = regexp.MustCompile(`^[\x{0009}\x{000A}\x{000D}\x{0020}-\x{00FF}]+$`)
)

const (
	awsMinExternalIDLength = 2
	awsMaxExternalIDLength = 1224
	awsMaxTags             = 50
	awsMaxTagKeyLength     = 128
	awsMaxTagValueLength   = 256
	awsMaxPolicyARNs       = 10
	awsMinPolicyARNLength  = 20
	awsMaxPolicyARNLength  = 2048
	awsMaxPolicyLength     = 2048
	// awsRoleChainingLimit caps the sessions of AssumeRole called with
	// role session credentials, which is every AssumeRole the fake serves.
	awsRoleChainingLimit = time.Hour
	// awsDefaultMaxSessionDuration is a role's MaxSessionDuration unless
	// SetMaxSessionDuration changes it, as for roles created without one.
	awsDefaultMaxSessionDuration = time.Hour
)

// TrustOption adds a condition or an action to the trust relationship that
// AllowAssumeRole creates.
type TrustOption func(*awsTrust)

// awsTrust is one statement of a role's trust policy naming a source role:
// it allows sts:AssumeRole, sts:TagSession when tagSession is set and
// sts:SetSourceIdentity when setSourceIdentity is, when its condition
// holds.
type awsTrust struct {
	// requireExternalID makes the statement hold only for requests whose
	// ExternalId is externalID (StringEquals on sts:ExternalId).
	requireExternalID bool
	externalID        string
	// requestTags are aws:RequestTag conditions, which must all hold (see
	// RequireRequestTag).
	requestTags []awsTagCondition
	// sourceIdentities are sts:SourceIdentity conditions, which must all
	// hold (see RequireSourceIdentity).
	sourceIdentities  []string
	tagSession        bool
	setSourceIdentity bool
}

// awsTrustContext is what the condition of a trust statement is evaluated
// against: the request context of an AssumeRole.
type awsTrustContext struct {
	// externalID is sts:ExternalId, nil when not sent.
	externalID *string
	// tags are aws:RequestTag: the requested session tags and the
	// transitive ones inherited from the calling session, which AWS puts
	// in the request context of a chained AssumeRole as well; nil when
	// none.
	tags map[string]string
	// sourceIdentity is sts:SourceIdentity: the source identity the
	// session gets, sent or inherited; "" when none.
	sourceIdentity string
}

// RequireExternalID makes the trust policy require sts:ExternalId == id (a
// StringEquals condition). A request without ExternalId, or with another,
// is refused with the AccessDenied of an untrusted caller.
func RequireExternalID(id string) TrustOption {
	return func(t *awsTrust) {
		t.requireExternalID, t.externalID = true, id
	}
}

// awsTagCondition is a StringEquals condition on aws:RequestTag/<key>.
type awsTagCondition struct{ key, value string }

// RequireRequestTag makes the trust policy require aws:RequestTag/<key> ==
// value (StringEquals). STS compares tag keys case-insensitively and values
// case-sensitively. The request's tags are those it sends in Tags and, as on
// AWS, the transitive tags it inherits from the calling session (for
// example an EKS Pod Identity session's kubernetes-namespace). A request
// without the tag, or with another value, is refused with the AccessDenied
// of an untrusted caller. Several RequireRequestTag options on one
// statement must all hold. It implies nothing about sts:TagSession, which
// passing tags needs (AllowTagSession).
func RequireRequestTag(key, value string) TrustOption {
	return func(t *awsTrust) { t.requestTags = append(t.requestTags, awsTagCondition{key, value}) }
}

// AllowTagSession makes the trust policy allow sts:TagSession as well as
// sts:AssumeRole, which AssumeRole needs to pass session tags: requested
// ones, or transitive ones the calling session carries.
func AllowTagSession() TrustOption {
	return func(t *awsTrust) { t.tagSession = true }
}

// The actions a trust statement may allow.
const (
	awsActionAssumeRole        = "sts:AssumeRole"
	awsActionTagSession        = "sts:TagSession"
	awsActionSetSourceIdentity = "sts:SetSourceIdentity"
)

// allows reports whether the statement lists action.
func (t awsTrust) allows(action string) bool {
	switch action {
	case awsActionAssumeRole:
		return true
	case awsActionTagSession:
		return t.tagSession
	case awsActionSetSourceIdentity:
		return t.setSourceIdentity
	}
	return false
}

// holds reports whether the statement's condition holds for a request.
func (t awsTrust) holds(c awsTrustContext) bool {
	if t.requireExternalID && (c.externalID == nil || *c.externalID != t.externalID) {
		return false
	}
	for _, want := range t.requestTags {
		key, ok := awsFindTagKey(c.tags, want.key)
		if !ok || c.tags[key] != want.value {
			return false
		}
	}
	for _, want := range t.sourceIdentities {
		if !awsSourceIdentityMatches(want, c.sourceIdentity) {
			return false
		}
	}
	return true
}

// trusts reports whether the trust policy of target has a statement naming
// source that allows action and whose condition holds for c.
func (s *AWSSTS) trusts(target, source, action string, c awsTrustContext) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.assumeRoleTrust[target][source] {
		if t.allows(action) && t.holds(c) {
			return true
		}
	}
	return false
}

// SetMaxSessionDuration sets the MaxSessionDuration of roleARN, which caps
// the DurationSeconds of AssumeRoleWithWebIdentity; it is one hour unless
// set. It panics outside IAM's range, one to twelve hours. AssumeRole is
// role chaining here, capped at one hour whatever the role's maximum.
func (s *AWSSTS) SetMaxSessionDuration(roleARN string, d time.Duration) {
	if d < time.Hour || d > 12*time.Hour {
		panic(fmt.Sprintf("fakes: AWSSTS.SetMaxSessionDuration: %v is outside 1h to 12h", d))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxSessionDuration[roleARN] = d
}

func (s *AWSSTS) maxSessionDurationOf(roleARN string) time.Duration {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if d, ok := s.maxSessionDuration[roleARN]; ok {
		return d
	}
	return awsDefaultMaxSessionDuration
}

// IssueTaggedCredentials is IssueCredentials for a session that carries
// session tags, the given keys of which are transitive (as EKS Pod Identity
// sessions do): AssumeRole called with the credentials passes the
// transitive ones on, which the target's trust must allow
// (AllowTagSession). It panics when a transitive key names no tag
// (compared ignoring case, as STS compares tag keys).
func (s *AWSSTS) IssueTaggedCredentials(roleARN string, tags map[string]string, transitiveKeys []string) aws.Credentials {
	session := awsIssued{roleARN: roleARN, sessionName: awsIssuedSessionName}
	if len(tags) > 0 {
		session.tags = maps.Clone(tags)
	}
	for _, k := range transitiveKeys {
		key, ok := awsFindTagKey(session.tags, k)
		if !ok {
			panic("fakes: AWSSTS.IssueTaggedCredentials: transitive key '" + k + "' names no tag")
		}
		session.transitiveKeys = awsAddKey(session.transitiveKeys, key)
	}
	return s.issueSession(session, s.ttl)
}

// awsTransitiveSessionTags checks that tags are session tags STS would
// accept on AssumeRole, all of them transitive, and returns a copy of them
// and their keys, sorted; nil ones when tags is empty.
func awsTransitiveSessionTags(tags map[string]string) (map[string]string, []string, *awsError) {
	if len(tags) == 0 {
		return nil, nil, nil
	}
	// Sorted, so that the first invalid tag reported is always the same.
	var p awsSessionParams
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		p.tags = append(p.tags, awsTagParam{key: &k, value: aws.String(tags[k])})
		p.transitiveKeys = append(p.transitiveKeys, k)
	}
	if serr := p.validate(true); serr != nil {
		return nil, nil, serr
	}
	return awsSessionTags(&awsIssued{}, p)
}

// SessionTags returns the tags of the session the access key belongs to
// (inherited transitive tags included) and its transitive keys, sorted. A
// session without tags has nil ones. ok is false when the fake did not
// issue the key.
func (s *AWSSTS) SessionTags(accessKeyID string) (tags map[string]string, transitiveKeys []string, ok bool) {
	s.mu.RLock()
	issued, ok := s.creds[accessKeyID]
	s.mu.RUnlock()
	if !ok {
		return nil, nil, false
	}
	return maps.Clone(issued.tags), slices.Clone(issued.transitiveKeys), true
}

// awsFindTagKey returns the key of tags equal to key ignoring case.
func awsFindTagKey(tags map[string]string, key string) (string, bool) {
	for k := range tags {
		if strings.EqualFold(k, key) {
			return k, true
		}
	}
	return "", false
}

// awsAddKey adds key to the sorted keys unless one equal ignoring case is
// there.
func awsAddKey(keys []string, key string) []string {
	for _, k := range keys {
		if strings.EqualFold(k, key) {
			return keys
		}
	}
	keys = append(keys, key)
	slices.Sort(keys)
	return keys
}

// awsTagParam is one member of Tags as sent; a nil field was not sent.
type awsTagParam struct {
	key, value *string
}

// awsSessionParams are the session parameters of a request, as sent.
type awsSessionParams struct {
	externalID *string
	// durationSeconds is 0 when not sent or not an integer.
	durationSeconds int
	// tagsSent is set when Tags came, even as an empty list.
	tagsSent       bool
	tags           []awsTagParam
	transitiveKeys []string
	policyARNs     []string
	policy         *string
	sourceIdentity *string
}

// awsParseSessionParams reads the session parameters from a Query request,
// whose lists come as Name.member.N (Tags.member.N.Key and .Value,
// TransitiveTagKeys.member.N, PolicyArns.member.N.arn), numbered from 1.
func awsParseSessionParams(params url.Values) awsSessionParams {
	optional := func(name string) *string {
		if v, ok := params[name]; ok {
			return &v[0]
		}
		return nil
	}
	var p awsSessionParams
	p.externalID = optional("ExternalId")
	p.policy = optional("Policy")
	p.sourceIdentity = optional("SourceIdentity")
	p.durationSeconds, _ = strconv.Atoi(params.Get("DurationSeconds"))
	_, p.tagsSent = params["Tags"]
	for n := 1; ; n++ {
		member := "Tags.member." + strconv.Itoa(n)
		tag := awsTagParam{key: optional(member + ".Key"), value: optional(member + ".Value")}
		if tag.key == nil && tag.value == nil {
			break
		}
		p.tags = append(p.tags, tag)
		p.tagsSent = true
	}
	for n := 1; ; n++ {
		key := optional("TransitiveTagKeys.member." + strconv.Itoa(n))
		if key == nil {
			break
		}
		p.transitiveKeys = append(p.transitiveKeys, *key)
	}
	for n := 1; ; n++ {
		arn := optional("PolicyArns.member." + strconv.Itoa(n) + ".arn")
		if arn == nil {
			break
		}
		p.policyARNs = append(p.policyARNs, *arn)
	}
	return p
}

// record copies the parameters, as sent, into call.
func (p awsSessionParams) record(call *AWSSTSCall) {
	if p.externalID != nil {
		call.ExternalID = *p.externalID
	}
	if p.policy != nil {
		call.Policy = *p.policy
	}
	if p.sourceIdentity != nil {
		call.SourceIdentity = *p.sourceIdentity
	}
	call.DurationSeconds = p.durationSeconds
	for _, t := range p.tags {
		if call.Tags == nil {
			call.Tags = map[string]string{}
		}
		call.Tags[aws.ToString(t.key)] = aws.ToString(t.value)
	}
	call.TransitiveTagKeys = slices.Clone(p.transitiveKeys)
	call.PolicyARNs = slices.Clone(p.policyARNs)
}

// carriesTags reports whether the request itself passes session tags.
func (p awsSessionParams) carriesTags() bool {
	return len(p.tags) > 0 || len(p.transitiveKeys) > 0
}

// awsLength is the length of s as STS measures it, in UTF-16 code units.
func awsLength(s string) int { return len(utf16.Encode([]rune(s))) }

// awsValidationError is a refusal of one constrained member, worded as STS
// words its declared constraints.
func awsValidationError(value *string, member, constraint string) *awsError {
	v := "null"
	if value != nil {
		v = "'" + *value + "'"
	}
	return &awsError{http.StatusBadRequest, "ValidationError", fmt.Sprintf(
		"1 validation error detected: Value %s at '%s' failed to satisfy constraint: %s", v, member, constraint)}
}

func awsLengthConstraint(s string, lo, hi int) (string, bool) {
	switch n := awsLength(s); {
	case n < lo:
		return fmt.Sprintf("Member must have length greater than or equal to %d", lo), false
	case n > hi:
		return fmt.Sprintf("Member must have length less than or equal to %d", hi), false
	}
	return "", true
}

// validate checks the declared constraints of the session parameters: of
// Policy and PolicyArns, and, when tagging (AssumeRole, whose input has
// them), of ExternalId, Tags, TransitiveTagKeys and SourceIdentity. Lists too long are
// shown in Java's List.toString form, as STS shows them; tags as
// {Key: k,Value: v} (modelled on the AWS SDK for Java's Tag.toString).
func (p awsSessionParams) validate(tagging bool) *awsError {
	if tagging && p.externalID != nil {
		id := p.externalID
		if c, ok := awsLengthConstraint(*id, awsMinExternalIDLength, awsMaxExternalIDLength); !ok {
			return awsValidationError(id, "externalId", c)
		}
		if !awsExternalIDPattern.MatchString(*id) {
			return awsValidationError(id, "externalId", `Member must satisfy regular expression pattern: [\w+=,.@:\/-]*`)
		}
	}
	if p.policy != nil {
		if c, ok := awsLengthConstraint(*p.policy, 1, awsMaxPolicyLength); !ok {
			return awsValidationError(p.policy, "policy", c)
		}
		if !awsPolicyPattern.MatchString(*p.policy) {
			return awsValidationError(p.policy, "policy", `Member must satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u00FF]+`)
		}
	}
	if len(p.policyARNs) > awsMaxPolicyARNs {
		shown := make([]string, len(p.policyARNs))
		for i, arn := range p.policyARNs {
			shown[i] = "{Arn: " + arn + "}"
		}
		list := "[" + strings.Join(shown, ", ") + "]"
		return awsValidationError(&list, "policyArns", fmt.Sprintf("Member must have length less than or equal to %d", awsMaxPolicyARNs))
	}
	for i, arn := range p.policyARNs {
		if c, ok := awsLengthConstraint(arn, awsMinPolicyARNLength, awsMaxPolicyARNLength); !ok {
			return awsValidationError(&arn, fmt.Sprintf("policyArns.%d.member.arn", i+1), c)
		}
	}
	if !tagging {
		return nil
	}

	if len(p.tags) > awsMaxTags {
		shown := make([]string, len(p.tags))
		for i, t := range p.tags {
			shown[i] = "{Key: " + aws.ToString(t.key) + ",Value: " + aws.ToString(t.value) + "}"
		}
		list := "[" + strings.Join(shown, ", ") + "]"
		return awsValidationError(&list, "tags", fmt.Sprintf("Member must have length less than or equal to %d", awsMaxTags))
	}
	for i, t := range p.tags {
		keyMember := fmt.Sprintf("tags.%d.member.key", i+1)
		valueMember := fmt.Sprintf("tags.%d.member.value", i+1)
		if t.key == nil {
			return awsValidationError(nil, keyMember, "Member must not be null")
		}
		if c, ok := awsLengthConstraint(*t.key, 1, awsMaxTagKeyLength); !ok {
			return awsValidationError(t.key, keyMember, c)
		}
		if !awsTagKeyPattern.MatchString(*t.key) {
			return awsValidationError(t.key, keyMember, `Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+`)
		}
		if t.value == nil {
			return awsValidationError(nil, valueMember, "Member must not be null")
		}
		if c, ok := awsLengthConstraint(*t.value, 0, awsMaxTagValueLength); !ok {
			return awsValidationError(t.value, valueMember, c)
		}
		if !awsTagValuePattern.MatchString(*t.value) {
			return awsValidationError(t.value, valueMember, `Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]*`)
		}
	}

	if len(p.transitiveKeys) > awsMaxTags {
		list := "[" + strings.Join(p.transitiveKeys, ", ") + "]"
		return awsValidationError(&list, "transitiveTagKeys", fmt.Sprintf("Member must have length less than or equal to %d", awsMaxTags))
	}
	for i, k := range p.transitiveKeys {
		member := fmt.Sprintf("transitiveTagKeys.%d.member", i+1)
		if c, ok := awsLengthConstraint(k, 1, awsMaxTagKeyLength); !ok {
			return awsValidationError(&k, member, c)
		}
		if !awsTagKeyPattern.MatchString(k) {
			return awsValidationError(&k, member, `Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+`)
		}
	}
	return awsValidateSourceIdentity(p.sourceIdentity)
}

func awsInvalidParameter(msg string) *awsError {
	return &awsError{http.StatusBadRequest, "InvalidParameterValue", msg}
}

// awsSessionTags returns the tags and transitive keys of the session that
// caller's AssumeRole with p creates: the transitive tags of caller, which
// it inherits, and the requested ones. It refuses, with STS's
// InvalidParameterValue, tag keys that are reserved, repeated, inherited,
// or transitive keys naming no requested tag, and with
// PackedPolicyTooLarge more than 50 tags in all. Keys compare ignoring
// case; transitive keys take the spelling of the tag they name.
func awsSessionTags(caller *awsIssued, p awsSessionParams) (map[string]string, []string, *awsError) {
	requested := map[string]string{}
	for _, t := range p.tags {
		key := *t.key
		if strings.HasPrefix(strings.ToLower(key), "aws:") {
			// Modelled: STS refuses the prefix it reserves; its exact
			// wording is not documented.
			return nil, nil, awsInvalidParameter("Tag keys may not start with the reserved prefix 'aws:'")
		}
		if _, dup := awsFindTagKey(requested, key); dup {
			return nil, nil, awsInvalidParameter("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
		}
		requested[key] = *t.value
	}
	var transitive []string
	for _, k := range p.transitiveKeys {
		key, ok := awsFindTagKey(requested, k)
		if !ok {
			return nil, nil, awsInvalidParameter("The specified transitive tag key must be included in the requested tags.")
		}
		transitive = awsAddKey(transitive, key)
	}

	tags := map[string]string{}
	for _, k := range caller.transitiveKeys {
		if key, clash := awsFindTagKey(requested, k); clash {
			// Modelled on AWS's documentation ("If you pass a session tag
			// with the same key as an inherited tag, the operation
			// fails"); the wording is the fake's.
			return nil, nil, awsInvalidParameter(fmt.Sprintf(
				"The tag key '%s' conflicts with a transitive tag inherited from the calling session. Session tags cannot override inherited transitive tags.", key))
		}
		tags[k] = caller.tags[k]
		transitive = awsAddKey(transitive, k)
	}
	maps.Copy(tags, requested)
	if len(tags) > awsMaxTags {
		// STS packs the session tags, inherited ones included, with the
		// session policies into a binary format of limited size, and
		// refuses a session whose tags take more than that space with
		// PackedPolicyTooLarge, saying how much they take. The fake does
		// not know the packing: it applies STS's limit of 50 session tags
		// to the inherited and requested ones together and reports their
		// count as a share of 50 (modelled). Real STS may refuse fewer,
		// long tags: an EKS Pod Identity session's six tags alone take a
		// large part of the space.
		return nil, nil, &awsError{http.StatusBadRequest, "PackedPolicyTooLarge", fmt.Sprintf(
			"Packed size of session tags consumes %d%% of allotted space.", (len(tags)*100+awsMaxTags-1)/awsMaxTags)}
	}
	if len(tags) == 0 {
		return nil, nil, nil
	}
	return tags, transitive, nil
}
