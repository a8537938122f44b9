package aws_test

import (
	"fmt"
	"strings"
	"testing"

	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/internal/annotation"
)

const paramsRole = "roleARN: arn:aws:iam::123456789012:role/target\n"

// TestAssumeRoleParameters pins what each optional field sends.
func TestAssumeRoleParameters(t *testing.T) {
	for _, tt := range []struct {
		name  string
		value string
		want  []auth.Parameter
	}{
		{name: "none", value: paramsRole},
		{
			name: "every field",
			value: paramsRole + `externalID: "tenant-a:42/x"
duration: 30m
sessionTags:
  team: a
  cost-center: "1234"
  project: flux apps
transitiveTagKeys: [team]
policyARNs:
  - arn:aws:iam::aws:policy/ReadOnlyAccess
  - arn:aws-cn:iam::123456789012:policy/path/to/limit
policy: |
  {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]
  }
`,
			want: []auth.Parameter{
				{Field: "externalID", SentAs: "ExternalId", Value: "tenant-a:42/x"},
				{Field: "duration", SentAs: "DurationSeconds", Value: "1800"},
				{Field: "sessionTags", SentAs: "Tags", Keys: []string{"cost-center", "project", "team"},
					Values: []string{"1234", "flux apps", "a"}},
				{Field: "transitiveTagKeys", SentAs: "TransitiveTagKeys", Values: []string{"team"}},
				{Field: "policyARNs", SentAs: "PolicyArns", Values: []string{
					"arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws-cn:iam::123456789012:policy/path/to/limit"}},
				{Field: "policy", SentAs: "Policy",
					Value: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`},
			},
		},
		{name: "duration at the minimum", value: paramsRole + "duration: 15m",
			want: []auth.Parameter{{Field: "duration", SentAs: "DurationSeconds", Value: "900"}}},
		{name: "duration at the maximum, in seconds", value: paramsRole + "duration: 3600s",
			want: []auth.Parameter{{Field: "duration", SentAs: "DurationSeconds", Value: "3600"}}},
		{name: "an empty tag value", value: paramsRole + "sessionTags: {team: \"\"}",
			want: []auth.Parameter{{Field: "sessionTags", SentAs: "Tags", Keys: []string{"team"}, Values: []string{""}}}},
		{name: "fifty tags", value: paramsRole + "sessionTags: {" + tags(50) + "}",
			want: []auth.Parameter{{Field: "sessionTags", SentAs: "Tags", Keys: tagKeys(50), Values: tagValues(50)}}},
		{name: "unicode letters in tags", value: paramsRole + "sessionTags: {équipe: Zürich}",
			want: []auth.Parameter{{Field: "sessionTags", SentAs: "Tags", Keys: []string{"équipe"}, Values: []string{"Zürich"}}}},
		{name: "longest external ID", value: paramsRole + "externalID: " + strings.Repeat("x", 1224),
			want: []auth.Parameter{{Field: "externalID", SentAs: "ExternalId", Value: strings.Repeat("x", 1224)}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			imp, err := aws.Provider{}.ParseImpersonation(serviceAccount(map[string]string{aws.AssumeRoleAnnotation: tt.value}),
				fluxauth.WithSTSRegion("us-east-1"))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(imp.Parameters).To(Equal(tt.want))
			g.Expect(imp.Request == nil).To(Equal(tt.want == nil))
		})
	}
}

func tags(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "k%02d: v%d, ", i, i)
	}
	return b.String()
}

func tagKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	return keys
}

func tagValues(n int) []string {
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprintf("v%d", i)
	}
	return values
}

// TestAssumeRoleParameterRefusals pins the refusal of every limit, by its
// exact message: the field, the limit and the fix.
func TestAssumeRoleParameterRefusals(t *testing.T) {
	const prefix = "invalid aws.auth.fluxcd.io/assume-role annotation on service account 'team-a/app': "
	policyOf := func(n int) string { // a compact policy of n characters
		const head, tail = `{"Version":"2012-10-17","Statement":[],"Sid":"`, `"}`
		return "policy: '" + head + strings.Repeat("s", n-len(head)-len(tail)) + tail + "'"
	}
	arns := func(n int) string {
		var l []string
		for i := range n {
			l = append(l, fmt.Sprintf("arn:aws:iam::123456789012:policy/p%d", i))
		}
		return "policyARNs: [" + strings.Join(l, ", ") + "]"
	}
	for _, tt := range []struct {
		name, value, want string
	}{
		// externalID
		{"external ID empty", `externalID: ""`,
			"externalID is empty: set the external ID the role's trust policy expects, or remove the field"},
		{"external ID too short", "externalID: x",
			"externalID is 1 characters long: STS takes 2 to 1224. use the external ID the role's trust policy expects"},
		{"external ID too long", "externalID: " + strings.Repeat("x", 1225),
			"externalID is 1225 characters long: STS takes 2 to 1224. use the external ID the role's trust policy expects"},
		{"external ID with a space", `externalID: "a b"`,
			"externalID 'a b' has a character STS refuses (' '): use letters, digits and _+=,.@:/-"},
		{"external ID a number", "externalID: 12345",
			"externalID must be a string: quote the value"},
		// duration
		{"duration without a unit", "duration: 3600",
			"duration must be a duration with a unit, such as '15m', '1h' or '3600s', not the bare number '3600'"},
		{"duration quoted without a unit", `duration: "3600"`,
			"duration '3600' has no unit: write '3600s' or use minutes or hours, such as '1h'"},
		{"duration not a duration", "duration: an hour",
			"duration 'an hour' is not a duration: write one with a unit, such as '15m' or '1h'"},
		{"duration with a fraction of a second", "duration: 1000.5s",
			"duration '1000.5s' is not a whole number of seconds: the API takes seconds"},
		{"duration below 15m", "duration: 14m59s",
			"duration '14m59s' is below STS's minimum of 15m: set duration between 15m and 1h"},
		{"duration above 1h", "duration: 2h",
			"duration '2h' is above 1h: the source of this role is itself a role session (EKS Pod Identity, IRSA " +
				"or the service account's web identity), and STS caps a chained role session at 1h. set duration " +
				"between 15m and 1h"},
		{"duration empty", `duration: ""`,
			"duration is empty: set a duration such as '15m' or '1h', or remove the field"},
		// sessionTags
		{"tags empty", "sessionTags: {}", "sessionTags is empty: set at least one tag, or remove the field"},
		{"tags a list", "sessionTags: [a]", "sessionTags must be a mapping, not a list"},
		{"too many tags", "sessionTags: {" + tags(51) + "}", "sessionTags has 51 tags: STS takes at most 50"},
		{"tag key too long", "sessionTags: {" + strings.Repeat("k", 129) + ": v}",
			"sessionTags key '" + strings.Repeat("k", 129) + "' is 129 characters long: STS takes keys of 1 to 128 characters"},
		{"tag key empty", `sessionTags: {"": v}`,
			"sessionTags has an empty key: tag keys are 1 to 128 characters"},
		{"tag value too long", "sessionTags: {k: " + strings.Repeat("v", 257) + "}",
			"sessionTags value of 'k' is 257 characters long: STS takes values of at most 256 characters"},
		{"tag key with a refused character", `sessionTags: {"team!": a}`,
			"sessionTags key 'team!' has a character STS refuses ('!'): tag keys and values are letters, digits, spaces and _.:/=+-@"},
		{"tag value with a refused character", `sessionTags: {team: "a;b"}`,
			"sessionTags value of 'team' has a character STS refuses (';'): tag keys and values are letters, digits, spaces and _.:/=+-@"},
		{"tag value with a bidi override", "sessionTags: {team: \"a\\u202eb\"}",
			"sessionTags value of 'team' has a character STS refuses ('\\u202e'): tag keys and values are letters, digits, spaces and _.:/=+-@"},
		{"tag value a number", "sessionTags: {team: 42}",
			"sessionTags['team'] must be a string: quote the value"},
		{"aws: prefix", "sessionTags: {'AWS:team': a}",
			"sessionTags key 'AWS:team' starts with 'aws:', which AWS reserves: rename the tag"},
		{"keys equal but for case", "sessionTags: {Team: a, team: b}",
			"sessionTags keys 'Team' and 'team' differ only in letter case, and STS takes them for the same key: keep one"},
		{"tenant namespace key", "sessionTags: {flux-tenant-namespace: team-b}",
			"sessionTags key 'flux-tenant-namespace' is reserved: the library sets it to name the tenant that made the session. rename the tag"},
		{"tenant service account key in another case", "sessionTags: {Flux-Tenant-Service-Account: app}",
			"sessionTags key 'Flux-Tenant-Service-Account' is reserved: the library sets it to name the tenant that made the session. rename the tag"},
		// transitiveTagKeys
		{"transitive keys empty", "sessionTags: {team: a}\ntransitiveTagKeys: []",
			"transitiveTagKeys is empty: list keys of sessionTags, or remove the field"},
		{"transitive key not a tag", "sessionTags: {team: a}\ntransitiveTagKeys: [project]",
			"transitiveTagKeys names 'project', which is not a key of sessionTags: add the tag to sessionTags, or remove the key"},
		{"transitive key without tags", "transitiveTagKeys: [team]",
			"transitiveTagKeys names 'team', which is not a key of sessionTags: add the tag to sessionTags, or remove the key"},
		{"transitive key in another case", "sessionTags: {team: a}\ntransitiveTagKeys: [Team]",
			"transitiveTagKeys names 'Team', which is not a key of sessionTags: did you mean 'team'?"},
		{"transitive key twice", "sessionTags: {team: a}\ntransitiveTagKeys: [team, team]",
			"transitiveTagKeys lists 'team' twice: keep one"},
		// policyARNs
		{"policy ARNs empty", "policyARNs: []",
			"policyARNs is empty: list managed policy ARNs, or remove the field"},
		{"too many policy ARNs", arns(11),
			"policyARNs has 11 ARNs: STS takes at most 10 managed session policies"},
		{"a role ARN as a policy", "policyARNs: [arn:aws:iam::123456789012:role/x]",
			"policyARNs[0] 'arn:aws:iam::123456789012:role/x' is not an IAM policy ARN: its resource must start with 'policy/', " +
				"as in arn:aws:iam::aws:policy/ReadOnlyAccess or arn:aws:iam::123456789012:policy/name"},
		{"policy ARN of an unknown partition", "policyARNs: [arn:aws:iam::aws:policy/ok, 'arn:aws-evil:iam::aws:policy/x']",
			"policyARNs[1] 'arn:aws-evil:iam::aws:policy/x' names partition 'aws-evil', which AWS does not have: " +
				"use one of aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc"},
		{"policy ARN with a bad account", "policyARNs: ['arn:aws:iam::amazon:policy/x']",
			"policyARNs[0] 'arn:aws:iam::amazon:policy/x' has account 'amazon': it must be 'aws' for an AWS managed policy, or a 12-digit account ID"},
		{"policy ARN with a bad name", "policyARNs: ['arn:aws:iam::aws:policy/a b']",
			"policyARNs[0] 'arn:aws:iam::aws:policy/a b' has policy name 'a b': it must be 1 to 128 characters of letters, digits and +=,.@_-"},
		{"policy ARN twice", "policyARNs: [arn:aws:iam::aws:policy/a, arn:aws:iam::aws:policy/a]",
			"policyARNs lists 'arn:aws:iam::aws:policy/a' twice: keep one"},
		// policy
		{"policy empty", `policy: " "`,
			"policy is empty: write a session policy as a JSON object, or remove the field"},
		{"policy not JSON", "policy: 'Version: 2012-10-17'",
			"policy is not valid JSON (invalid character 'V' looking for beginning of value): write the session policy as a JSON object, " +
				`such as {"Version": "2012-10-17", "Statement": [...]}`},
		{"policy an array", "policy: '[]'", "policy must be a JSON object (an IAM policy document), not an array"},
		{"policy a mapping in YAML", "policy: {Version: 2012-10-17}", "policy must be a string, not a mapping"},
		{"policy beyond Latin-1", `policy: '{"Sid":"☃"}'`,
			"policy has the character '☃' (U+2603), which STS refuses: session policies take ASCII and Latin-1 characters only"},
		{"policy too long", policyOf(2049),
			"policy is 2049 characters once compacted: STS takes at most 2048. shorten it, or move statements into managed policies listed in policyARNs"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			sa := serviceAccount(map[string]string{aws.AssumeRoleAnnotation: paramsRole + tt.value})
			imp, err := aws.Provider{}.ParseImpersonation(sa, fluxauth.WithSTSRegion("us-east-1"))
			g.Expect(err).To(MatchError(prefix + tt.want))
			g.Expect(err).To(MatchError(auth.ErrInvalidAnnotation))
			g.Expect(imp).To(BeNil())
			_, err = aws.ParseAssumeRole(sa)
			g.Expect(err).To(MatchError(prefix + tt.want))
		})
	}

	t.Run("a policy of 2048 characters once compacted is taken", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		// Spaces outside strings do not count: STS gets the compacted form.
		value := strings.Replace(policyOf(2048), `{"Version"`, "{   \"Version\"", 1)
		imp, err := aws.Provider{}.ParseImpersonation(serviceAccount(map[string]string{aws.AssumeRoleAnnotation: paramsRole + value}),
			fluxauth.WithSTSRegion("us-east-1"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(imp.Parameters[0].Value).To(HaveLen(2048))
	})
}

// largestAssumeRole is the largest value every field of the annotation
// allows, in ASCII, each at STS's limit: 50 tags of the longest keys and
// values, all transitive, 10 policy ARNs with the longest names, a
// 2048-character policy. Only IAM paths are left out: with a 512-character
// path on every ARN the value would pass the annotation limit, and be
// refused as too large.
func largestAssumeRole() string {
	var b strings.Builder
	b.WriteString("roleARN: arn:aws-us-gov:iam::222222222222:role/" + strings.Repeat("r", 64) + "\n")
	b.WriteString("useServiceAccount: true\n")
	b.WriteString("externalID: " + strings.Repeat("e", 1224) + "\n")
	b.WriteString("duration: 1h\n")
	b.WriteString("sessionTags:\n")
	for i := range 50 {
		fmt.Fprintf(&b, "  %s%02d: %s\n", strings.Repeat("k", 126), i, strings.Repeat("v:-/", 64))
	}
	b.WriteString("transitiveTagKeys:\n")
	for i := range 50 {
		fmt.Fprintf(&b, "  - %s%02d\n", strings.Repeat("k", 126), i)
	}
	b.WriteString("policyARNs:\n")
	for i := range 10 {
		fmt.Fprintf(&b, "  - arn:aws-us-gov:iam::222222222222:policy/%s%d\n", strings.Repeat("n", 127), i)
	}
	stmt := `{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":["arn:aws:s3:::b/*"]}`
	policy := `{"Version":"2012-10-17","Statement":[` + stmt
	for len(policy)+len(stmt)+3 <= 2048 {
		policy += "," + stmt
	}
	policy += `],"Sid":"` + strings.Repeat("s", 2048-len(policy)-len(`],"Sid":""}`)) + `"}`
	b.WriteString("policy: '" + policy + "'\n")
	return b.String()
}

// The largest value the fields allow is taken whole: the annotation's size
// and token limits leave room for every field at STS's limits.
func TestLargestAssumeRoleValue(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	value := largestAssumeRole()
	imp, err := aws.Provider{}.ParseImpersonation(serviceAccount(map[string]string{aws.AssumeRoleAnnotation: value}),
		fluxauth.WithSTSRegion("us-east-1"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(imp.Parameters).To(HaveLen(6))
	g.Expect(imp.Parameters[2].Keys).To(HaveLen(50))
	g.Expect(imp.Parameters[5].Value).To(HaveLen(2048))
	t.Logf("largest legitimate value: %d bytes", len(value))
	g.Expect(len(value)).To(BeNumerically("<=", annotation.MaxValueBytes))
}
