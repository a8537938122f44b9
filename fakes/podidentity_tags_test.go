package fakes_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

// podTags are the session tags EKS Pod Identity gives the sessions of the
// source-controller pod.
var podTags = map[string]string{
	"eks-cluster-arn":            "arn:aws:eks:eu-central-1:123456789012:cluster/prod",
	"eks-cluster-name":           "prod",
	"kubernetes-namespace":       awsTestNamespace,
	"kubernetes-service-account": awsTestSA,
	"kubernetes-pod-name":        "source-controller-7d4b9c6f5-x2x7q",
	"kubernetes-pod-uid":         "0f3c5a1e-9b7d-4c2a-8e6f-1a2b3c4d5e6f",
}

// podTagKeys are the keys of podTags, sorted.
var podTagKeys = []string{
	"eks-cluster-arn", "eks-cluster-name", "kubernetes-namespace",
	"kubernetes-pod-name", "kubernetes-pod-uid", "kubernetes-service-account",
}

// podTaggedSession starts an agent for awsTestRole whose sessions carry
// podTags and returns the credentials it hands out, through the SDK's
// container credentials provider.
func podTaggedSession(t *testing.T, s *fakes.AWSSTS) aws.Credentials {
	t.Helper()
	agent, err := fakes.StartPodIdentityAgentWith(s, awsTestRole, fakes.PodIdentityAgentOptions{SessionTags: podTags})
	if err != nil {
		t.Fatalf("failed to start pod identity agent: %v", err)
	}
	t.Cleanup(agent.Close)
	creds, err := agent.Credentials().Retrieve(context.Background())
	if err != nil {
		t.Fatalf("failed to get pod identity credentials: %v", err)
	}
	return creds
}

// withTags returns a copy of base with the key, value pairs added.
func withTags(base map[string]string, kv ...string) map[string]string {
	m := maps.Clone(base)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestPodIdentityAgent_SessionTags(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	opts := fakes.PodIdentityAgentOptions{SessionTags: maps.Clone(podTags)}
	agent, err := fakes.StartPodIdentityAgentWith(s, awsTestRole, opts)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(agent.Close)
	// The agent keeps its own copy.
	opts.SessionTags["kubernetes-namespace"] = "changed"

	seen := map[string]bool{}
	for range 2 { // every session the agent hands out
		creds, err := agent.Credentials().Retrieve(context.Background())
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(seen).NotTo(HaveKey(creds.AccessKeyID))
		seen[creds.AccessKeyID] = true
		tags, keys, ok := s.SessionTags(creds.AccessKeyID)
		g.Expect(ok).To(BeTrue())
		g.Expect(tags).To(Equal(podTags))
		g.Expect(keys).To(Equal(podTagKeys))
	}

	// Without options, as before: no tags.
	plain := awsStartPodIdentityAgent(t, s, awsTestRole)
	creds, err := plain.Credentials().Retrieve(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	tags, keys, ok := s.SessionTags(creds.AccessKeyID)
	g.Expect(ok).To(BeTrue())
	g.Expect(tags).To(BeNil())
	g.Expect(keys).To(BeNil())
}

// TestPodIdentityAgent_SessionTags_Chained assumes a tenant role from a
// tagged Pod Identity session, as the library does for every tenant
// object, through the real SDK.
func TestPodIdentityAgent_SessionTags_Chained(t *testing.T) {
	t.Parallel()
	const tagSessionDenied = "User: " + paramsCallerARN + " is not authorized to perform: sts:TagSession on resource: " + awsTestTenantRole
	tenantTags := paramsTags(tenantNamespaceTag, "apps", tenantServiceAccountTag, "podinfo")
	tenantKeys := []string{tenantNamespaceTag, tenantServiceAccountTag}
	for _, tt := range []struct {
		name     string
		trust    []fakes.TrustOption
		in       sts.AssumeRoleInput
		wantCode string
		wantMsg  string
		wantTags map[string]string
		wantKeys []string
	}{
		{
			name:     "no tags sent: Pod Identity's inherited",
			trust:    []fakes.TrustOption{fakes.AllowTagSession()},
			wantTags: podTags,
			wantKeys: podTagKeys,
		},
		{
			name:     "inherited tags without sts:TagSession",
			wantCode: "AccessDenied",
			wantMsg:  tagSessionDenied,
		},
		{
			name:  "tenant tags and source identity on top of Pod Identity's",
			trust: []fakes.TrustOption{fakes.AllowTagSession(), fakes.AllowSetSourceIdentity()},
			in: sts.AssumeRoleInput{
				Tags:              tenantTags,
				TransitiveTagKeys: tenantKeys,
				SourceIdentity:    aws.String("apps.podinfo"),
			},
			wantTags: withTags(podTags, tenantNamespaceTag, "apps", tenantServiceAccountTag, "podinfo"),
			wantKeys: []string{
				"eks-cluster-arn", "eks-cluster-name", tenantNamespaceTag, tenantServiceAccountTag, "kubernetes-namespace",
				"kubernetes-pod-name", "kubernetes-pod-uid", "kubernetes-service-account",
			},
		},
		{
			name: "trust pinned to the tenant namespace and the controller's",
			trust: []fakes.TrustOption{fakes.AllowTagSession(),
				fakes.RequireRequestTag(tenantNamespaceTag, "apps"), fakes.RequireRequestTag("kubernetes-namespace", awsTestNamespace)},
			in:       sts.AssumeRoleInput{Tags: tenantTags},
			wantTags: withTags(podTags, tenantNamespaceTag, "apps", tenantServiceAccountTag, "podinfo"),
			wantKeys: podTagKeys,
		},
		{
			name: "trust pinned to another controller namespace",
			trust: []fakes.TrustOption{fakes.AllowTagSession(),
				fakes.RequireRequestTag(tenantNamespaceTag, "apps"), fakes.RequireRequestTag("kubernetes-namespace", "apps")},
			in:       sts.AssumeRoleInput{Tags: tenantTags},
			wantCode: "AccessDenied",
			wantMsg:  "User: " + paramsCallerARN + " is not authorized to perform: sts:AssumeRole on resource: " + awsTestTenantRole,
		},
		{
			name:     "a Pod Identity key set again",
			trust:    []fakes.TrustOption{fakes.AllowTagSession()},
			in:       sts.AssumeRoleInput{Tags: paramsTags(tenantNamespaceTag, "apps", "kubernetes-namespace", "apps")},
			wantCode: "InvalidParameterValue",
			wantMsg:  "The tag key 'kubernetes-namespace' conflicts with a transitive tag inherited from the calling session. Session tags cannot override inherited transitive tags.",
		},
		{
			name:     "a Pod Identity key set again in another case",
			trust:    []fakes.TrustOption{fakes.AllowTagSession()},
			in:       sts.AssumeRoleInput{Tags: paramsTags("EKS-Cluster-Name", "staging")},
			wantCode: "InvalidParameterValue",
			wantMsg:  "The tag key 'EKS-Cluster-Name' conflicts with a transitive tag inherited from the calling session. Session tags cannot override inherited transitive tags.",
		},
		{
			name:     "44 tags on top of Pod Identity's six",
			trust:    []fakes.TrustOption{fakes.AllowTagSession()},
			in:       sts.AssumeRoleInput{Tags: podNumberedTags(44)},
			wantTags: withTags(podTags, podNumberedKV(44)...),
			wantKeys: podTagKeys,
		},
		{
			name:     "45 tags on top of Pod Identity's six",
			trust:    []fakes.TrustOption{fakes.AllowTagSession()},
			in:       sts.AssumeRoleInput{Tags: podNumberedTags(45)},
			wantCode: "PackedPolicyTooLarge",
			wantMsg:  "Packed size of session tags consumes 102% of allotted space.",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			s, _ := paramsSTS(t, tt.trust...)
			pod := podTaggedSession(t, s)

			out, err := paramsAssume(s, pod, tt.in)

			g.Expect(s.Calls()).To(HaveLen(1))
			g.Expect(s.Calls()[0].Caller).To(Equal(awsTestRole))
			if tt.wantCode != "" {
				paramsExpectRefused(g, s, err, tt.wantCode, tt.wantMsg)
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.Calls()[0].SessionTags).To(Equal(tt.wantTags))
			tags, keys, ok := s.SessionTags(aws.ToString(out.Credentials.AccessKeyId))
			g.Expect(ok).To(BeTrue())
			g.Expect(tags).To(Equal(tt.wantTags))
			g.Expect(keys).To(Equal(tt.wantKeys))
			id, _ := s.SessionSourceIdentity(aws.ToString(out.Credentials.AccessKeyId))
			g.Expect(id).To(Equal(aws.ToString(tt.in.SourceIdentity)))
		})
	}
}

// podNumberedKV returns n key, value pairs of tags Pod Identity does not
// set.
func podNumberedKV(n int) []string {
	var kv []string
	for i := range n {
		kv = append(kv, fmt.Sprintf("team-%d", i), "a")
	}
	return kv
}

func podNumberedTags(n int) []types.Tag { return paramsTags(podNumberedKV(n)...) }

func TestStartPodIdentityAgentWith_InvalidSessionTags(t *testing.T) {
	t.Parallel()
	const prefix = "failed to start pod identity agent: invalid session tags: "
	many := map[string]string{}
	var manyShown []string
	for i := range 51 {
		many[fmt.Sprintf("k%02d", i)] = "v"
		manyShown = append(manyShown, fmt.Sprintf("{Key: k%02d,Value: v}", i))
	}
	for _, tt := range []struct {
		name string
		tags map[string]string
		want string
	}{
		{
			name: "reserved prefix",
			tags: map[string]string{"aws:eks-cluster-name": "prod"},
			want: "Tag keys may not start with the reserved prefix 'aws:'",
		},
		{
			name: "keys equal ignoring case",
			tags: map[string]string{"kubernetes-namespace": "a", "Kubernetes-Namespace": "b"},
			want: "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
		},
		{
			name: "forbidden character",
			tags: map[string]string{"kubernetes-namespace": "a;b"},
			want: `1 validation error detected: Value 'a;b' at 'tags.1.member.value' failed to satisfy constraint: Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]*`,
		},
		{
			name: "empty key",
			tags: map[string]string{"": "a"},
			want: "1 validation error detected: Value '' at 'tags.1.member.key' failed to satisfy constraint: Member must have length greater than or equal to 1",
		},
		{
			name: "more than 50",
			tags: many,
			want: "1 validation error detected: Value '[" + strings.Join(manyShown, ", ") +
				"]' at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			s := awsStartSTS(t, fakes.AWSSTSOptions{})
			a, err := fakes.StartPodIdentityAgentWith(s, awsTestRole, fakes.PodIdentityAgentOptions{SessionTags: tt.tags})
			g.Expect(a).To(BeNil())
			g.Expect(err).To(MatchError(prefix + tt.want))
		})
	}
}
