package fakes_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

// paramsTenantARN is the session awsTestTenantRole gets from paramsAssume.
const paramsTenantARN = "arn:aws:sts::210987654321:assumed-role/tenant-a/flux-session"

// paramsCallerARN is the session of IssueCredentials(awsTestRole).
const paramsCallerARN = "arn:aws:sts::123456789012:assumed-role/controller/fakes-issued"

// paramsManagedARN is a managed policy the tests define.
const paramsManagedARN = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"

// paramsSTS starts an STS on its own clock where awsTestRole may assume
// awsTestTenantRole with the given trust options.
func paramsSTS(t *testing.T, opts ...fakes.TrustOption) (*fakes.AWSSTS, *awsClock) {
	t.Helper()
	clock := newAWSClock()
	s := awsStartSTS(t, fakes.AWSSTSOptions{Now: clock.Now})
	s.AllowAssumeRole(awsTestRole, awsTestTenantRole, opts...)
	return s, clock
}

// paramsAssume calls AssumeRole signed with creds, with the real SDK client;
// RoleArn defaults to awsTestTenantRole and RoleSessionName to
// awsTestSession.
func paramsAssume(s *fakes.AWSSTS, creds aws.Credentials, in sts.AssumeRoleInput) (*sts.AssumeRoleOutput, error) {
	if in.RoleArn == nil {
		in.RoleArn = aws.String(awsTestTenantRole)
	}
	if in.RoleSessionName == nil {
		in.RoleSessionName = aws.String(awsTestSession)
	}
	return awsSTSClient(s, awsStatic(creds)).AssumeRole(context.Background(), &in)
}

// paramsCreds are the credentials an AssumeRole returned.
func paramsCreds(out *sts.AssumeRoleOutput) aws.Credentials {
	return aws.Credentials{
		AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken:    aws.ToString(out.Credentials.SessionToken),
	}
}

// paramsTags makes Tags from key, value pairs.
func paramsTags(kv ...string) []types.Tag {
	var tags []types.Tag
	for i := 0; i < len(kv); i += 2 {
		tags = append(tags, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return tags
}

// paramsPolicyARNs makes PolicyArns from ARNs.
func paramsPolicyARNs(arns ...string) []types.PolicyDescriptorType {
	var out []types.PolicyDescriptorType
	for _, a := range arns {
		out = append(out, types.PolicyDescriptorType{Arn: aws.String(a)})
	}
	return out
}

// awsErrorMessage returns the AWS error message of err, or "" when it has
// none.
func awsErrorMessage(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorMessage()
	}
	return ""
}

// paramsExpectRefused checks that err is the AWS error code with message
// msg, and that the fake recorded the refusal as its last call.
func paramsExpectRefused(g Gomega, s *fakes.AWSSTS, err error, code, msg string) {
	g.ExpectWithOffset(1, err).To(HaveOccurred())
	g.ExpectWithOffset(1, awsErrorCode(err)).To(Equal(code), "%v", err)
	g.ExpectWithOffset(1, awsErrorMessage(err)).To(Equal(msg))
	calls := s.Calls()
	g.ExpectWithOffset(1, calls).NotTo(BeEmpty())
	g.ExpectWithOffset(1, calls[len(calls)-1].Err).To(Equal(code))
	g.ExpectWithOffset(1, calls[len(calls)-1].SessionTags).To(BeNil())
}

func TestSTS_AssumeRole_ParameterValidation(t *testing.T) {
	t.Parallel()
	const validation = "1 validation error detected: Value %s at '%s' failed to satisfy constraint: %s"
	tagPattern := `Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]`
	var manyTags []types.Tag
	var manyTagsShown, manyKeys []string
	for i := range 51 {
		k := fmt.Sprintf("k%d", i)
		manyTags = append(manyTags, paramsTags(k, "v")...)
		manyTagsShown = append(manyTagsShown, "{Key: "+k+",Value: v}")
		manyKeys = append(manyKeys, k)
	}
	var manyARNs, manyARNsShown []string
	for i := range 11 {
		arn := fmt.Sprintf("arn:aws:iam::aws:policy/P%d", i)
		manyARNs = append(manyARNs, arn)
		manyARNsShown = append(manyARNsShown, "{Arn: "+arn+"}")
	}
	longPolicy := `{"Statement":[],"Id":"` + strings.Repeat("x", 2049) + `"}`

	for _, tt := range []struct {
		name     string
		in       sts.AssumeRoleInput
		wantCode string
		wantMsg  string
	}{
		{
			name:     "external ID too short",
			in:       sts.AssumeRoleInput{ExternalId: aws.String("x")},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, "'x'", "externalId", "Member must have length greater than or equal to 2"),
		},
		{
			name:     "external ID too long",
			in:       sts.AssumeRoleInput{ExternalId: aws.String(strings.Repeat("e", 1225))},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, "'"+strings.Repeat("e", 1225)+"'", "externalId", "Member must have length less than or equal to 1224"),
		},
		{
			name:     "external ID with a forbidden character",
			in:       sts.AssumeRoleInput{ExternalId: aws.String("tenant a")},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, "'tenant a'", "externalId", `Member must satisfy regular expression pattern: [\w+=,.@:\/-]*`),
		},
		{
			name:     "more than 50 tags",
			in:       sts.AssumeRoleInput{Tags: manyTags},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, "'["+strings.Join(manyTagsShown, ", ")+"]'", "tags", "Member must have length less than or equal to 50"),
		},
		{
			name:     "empty tag key",
			in:       sts.AssumeRoleInput{Tags: paramsTags("team", "a", "", "b")},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, "''", "tags.2.member.key", "Member must have length greater than or equal to 1"),
		},
		{
			name:     "tag key too long",
			in:       sts.AssumeRoleInput{Tags: paramsTags(strings.Repeat("k", 129), "v")},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, "'"+strings.Repeat("k", 129)+"'", "tags.1.member.key", "Member must have length less than or equal to 128"),
		},
		{
			name:     "tag key with a forbidden character",
			in:       sts.AssumeRoleInput{Tags: paramsTags("team*", "v")},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, "'team*'", "tags.1.member.key", tagPattern+"+"),
		},
		{
			name:     "tag value too long",
			in:       sts.AssumeRoleInput{Tags: paramsTags("team", strings.Repeat("v", 257))},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, "'"+strings.Repeat("v", 257)+"'", "tags.1.member.value", "Member must have length less than or equal to 256"),
		},
		{
			name:     "tag value with a forbidden character",
			in:       sts.AssumeRoleInput{Tags: paramsTags("team", "a;b")},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, "'a;b'", "tags.1.member.value", tagPattern+"*"),
		},
		{
			name:     "tag keys equal ignoring case",
			in:       sts.AssumeRoleInput{Tags: paramsTags("Team", "a", "team", "b")},
			wantCode: "InvalidParameterValue",
			wantMsg:  "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
		},
		{
			name:     "reserved tag key prefix",
			in:       sts.AssumeRoleInput{Tags: paramsTags("AWS:team", "a")},
			wantCode: "InvalidParameterValue",
			wantMsg:  "Tag keys may not start with the reserved prefix 'aws:'",
		},
		{
			name:     "more than 50 transitive tag keys",
			in:       sts.AssumeRoleInput{Tags: manyTags[:50], TransitiveTagKeys: append(manyKeys[:50:50], "k0")},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, "'["+strings.Join(manyKeys[:50], ", ")+", k0]'", "transitiveTagKeys", "Member must have length less than or equal to 50"),
		},
		{
			name:     "transitive tag key with a forbidden character",
			in:       sts.AssumeRoleInput{Tags: paramsTags("team", "a"), TransitiveTagKeys: []string{"team", "te am*"}},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, "'te am*'", "transitiveTagKeys.2.member", tagPattern+"+"),
		},
		{
			name:     "transitive tag key naming no requested tag",
			in:       sts.AssumeRoleInput{Tags: paramsTags("team", "a"), TransitiveTagKeys: []string{"env"}},
			wantCode: "InvalidParameterValue",
			wantMsg:  "The specified transitive tag key must be included in the requested tags.",
		},
		{
			name:     "transitive tag keys without tags",
			in:       sts.AssumeRoleInput{TransitiveTagKeys: []string{"team"}},
			wantCode: "InvalidParameterValue",
			wantMsg:  "The specified transitive tag key must be included in the requested tags.",
		},
		{
			name:     "duration below STS minimum",
			in:       sts.AssumeRoleInput{DurationSeconds: aws.Int32(899)},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, "'899'", "durationSeconds", "Member must have value greater than or equal to 900"),
		},
		{
			name:     "duration beyond the role chaining limit",
			in:       sts.AssumeRoleInput{DurationSeconds: aws.Int32(3601)},
			wantCode: "ValidationError",
			wantMsg:  "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
		},
		{
			name:     "policy too long",
			in:       sts.AssumeRoleInput{Policy: aws.String(longPolicy)},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, "'"+longPolicy+"'", "policy", "Member must have length less than or equal to 2048"),
		},
		{
			name:     "policy with a character beyond Latin-1",
			in:       sts.AssumeRoleInput{Policy: aws.String(`{"Statement":[],"Id":"Ā"}`)},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, `'{"Statement":[],"Id":"Ā"}'`, "policy", `Member must satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u00FF]+`),
		},
		{
			name:     "policy not JSON",
			in:       sts.AssumeRoleInput{Policy: aws.String(`{"Statement":`)},
			wantCode: "MalformedPolicyDocument",
			wantMsg:  "The policy is not in the valid JSON format.",
		},
		{
			name:     "policy not a JSON object",
			in:       sts.AssumeRoleInput{Policy: aws.String(`["Statement"]`)},
			wantCode: "MalformedPolicyDocument",
			wantMsg:  "The policy is not in the valid JSON format.",
		},
		{
			name:     "policy without Statement",
			in:       sts.AssumeRoleInput{Policy: aws.String(`{"Version":"2012-10-17"}`)},
			wantCode: "MalformedPolicyDocument",
			wantMsg:  "The policy is not in the valid JSON format.",
		},
		{
			name:     "policy statement without Resource",
			in:       sts.AssumeRoleInput{Policy: aws.String(`{"Statement":{"Effect":"Allow","Action":"ecr:*"}}`)},
			wantCode: "MalformedPolicyDocument",
			wantMsg:  "Syntax errors in policy.",
		},
		{
			name:     "policy with an unknown effect",
			in:       sts.AssumeRoleInput{Policy: aws.String(`{"Statement":{"Effect":"allow","Action":"ecr:*","Resource":"*"}}`)},
			wantCode: "MalformedPolicyDocument",
			wantMsg:  "Syntax errors in policy.",
		},
		{
			name:     "policy action without vendor",
			in:       sts.AssumeRoleInput{Policy: aws.String(`{"Statement":{"Effect":"Allow","Action":"GetAuthorizationToken","Resource":"*"}}`)},
			wantCode: "MalformedPolicyDocument",
			wantMsg:  "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
		},
		{
			name:     "policy with a principal",
			in:       sts.AssumeRoleInput{Policy: aws.String(`{"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*"}}`)},
			wantCode: "MalformedPolicyDocument",
			wantMsg:  "Policy document should not specify a principal.",
		},
		{
			name: "policy with a condition the fake cannot evaluate",
			in: sts.AssumeRoleInput{Policy: aws.String(
				`{"Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"eu-central-1"}}}}`)},
			wantCode: "MalformedPolicyDocument",
			wantMsg:  "The fake STS does not evaluate Condition; leave it out of session policies.",
		},
		{
			name:     "more than 10 policy ARNs",
			in:       sts.AssumeRoleInput{PolicyArns: paramsPolicyARNs(manyARNs...)},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, "'["+strings.Join(manyARNsShown, ", ")+"]'", "policyArns", "Member must have length less than or equal to 10"),
		},
		{
			name:     "policy ARN too short",
			in:       sts.AssumeRoleInput{PolicyArns: paramsPolicyARNs(paramsManagedARN, "arn:aws:iam::aws:p")},
			wantCode: "ValidationError",
			wantMsg:  fmt.Sprintf(validation, "'arn:aws:iam::aws:p'", "policyArns.2.member.arn", "Member must have length greater than or equal to 20"),
		},
		{
			name:     "undefined managed policy",
			in:       sts.AssumeRoleInput{PolicyArns: paramsPolicyARNs(paramsManagedARN, "arn:aws:iam::aws:policy/Undefined")},
			wantCode: "MalformedPolicyDocument",
			wantMsg:  "Policy arn:aws:iam::aws:policy/Undefined does not exist or is not attachable.",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			// A trust that would allow everything: only the parameters
			// can be refused.
			s, _ := paramsSTS(t, fakes.AllowTagSession())
			s.DefineManagedPolicy(paramsManagedARN, `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`)
			creds := s.IssueCredentials(awsTestRole)

			_, err := paramsAssume(s, creds, tt.in)

			paramsExpectRefused(g, s, err, tt.wantCode, tt.wantMsg)
			g.Expect(s.Calls()).To(HaveLen(1))
			g.Expect(s.Calls()[0].Caller).To(Equal(awsTestRole))
		})
	}
}

// TestSTS_AssumeRole_ValidatesAfterAuthentication shows that an invalid
// session parameter in an unauthenticated request is not revealed.
func TestSTS_AssumeRole_ValidatesAfterAuthentication(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	s, _ := paramsSTS(t)
	creds := s.IssueCredentials(awsTestRole)
	creds.SessionToken = ""
	_, err := paramsAssume(s, creds, sts.AssumeRoleInput{ExternalId: aws.String("x"), Tags: paramsTags("aws:x", "y")})
	paramsExpectRefused(g, s, err, "InvalidClientTokenId", "The security token included in the request is invalid.")
}

func TestSTS_AssumeRole_ExternalID(t *testing.T) {
	t.Parallel()
	const denied = "User: " + paramsCallerARN + " is not authorized to perform: sts:AssumeRole on resource: " + awsTestTenantRole
	for _, tt := range []struct {
		name     string
		trust    []fakes.TrustOption
		id       *string
		wantDeny bool
	}{
		{name: "required and right", trust: []fakes.TrustOption{fakes.RequireExternalID("tenant-a-7f3c")}, id: aws.String("tenant-a-7f3c")},
		{name: "required and wrong", trust: []fakes.TrustOption{fakes.RequireExternalID("tenant-a-7f3c")}, id: aws.String("tenant-b-7f3c"), wantDeny: true},
		{name: "required and differing in case", trust: []fakes.TrustOption{fakes.RequireExternalID("tenant-a-7f3c")}, id: aws.String("TENANT-A-7F3C"), wantDeny: true},
		{name: "required and missing", trust: []fakes.TrustOption{fakes.RequireExternalID("tenant-a-7f3c")}, wantDeny: true},
		{name: "sent but not required", id: aws.String("tenant-a-7f3c")},
		{name: "neither"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			s, _ := paramsSTS(t, tt.trust...)

			out, err := paramsAssume(s, s.IssueCredentials(awsTestRole), sts.AssumeRoleInput{ExternalId: tt.id})

			g.Expect(s.Calls()).To(HaveLen(1))
			g.Expect(s.Calls()[0].ExternalID).To(Equal(aws.ToString(tt.id)))
			if tt.wantDeny {
				paramsExpectRefused(g, s, err, "AccessDenied", denied)
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(aws.ToString(out.AssumedRoleUser.Arn)).To(Equal(paramsTenantARN))
			g.Expect(s.Calls()[0].Err).To(BeEmpty())
		})
	}

	t.Run("another statement without the condition", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		// Trust statements are alternatives, as in an IAM trust policy.
		s, _ := paramsSTS(t, fakes.RequireExternalID("tenant-a-7f3c"))
		s.AllowAssumeRole(awsTestRole, awsTestTenantRole)
		_, err := paramsAssume(s, s.IssueCredentials(awsTestRole), sts.AssumeRoleInput{})
		g.Expect(err).NotTo(HaveOccurred())
	})
}

func TestSTS_AssumeRole_TagSession(t *testing.T) {
	t.Parallel()
	const deniedTagSession = "User: " + paramsCallerARN + " is not authorized to perform: sts:TagSession on resource: " + awsTestTenantRole
	const deniedAssumeRole = "User: " + paramsCallerARN + " is not authorized to perform: sts:AssumeRole on resource: " + awsTestTenantRole
	inherited := func(s *fakes.AWSSTS) aws.Credentials {
		return s.IssueTaggedCredentials(awsTestRole, map[string]string{"eks-cluster-name": "prod", "team": "a"}, []string{"eks-cluster-name"})
	}
	untransitive := func(s *fakes.AWSSTS) aws.Credentials {
		return s.IssueTaggedCredentials(awsTestRole, map[string]string{"team": "a"}, nil)
	}
	for _, tt := range []struct {
		name     string
		trust    [][]fakes.TrustOption // one AllowAssumeRole per element
		creds    func(s *fakes.AWSSTS) aws.Credentials
		in       sts.AssumeRoleInput
		wantMsg  string
		wantTags map[string]string
	}{
		{
			name:    "requested tags without sts:TagSession",
			trust:   [][]fakes.TrustOption{nil},
			in:      sts.AssumeRoleInput{Tags: paramsTags("team", "a")},
			wantMsg: deniedTagSession,
		},
		{
			name:     "requested tags with sts:TagSession",
			trust:    [][]fakes.TrustOption{{fakes.AllowTagSession()}},
			in:       sts.AssumeRoleInput{Tags: paramsTags("team", "a")},
			wantTags: map[string]string{"team": "a"},
		},
		{
			name:    "inherited transitive tags without sts:TagSession",
			trust:   [][]fakes.TrustOption{nil},
			creds:   inherited,
			wantMsg: deniedTagSession,
		},
		{
			name:     "inherited transitive tags with sts:TagSession",
			trust:    [][]fakes.TrustOption{{fakes.AllowTagSession()}},
			creds:    inherited,
			wantTags: map[string]string{"eks-cluster-name": "prod"},
		},
		{
			name:  "caller tags that are not transitive",
			trust: [][]fakes.TrustOption{nil},
			creds: untransitive,
		},
		{
			name:  "an empty tag list",
			trust: [][]fakes.TrustOption{nil},
			in:    sts.AssumeRoleInput{Tags: []types.Tag{}},
		},
		{
			name:     "sts:TagSession under the external ID condition, met",
			trust:    [][]fakes.TrustOption{nil, {fakes.AllowTagSession(), fakes.RequireExternalID("tenant-a-7f3c")}},
			in:       sts.AssumeRoleInput{Tags: paramsTags("team", "a"), ExternalId: aws.String("tenant-a-7f3c")},
			wantTags: map[string]string{"team": "a"},
		},
		{
			name:    "sts:TagSession under the external ID condition, not met",
			trust:   [][]fakes.TrustOption{nil, {fakes.AllowTagSession(), fakes.RequireExternalID("tenant-a-7f3c")}},
			in:      sts.AssumeRoleInput{Tags: paramsTags("team", "a")},
			wantMsg: deniedTagSession,
		},
		{
			name:    "the only statement's external ID condition not met",
			trust:   [][]fakes.TrustOption{{fakes.AllowTagSession(), fakes.RequireExternalID("tenant-a-7f3c")}},
			in:      sts.AssumeRoleInput{Tags: paramsTags("team", "a")},
			wantMsg: deniedAssumeRole,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			clock := newAWSClock()
			s := awsStartSTS(t, fakes.AWSSTSOptions{Now: clock.Now})
			for _, opts := range tt.trust {
				s.AllowAssumeRole(awsTestRole, awsTestTenantRole, opts...)
			}
			creds := s.IssueCredentials(awsTestRole)
			if tt.creds != nil {
				creds = tt.creds(s)
			}

			out, err := paramsAssume(s, creds, tt.in)

			if tt.wantMsg != "" {
				paramsExpectRefused(g, s, err, "AccessDenied", tt.wantMsg)
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			tags, _, ok := s.SessionTags(aws.ToString(out.Credentials.AccessKeyId))
			g.Expect(ok).To(BeTrue())
			g.Expect(tags).To(Equal(tt.wantTags))
			g.Expect(s.Calls()[0].SessionTags).To(Equal(tt.wantTags))
		})
	}
}

// TestSTS_AssumeRole_TransitiveTagsChain follows a Pod Identity session's
// transitive tags through two hops of role chaining.
func TestSTS_AssumeRole_TransitiveTagsChain(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	const (
		hop1 = "arn:aws:iam::123456789012:role/hop1"
		hop2 = "arn:aws:iam::123456789012:role/hop2"
		hop3 = "arn:aws:iam::123456789012:role/hop3"
	)
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	s.AllowAssumeRole(awsTestRole, hop1, fakes.AllowTagSession())
	s.AllowAssumeRole(hop1, hop2, fakes.AllowTagSession())
	s.AllowAssumeRole(hop2, hop3, fakes.AllowTagSession())
	pod := s.IssueTaggedCredentials(awsTestRole, map[string]string{
		"eks-cluster-name":     "prod",
		"kubernetes-namespace": "flux-system",
		"kubernetes-pod-name":  "source-controller-0",
	}, []string{"kubernetes-namespace", "EKS-cluster-name"})

	tags, keys, ok := s.SessionTags(pod.AccessKeyID)
	g.Expect(ok).To(BeTrue())
	g.Expect(tags).To(HaveLen(3))
	// Transitive keys take the spelling of the tag they name.
	g.Expect(keys).To(Equal([]string{"eks-cluster-name", "kubernetes-namespace"}))

	// Hop 1 inherits the transitive tags, not the pod name, and adds a
	// transitive tag of its own.
	out1, err := paramsAssume(s, pod, sts.AssumeRoleInput{
		RoleArn:           aws.String(hop1),
		Tags:              paramsTags("Team", "a", "cost-center", "42"),
		TransitiveTagKeys: []string{"team"},
	})
	g.Expect(err).NotTo(HaveOccurred())
	want1 := map[string]string{"eks-cluster-name": "prod", "kubernetes-namespace": "flux-system", "Team": "a", "cost-center": "42"}
	tags, keys, ok = s.SessionTags(aws.ToString(out1.Credentials.AccessKeyId))
	g.Expect(ok).To(BeTrue())
	g.Expect(tags).To(Equal(want1))
	g.Expect(keys).To(Equal([]string{"Team", "eks-cluster-name", "kubernetes-namespace"}))
	g.Expect(s.Calls()[0].SessionTags).To(Equal(want1))
	g.Expect(s.Calls()[0].TransitiveTagKeys).To(Equal([]string{"team"}))

	// Hop 2 passes no tags of its own: it carries the transitive ones.
	out2, err := paramsAssume(s, paramsCreds(out1), sts.AssumeRoleInput{RoleArn: aws.String(hop2)})
	g.Expect(err).NotTo(HaveOccurred())
	want2 := map[string]string{"eks-cluster-name": "prod", "kubernetes-namespace": "flux-system", "Team": "a"}
	tags, keys, ok = s.SessionTags(aws.ToString(out2.Credentials.AccessKeyId))
	g.Expect(ok).To(BeTrue())
	g.Expect(tags).To(Equal(want2))
	g.Expect(keys).To(Equal([]string{"Team", "eks-cluster-name", "kubernetes-namespace"}))
	g.Expect(s.Calls()[1].SessionTags).To(Equal(want2))
	g.Expect(s.Calls()[1].Tags).To(BeNil())

	// Hop 3 may not override an inherited key, in any case.
	for _, key := range []string{"team", "TEAM", "Kubernetes-Namespace"} {
		_, err := paramsAssume(s, paramsCreds(out2), sts.AssumeRoleInput{RoleArn: aws.String(hop3), Tags: paramsTags(key, "b")})
		paramsExpectRefused(g, s, err, "InvalidParameterValue", "The tag key '"+key+
			"' conflicts with a transitive tag inherited from the calling session. Session tags cannot override inherited transitive tags.")
	}
	// A key that was not transitive is free again.
	out3, err := paramsAssume(s, paramsCreds(out2), sts.AssumeRoleInput{RoleArn: aws.String(hop3), Tags: paramsTags("cost-center", "43")})
	g.Expect(err).NotTo(HaveOccurred())
	tags, _, _ = s.SessionTags(aws.ToString(out3.Credentials.AccessKeyId))
	g.Expect(tags).To(HaveKeyWithValue("cost-center", "43"))
	g.Expect(tags).To(HaveKeyWithValue("Team", "a"))
}

func TestSTS_SessionTags(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	s := awsStartSTS(t, fakes.AWSSTSOptions{Issuer: awsSharedIssuer()})
	s.AllowWebIdentity(awsTestRole, awsTestNamespace, awsTestSA)

	tags, keys, ok := s.SessionTags(s.IssueCredentials(awsTestRole).AccessKeyID)
	g.Expect(ok).To(BeTrue())
	g.Expect(tags).To(BeNil())
	g.Expect(keys).To(BeNil())

	web, err := awsSTSClient(s, nil).AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(awsTestRole),
		RoleSessionName:  aws.String(awsTestSession),
		WebIdentityToken: aws.String(awsSign(t, awsSharedIssuer(), awsTestNamespace, awsTestSA, "sts.amazonaws.com")),
	})
	g.Expect(err).NotTo(HaveOccurred())
	tags, keys, ok = s.SessionTags(aws.ToString(web.Credentials.AccessKeyId))
	g.Expect(ok).To(BeTrue())
	g.Expect(tags).To(BeNil())
	g.Expect(keys).To(BeNil())
	g.Expect(s.Calls()[0].SessionTags).To(BeNil())

	_, _, ok = s.SessionTags("ASIAAAAAAAAAAAAAAAAA")
	g.Expect(ok).To(BeFalse())

	// What SessionTags returns is a copy.
	issued := s.IssueTaggedCredentials(awsTestRole, map[string]string{"team": "a"}, []string{"team"})
	tags, keys, _ = s.SessionTags(issued.AccessKeyID)
	tags["team"], keys[0] = "b", "other"
	tags, keys, _ = s.SessionTags(issued.AccessKeyID)
	g.Expect(tags).To(Equal(map[string]string{"team": "a"}))
	g.Expect(keys).To(Equal([]string{"team"}))

	g.Expect(func() {
		s.IssueTaggedCredentials(awsTestRole, map[string]string{"team": "a"}, []string{"env"})
	}).To(PanicWith(ContainSubstring("transitive key 'env' names no tag")))
}

func TestSTS_DurationSeconds_SessionLimits(t *testing.T) {
	t.Parallel()
	t.Run("AssumeRole", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			duration int32
			want     time.Duration
			wantErr  bool
		}{
			{duration: 900, want: 15 * time.Minute},
			{duration: 3600, want: time.Hour},
			{duration: 3601, wantErr: true},
			{duration: 43200, wantErr: true},
		} {
			t.Run(fmt.Sprint(tt.duration), func(t *testing.T) {
				t.Parallel()
				g := NewWithT(t)
				clock := newAWSClock()
				// A long TTL, so DurationSeconds alone sets the lifetime.
				s := awsStartSTS(t, fakes.AWSSTSOptions{Now: clock.Now, TTL: 12 * time.Hour})
				s.AllowAssumeRole(awsTestRole, awsTestTenantRole)
				s.SetMaxSessionDuration(awsTestTenantRole, 12*time.Hour) // chaining caps it anyway
				out, err := paramsAssume(s, s.IssueCredentials(awsTestRole), sts.AssumeRoleInput{DurationSeconds: aws.Int32(tt.duration)})
				g.Expect(s.Calls()[0].DurationSeconds).To(Equal(int(tt.duration)))
				if tt.wantErr {
					paramsExpectRefused(g, s, err, "ValidationError",
						"The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
					return
				}
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(*out.Credentials.Expiration).To(Equal(clock.Now().Add(tt.want).UTC()))
			})
		}
	})

	t.Run("AssumeRoleWithWebIdentity", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name     string
			max      time.Duration
			duration int32
			want     time.Duration
			wantErr  bool
		}{
			{name: "default maximum", duration: 3600, want: time.Hour},
			{name: "beyond the default maximum", duration: 3601, wantErr: true},
			{name: "raised maximum", max: 2 * time.Hour, duration: 7200, want: 2 * time.Hour},
			{name: "beyond a raised maximum", max: 2 * time.Hour, duration: 7201, wantErr: true},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				g := NewWithT(t)
				clock := newAWSClock()
				s := awsStartSTS(t, fakes.AWSSTSOptions{Issuer: awsSharedIssuer(), Now: clock.Now, TTL: 12 * time.Hour})
				s.AllowWebIdentity(awsTestRole, awsTestNamespace, awsTestSA)
				if tt.max != 0 {
					s.SetMaxSessionDuration(awsTestRole, tt.max)
				}
				out, err := awsSTSClient(s, nil).AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
					RoleArn:          aws.String(awsTestRole),
					RoleSessionName:  aws.String(awsTestSession),
					WebIdentityToken: aws.String(awsSign(t, awsSharedIssuer(), awsTestNamespace, awsTestSA, "sts.amazonaws.com")),
					DurationSeconds:  aws.Int32(tt.duration),
				})
				g.Expect(s.Calls()[0].DurationSeconds).To(Equal(int(tt.duration)))
				if tt.wantErr {
					paramsExpectRefused(g, s, err, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
					return
				}
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(*out.Credentials.Expiration).To(Equal(clock.Now().Add(tt.want).UTC()))
			})
		}
	})

	t.Run("SetMaxSessionDuration refuses IAM's impossible values", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		s := awsStartSTS(t, fakes.AWSSTSOptions{})
		g.Expect(func() { s.SetMaxSessionDuration(awsTestRole, 59*time.Minute) }).To(Panic())
		g.Expect(func() { s.SetMaxSessionDuration(awsTestRole, 12*time.Hour+time.Second) }).To(Panic())
	})
}

// TestSTS_RecordsSessionParameters checks that calls record the session
// parameters as sent, for refused calls too, so that tests can assert
// what a library sent.
func TestSTS_RecordsSessionParameters(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	s, _ := paramsSTS(t, fakes.AllowTagSession(), fakes.RequireExternalID("tenant-a-7f3c"))
	s.DefineManagedPolicy(paramsManagedARN, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:Get*","ecr:BatchGetImage"],"Resource":"*"}]}`)
	s.DefineManagedPolicy("arn:aws:iam::123456789012:policy/team/eks-read", `{"Statement":{"Effect":"Allow","Action":"eks:Describe*","Resource":"*"}}`)
	policy := `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"ecr:BatchGetImage","Resource":"*"}}`
	in := sts.AssumeRoleInput{
		RoleArn:           aws.String(awsTestTenantRole),
		RoleSessionName:   aws.String(awsTestSession),
		ExternalId:        aws.String("tenant-a-7f3c"),
		DurationSeconds:   aws.Int32(1800),
		Tags:              paramsTags("team", "a b", "env", ""),
		TransitiveTagKeys: []string{"team"},
		PolicyArns:        paramsPolicyARNs(paramsManagedARN, "arn:aws:iam::123456789012:policy/team/eks-read"),
		Policy:            aws.String(policy),
	}
	want := fakes.AWSSTSCall{
		Action:            "AssumeRole",
		RoleARN:           awsTestTenantRole,
		RoleSessionName:   awsTestSession,
		Caller:            awsTestRole,
		Region:            awsTestRegion,
		ExternalID:        "tenant-a-7f3c",
		DurationSeconds:   1800,
		Tags:              map[string]string{"team": "a b", "env": ""},
		TransitiveTagKeys: []string{"team"},
		PolicyARNs:        []string{paramsManagedARN, "arn:aws:iam::123456789012:policy/team/eks-read"},
		Policy:            policy,
		SessionTags:       map[string]string{"team": "a b", "env": ""},
	}

	_, err := paramsAssume(s, s.IssueCredentials(awsTestRole), in)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.Calls()).To(Equal([]fakes.AWSSTSCall{want}))

	// Refused before authentication: still recorded as sent.
	_, err = awsSTSClient(s, aws.AnonymousCredentials{}).AssumeRole(context.Background(), &in)
	g.Expect(awsErrorCode(err)).To(Equal("MissingAuthenticationToken"))
	refused := want
	refused.Caller, refused.Region, refused.SessionTags, refused.Err = "", "", nil, "MissingAuthenticationToken"
	g.Expect(s.Calls()[1]).To(Equal(refused))

	// Web identity records the parameters it takes.
	wi := awsStartSTS(t, fakes.AWSSTSOptions{Issuer: awsSharedIssuer()})
	wi.AllowWebIdentity(awsTestRole, awsTestNamespace, awsTestSA)
	wi.DefineManagedPolicy(paramsManagedARN, `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`)
	_, err = awsSTSClient(wi, nil).AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(awsTestRole),
		RoleSessionName:  aws.String(awsTestSession),
		WebIdentityToken: aws.String(awsSign(t, awsSharedIssuer(), awsTestNamespace, awsTestSA, "sts.amazonaws.com")),
		DurationSeconds:  aws.Int32(900),
		PolicyArns:       paramsPolicyARNs(paramsManagedARN),
		Policy:           aws.String(policy),
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wi.Calls()).To(Equal([]fakes.AWSSTSCall{{
		Action:          "AssumeRoleWithWebIdentity",
		RoleARN:         awsTestRole,
		RoleSessionName: awsTestSession,
		Caller:          "system:serviceaccount:flux-system:source-controller",
		DurationSeconds: 900,
		PolicyARNs:      []string{paramsManagedARN},
		Policy:          policy,
	}}))
}

func TestSTS_DefineManagedPolicy_Refuses(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	allowAll := `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`
	g.Expect(func() { s.DefineManagedPolicy("arn:aws:iam::aws:role/ReadOnly", allowAll) }).
		To(PanicWith(ContainSubstring("invalid policy ARN")))
	g.Expect(func() { s.DefineManagedPolicy(paramsManagedARN, `{"Statement":`) }).
		To(PanicWith(ContainSubstring("The policy is not in the valid JSON format.")))
	g.Expect(func() {
		s.DefineManagedPolicy(paramsManagedARN, `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}}`)
	}).To(PanicWith(ContainSubstring("does not evaluate Condition")))
	g.Expect(func() { s.DefineManagedPolicy(paramsManagedARN, allowAll) }).NotTo(Panic())
}
