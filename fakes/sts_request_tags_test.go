package fakes_test

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

// The session tags the library sends on every AssumeRole.
const (
	tenantNamespaceTag      = "flux-tenant-namespace"
	tenantServiceAccountTag = "flux-tenant-service-account"
)

func TestSTS_AssumeRole_RequireRequestTag(t *testing.T) {
	t.Parallel()
	denied := func(action string) string { return sourceDenied(paramsCallerARN, action) }
	// inherited gives the caller a transitive tenant namespace tag and a
	// tenant service account tag that is not transitive.
	inherited := func(s *fakes.AWSSTS) aws.Credentials {
		return s.IssueTaggedCredentials(awsTestRole, map[string]string{
			tenantNamespaceTag:      "apps",
			tenantServiceAccountTag: "podinfo",
		}, []string{tenantNamespaceTag})
	}
	for _, tt := range []struct {
		name    string
		trust   []fakes.TrustOption
		creds   func(s *fakes.AWSSTS) aws.Credentials
		tags    []string
		wantMsg string
	}{
		{
			name:  "sent",
			trust: []fakes.TrustOption{fakes.AllowTagSession(), fakes.RequireRequestTag(tenantNamespaceTag, "apps")},
			tags:  []string{tenantNamespaceTag, "apps"},
		},
		{
			name:  "sent with the key in another case",
			trust: []fakes.TrustOption{fakes.AllowTagSession(), fakes.RequireRequestTag(tenantNamespaceTag, "apps")},
			tags:  []string{"Flux-Tenant-Namespace", "apps"},
		},
		{
			name:    "sent with the value in another case",
			trust:   []fakes.TrustOption{fakes.AllowTagSession(), fakes.RequireRequestTag(tenantNamespaceTag, "apps")},
			tags:    []string{tenantNamespaceTag, "Apps"},
			wantMsg: denied("sts:AssumeRole"),
		},
		{
			name:    "sent with another value",
			trust:   []fakes.TrustOption{fakes.AllowTagSession(), fakes.RequireRequestTag(tenantNamespaceTag, "apps")},
			tags:    []string{tenantNamespaceTag, "flux-system"},
			wantMsg: denied("sts:AssumeRole"),
		},
		{
			name:    "another tag sent",
			trust:   []fakes.TrustOption{fakes.AllowTagSession(), fakes.RequireRequestTag(tenantNamespaceTag, "apps")},
			tags:    []string{tenantServiceAccountTag, "apps"},
			wantMsg: denied("sts:AssumeRole"),
		},
		{
			name:    "no tags",
			trust:   []fakes.TrustOption{fakes.AllowTagSession(), fakes.RequireRequestTag(tenantNamespaceTag, "apps")},
			wantMsg: denied("sts:AssumeRole"),
		},
		{
			name:  "inherited transitive tag",
			trust: []fakes.TrustOption{fakes.AllowTagSession(), fakes.RequireRequestTag(tenantNamespaceTag, "apps")},
			creds: inherited,
		},
		{
			name:    "caller tag that is not transitive",
			trust:   []fakes.TrustOption{fakes.AllowTagSession(), fakes.RequireRequestTag(tenantServiceAccountTag, "podinfo")},
			creds:   inherited,
			wantMsg: denied("sts:AssumeRole"),
		},
		{
			name: "two conditions, both met",
			trust: []fakes.TrustOption{fakes.AllowTagSession(),
				fakes.RequireRequestTag(tenantNamespaceTag, "apps"), fakes.RequireRequestTag(tenantServiceAccountTag, "podinfo")},
			tags: []string{tenantNamespaceTag, "apps", tenantServiceAccountTag, "podinfo"},
		},
		{
			name: "two conditions, one met",
			trust: []fakes.TrustOption{fakes.AllowTagSession(),
				fakes.RequireRequestTag(tenantNamespaceTag, "apps"), fakes.RequireRequestTag(tenantServiceAccountTag, "podinfo")},
			tags:    []string{tenantNamespaceTag, "apps", tenantServiceAccountTag, "other"},
			wantMsg: denied("sts:AssumeRole"),
		},
		{
			name:    "met without sts:TagSession",
			trust:   []fakes.TrustOption{fakes.RequireRequestTag(tenantNamespaceTag, "apps")},
			tags:    []string{tenantNamespaceTag, "apps"},
			wantMsg: denied("sts:TagSession"),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			s, _ := paramsSTS(t, tt.trust...)
			creds := s.IssueCredentials(awsTestRole)
			if tt.creds != nil {
				creds = tt.creds(s)
			}

			out, err := paramsAssume(s, creds, sts.AssumeRoleInput{Tags: paramsTags(tt.tags...)})

			if tt.wantMsg != "" {
				paramsExpectRefused(g, s, err, "AccessDenied", tt.wantMsg)
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(aws.ToString(out.AssumedRoleUser.Arn)).To(Equal(paramsTenantARN))
		})
	}

	t.Run("pinning a role to one namespace", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		// A trust pinning the role to one namespace by both the tenant
		// namespace tag and the source identity the library sends.
		s, _ := paramsSTS(t, fakes.AllowTagSession(), fakes.AllowSetSourceIdentity(),
			fakes.RequireRequestTag(tenantNamespaceTag, "apps"), fakes.RequireSourceIdentity("apps.*"))
		creds := s.IssueCredentials(awsTestRole)
		for _, tt := range []struct {
			namespace, sourceIdentity string
			wantDeny                  bool
		}{
			{namespace: "apps", sourceIdentity: "apps.podinfo"},
			{namespace: "other", sourceIdentity: "apps.podinfo", wantDeny: true},
			{namespace: "apps", sourceIdentity: "other.podinfo", wantDeny: true},
		} {
			_, err := paramsAssume(s, creds, sts.AssumeRoleInput{
				Tags:              paramsTags(tenantNamespaceTag, tt.namespace, tenantServiceAccountTag, "podinfo"),
				TransitiveTagKeys: []string{tenantNamespaceTag, tenantServiceAccountTag},
				SourceIdentity:    aws.String(tt.sourceIdentity),
			})
			if tt.wantDeny {
				paramsExpectRefused(g, s, err, "AccessDenied", denied("sts:AssumeRole"))
				continue
			}
			g.Expect(err).NotTo(HaveOccurred())
		}
	})
}

// TestSTS_AssumeRole_TagLimitWithInheritedTags: the limit of 50 session
// tags applies to the inherited transitive tags and the requested ones
// together.
func TestSTS_AssumeRole_TagLimitWithInheritedTags(t *testing.T) {
	t.Parallel()
	// The caller has 30 transitive tags and 10 that are not.
	callerTags := map[string]string{}
	var transitive []string
	for i := range 40 {
		k := fmt.Sprintf("caller-%d", i)
		callerTags[k] = "v"
		if i < 30 {
			transitive = append(transitive, k)
		}
	}
	requested := func(n int) []string {
		var kv []string
		for i := range n {
			kv = append(kv, fmt.Sprintf("request-%d", i), "v")
		}
		return kv
	}
	for _, tt := range []struct {
		requested int
		wantMsg   string
	}{
		{requested: 20},
		{requested: 21, wantMsg: "Packed size of session tags consumes 102% of allotted space."},
		{requested: 50, wantMsg: "Packed size of session tags consumes 160% of allotted space."},
	} {
		t.Run(fmt.Sprint(tt.requested), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			s, _ := paramsSTS(t, fakes.AllowTagSession())
			creds := s.IssueTaggedCredentials(awsTestRole, callerTags, transitive)

			out, err := paramsAssume(s, creds, sts.AssumeRoleInput{Tags: paramsTags(requested(tt.requested)...)})

			if tt.wantMsg != "" {
				paramsExpectRefused(g, s, err, "PackedPolicyTooLarge", tt.wantMsg)
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			tags, _, _ := s.SessionTags(aws.ToString(out.Credentials.AccessKeyId))
			g.Expect(tags).To(HaveLen(50))
		})
	}
}
