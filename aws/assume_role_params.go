package aws

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/internal/provider"
	"github.com/identitychain/auth/internal/quote"
)

// The range of the duration field: STS's shortest session, and its
// longest for a role assumed with another role's session (role chaining),
// which every source the library uses is.
const (
	MinDuration = 15 * time.Minute
	MaxDuration = time.Hour
)

// STS's limits on the other AssumeRole parameters an annotation may set.
const (
	externalIDMin  = 2
	externalIDMax  = 1224
	maxSessionTags = 50
	tagKeyMax      = 128
	tagValueMax    = 256
	maxPolicyARNs  = 10
	policyMax      = 2048
	policyNameMax  = 128
)

// TenantTagKeys are the session tag keys the library reserves to name the
// tenant a session was made for. No annotation may set them, in any letter
// case, so a tenant can never claim to be another.
var TenantTagKeys = []string{"flux-tenant-namespace", "flux-tenant-service-account"}

var (
	externalIDRegex = regexp.MustCompile(`^[\w+=,.@:/-]*$`)
	// Tag keys and values: Unicode letters, spaces and numbers, and _.:/=+-@.
	tagRegex = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
)

// assumeRoleParams are the optional AssumeRole parameters of an annotation,
// validated and in the form they are sent.
type assumeRoleParams struct {
	externalID        *string
	durationSeconds   *int32
	tags              []types.Tag // sorted by key
	transitiveTagKeys []string
	policyARNs        []types.PolicyDescriptorType
	policy            *string // compacted

	// What the operator's impersonation policy adds (see Attribute).
	tenantTags     bool // tags holds TenantTagKeys, last
	sourceIdentity *string
}

// params validates the optional fields of conf against STS's limits and
// returns them as sent. Its errors name the field, the limit and the fix.
func (conf *AssumeRoleConfig) params() (*assumeRoleParams, error) {
	var p assumeRoleParams
	if conf.ExternalID != nil {
		if err := validateExternalID(*conf.ExternalID); err != nil {
			return nil, err
		}
		p.externalID = conf.ExternalID
	}
	if conf.Duration != nil {
		d, err := provider.ParseDuration("duration", *conf.Duration, "15m", "the API")
		if err != nil {
			return nil, err
		}
		if err := checkSessionDuration(*conf.Duration, d); err != nil {
			return nil, err
		}
		p.durationSeconds = aws.Int32(int32(d / time.Second))
	}
	if conf.SessionTags != nil {
		tags, err := sessionTags(conf.SessionTags)
		if err != nil {
			return nil, err
		}
		p.tags = tags
	}
	if conf.TransitiveTagKeys != nil {
		if err := checkTransitiveTagKeys(conf.TransitiveTagKeys, conf.SessionTags); err != nil {
			return nil, err
		}
		p.transitiveTagKeys = conf.TransitiveTagKeys
	}
	if conf.PolicyARNs != nil {
		arns, err := policyARNs(conf.PolicyARNs)
		if err != nil {
			return nil, err
		}
		p.policyARNs = arns
	}
	if conf.Policy != nil {
		policy, err := compactPolicy(*conf.Policy)
		if err != nil {
			return nil, err
		}
		p.policy = &policy
	}
	if p.externalID == nil && p.durationSeconds == nil && p.tags == nil && p.transitiveTagKeys == nil &&
		p.policyARNs == nil && p.policy == nil {
		return nil, nil
	}
	return &p, nil
}

func validateExternalID(id string) error {
	switch n := utf8.RuneCountInString(id); {
	case id == "":
		return fmt.Errorf("externalID is empty: set the external ID the role's trust policy expects, or remove the field")
	case n < externalIDMin || n > externalIDMax:
		return fmt.Errorf("externalID is %d characters long: STS takes %d to %d. use the external ID the role's "+
			"trust policy expects", n, externalIDMin, externalIDMax)
	case !externalIDRegex.MatchString(id):
		return fmt.Errorf("externalID %s has a character STS refuses (%s): use letters, digits and _+=,.@:/-",
			quote.Tenant(id), quote.Tenant(firstRefused(id, externalIDRegex)))
	}
	return nil
}

// firstRefused returns the first character of s that re, an anchored
// character class, does not accept.
func firstRefused(s string, re *regexp.Regexp) string {
	for _, r := range s {
		if !re.MatchString(string(r)) {
			return string(r)
		}
	}
	return ""
}

func checkSessionDuration(text string, d time.Duration) error {
	switch {
	case d < MinDuration:
		return fmt.Errorf("duration %s is below STS's minimum of 15m: set duration between 15m and 1h",
			quote.Tenant(text))
	case d > MaxDuration:
		return fmt.Errorf("duration %s is above 1h: the source of this role is itself a role session (EKS Pod "+
			"Identity, IRSA or the service account's web identity), and STS caps a chained role session at 1h. "+
			"set duration between 15m and 1h", quote.Tenant(text))
	}
	return nil
}

// sessionTags checks tags against STS's limits and returns them sorted by
// key, so that the request is the same whatever order the YAML had.
func sessionTags(tags map[string]string) ([]types.Tag, error) {
	if len(tags) == 0 {
		return nil, fmt.Errorf("sessionTags is empty: set at least one tag, or remove the field")
	}
	if len(tags) > maxSessionTags {
		return nil, fmt.Errorf("sessionTags has %d tags: STS takes at most %d", len(tags), maxSessionTags)
	}
	keys := slices.Sorted(maps.Keys(tags))
	seen := make(map[string]string, len(keys)) // lower case to the key as written
	out := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		v := tags[k]
		lower := strings.ToLower(k)
		switch n := utf8.RuneCountInString(k); {
		case n == 0:
			return nil, fmt.Errorf("sessionTags has an empty key: tag keys are 1 to %d characters", tagKeyMax)
		case n > tagKeyMax:
			return nil, fmt.Errorf("sessionTags key %s is %d characters long: STS takes keys of 1 to %d characters",
				quote.Tenant(k), n, tagKeyMax)
		case !tagRegex.MatchString(k):
			return nil, fmt.Errorf("sessionTags key %s has a character STS refuses (%s): tag keys and values are "+
				"letters, digits, spaces and _.:/=+-@", quote.Tenant(k), quote.Tenant(firstRefused(k, tagRegex)))
		case strings.HasPrefix(lower, "aws:"):
			return nil, fmt.Errorf("sessionTags key %s starts with 'aws:', which AWS reserves: rename the tag",
				quote.Tenant(k))
		case slices.Contains(TenantTagKeys, lower):
			return nil, fmt.Errorf("sessionTags key %s is reserved: the library sets it to name the tenant "+
				"that made the session. rename the tag", quote.Tenant(k))
		}
		if other, dup := seen[lower]; dup {
			return nil, fmt.Errorf("sessionTags keys %s and %s differ only in letter case, and STS takes them for "+
				"the same key: keep one", quote.Tenant(other), quote.Tenant(k))
		}
		seen[lower] = k
		switch n := utf8.RuneCountInString(v); {
		case n > tagValueMax:
			return nil, fmt.Errorf("sessionTags value of %s is %d characters long: STS takes values of at most %d "+
				"characters", quote.Tenant(k), n, tagValueMax)
		case !tagRegex.MatchString(v):
			return nil, fmt.Errorf("sessionTags value of %s has a character STS refuses (%s): tag keys and values "+
				"are letters, digits, spaces and _.:/=+-@", quote.Tenant(k), quote.Tenant(firstRefused(v, tagRegex)))
		}
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return out, nil
}

func checkTransitiveTagKeys(keys []string, tags map[string]string) error {
	if len(keys) == 0 {
		return fmt.Errorf("transitiveTagKeys is empty: list keys of sessionTags, or remove the field")
	}
	for i, k := range keys {
		if slices.Contains(keys[:i], k) {
			return fmt.Errorf("transitiveTagKeys lists %s twice: keep one", quote.Tenant(k))
		}
		if _, ok := tags[k]; ok {
			continue
		}
		for t := range tags {
			if strings.EqualFold(t, k) {
				return fmt.Errorf("transitiveTagKeys names %s, which is not a key of sessionTags: did you mean %s?",
					quote.Tenant(k), quote.Tenant(t))
			}
		}
		return fmt.Errorf("transitiveTagKeys names %s, which is not a key of sessionTags: add the tag to "+
			"sessionTags, or remove the key", quote.Tenant(k))
	}
	return nil
}

func policyARNs(arns []string) ([]types.PolicyDescriptorType, error) {
	switch {
	case len(arns) == 0:
		return nil, fmt.Errorf("policyARNs is empty: list managed policy ARNs, or remove the field")
	case len(arns) > maxPolicyARNs:
		return nil, fmt.Errorf("policyARNs has %d ARNs: STS takes at most %d managed session policies",
			len(arns), maxPolicyARNs)
	}
	out := make([]types.PolicyDescriptorType, len(arns))
	for i, arn := range arns {
		if err := ValidatePolicyARN(arn); err != nil {
			return nil, fmt.Errorf("policyARNs[%d] %w", i, err)
		}
		if slices.Contains(arns[:i], arn) {
			return nil, fmt.Errorf("policyARNs lists %s twice: keep one", quote.Tenant(arn))
		}
		out[i] = types.PolicyDescriptorType{Arn: aws.String(arn)}
	}
	return out, nil
}

// compactPolicy checks that text is a JSON object STS would take as a
// session policy and returns it compacted, as it is sent.
func compactPolicy(text string) (string, error) {
	if strings.TrimSpace(text) == "" {
		return "", fmt.Errorf("policy is empty: write a session policy as a JSON object, or remove the field")
	}
	var doc any
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		return "", fmt.Errorf("policy is not valid JSON (%s): write the session policy as a JSON object, "+
			"such as {\"Version\": \"2012-10-17\", \"Statement\": [...]}", quote.Clean(err.Error(), 200))
	}
	if _, ok := doc.(map[string]any); !ok {
		return "", fmt.Errorf("policy must be a JSON object (an IAM policy document), not %s", jsonKind(doc))
	}
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(text)); err != nil {
		return "", fmt.Errorf("policy is not valid JSON (%s)", quote.Clean(err.Error(), 200))
	}
	compact := b.String()
	for _, r := range compact {
		if r > 0xff {
			return "", fmt.Errorf("policy has the character %s (%U), which STS refuses: session policies take "+
				"ASCII and Latin-1 characters only", quote.Tenant(string(r)), r)
		}
	}
	if n := utf8.RuneCountInString(compact); n > policyMax {
		return "", fmt.Errorf("policy is %d characters once compacted: STS takes at most %d. shorten it, or "+
			"move statements into managed policies listed in policyARNs", n, policyMax)
	}
	return compact, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

// apply sets the parameters on in.
func (p *assumeRoleParams) apply(in *sts.AssumeRoleInput) {
	if p == nil {
		return
	}
	in.ExternalId = p.externalID
	in.DurationSeconds = p.durationSeconds
	in.Tags = p.tags
	in.TransitiveTagKeys = p.transitiveTagKeys
	in.PolicyArns = p.policyARNs
	in.Policy = p.policy
	in.SourceIdentity = p.sourceIdentity
}

// parameters describes p for the cache key and for people, in a fixed
// order.
func (p *assumeRoleParams) parameters() []auth.Parameter {
	if p == nil {
		return nil
	}
	var out []auth.Parameter
	if p.externalID != nil {
		out = append(out, auth.Parameter{Field: "externalID", SentAs: "ExternalId", Value: *p.externalID})
	}
	if p.durationSeconds != nil {
		out = append(out, auth.Parameter{Field: "duration", SentAs: "DurationSeconds",
			Value: strconv.Itoa(int(*p.durationSeconds))})
	}
	if p.tags != nil {
		keys, values := make([]string, len(p.tags)), make([]string, len(p.tags))
		for i, t := range p.tags {
			keys[i], values[i] = *t.Key, *t.Value
		}
		out = append(out, auth.Parameter{Field: "sessionTags", SentAs: "Tags", Keys: keys, Values: values})
	}
	if p.transitiveTagKeys != nil {
		out = append(out, auth.Parameter{Field: "transitiveTagKeys", SentAs: "TransitiveTagKeys",
			Values: p.transitiveTagKeys})
	}
	if p.policyARNs != nil {
		arns := make([]string, len(p.policyARNs))
		for i, a := range p.policyARNs {
			arns[i] = *a.Arn
		}
		out = append(out, auth.Parameter{Field: "policyARNs", SentAs: "PolicyArns", Values: arns})
	}
	if p.policy != nil {
		out = append(out, auth.Parameter{Field: "policy", SentAs: "Policy", Value: *p.policy})
	}
	return out
}
