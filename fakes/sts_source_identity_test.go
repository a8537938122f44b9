package fakes_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

const (
	// sourceID is the source identity the library sends: the
	// ServiceAccount a controller acts for.
	sourceID = "flux-system.source-controller"
	// sourceHop1 and sourceHop2 are roles further down a chain from
	// awsTestTenantRole.
	sourceHop1 = "arn:aws:iam::210987654321:role/hop1"
	sourceHop2 = "arn:aws:iam::210987654321:role/hop2"
)

// sourceDenied is the AccessDenied message for caller performing action on
// awsTestTenantRole.
func sourceDenied(caller, action string) string {
	return "User: " + caller + " is not authorized to perform: " + action + " on resource: " + awsTestTenantRole
}

func TestSTS_AssumeRole_SourceIdentityValidation(t *testing.T) {
	t.Parallel()
	const validation = "1 validation error detected: Value '%s' at 'sourceIdentity' failed to satisfy constraint: %s"
	const pattern = `Member must satisfy regular expression pattern: [\w+=,.@-]*`
	for _, tt := range []struct {
		name, id, want string
	}{
		{name: "empty", id: "", want: fmt.Sprintf(validation, "", "Member must have length greater than or equal to 2")},
		{name: "too short", id: "x", want: fmt.Sprintf(validation, "x", "Member must have length greater than or equal to 2")},
		{name: "too long", id: strings.Repeat("s", 65), want: fmt.Sprintf(validation, strings.Repeat("s", 65), "Member must have length less than or equal to 64")},
		{name: "space", id: "flux system", want: fmt.Sprintf(validation, "flux system", pattern)},
		{name: "slash", id: "flux-system/source-controller", want: fmt.Sprintf(validation, "flux-system/source-controller", pattern)},
		// AWS reserves the prefix; ':' is outside the pattern anyway.
		{name: "reserved prefix", id: "aws:flux", want: fmt.Sprintf(validation, "aws:flux", pattern)},
		{name: "reserved prefix in upper case", id: "AWS:flux", want: fmt.Sprintf(validation, "AWS:flux", pattern)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			s, _ := paramsSTS(t, fakes.AllowSetSourceIdentity())

			_, err := paramsAssume(s, s.IssueCredentials(awsTestRole), sts.AssumeRoleInput{SourceIdentity: aws.String(tt.id)})

			paramsExpectRefused(g, s, err, "ValidationError", tt.want)
			g.Expect(s.Calls()).To(HaveLen(1))
			g.Expect(s.Calls()[0].SourceIdentity).To(Equal(tt.id))
		})
	}

	t.Run("longest and every allowed character", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		s, _ := paramsSTS(t, fakes.AllowSetSourceIdentity())
		for _, id := range []string{"ab", strings.Repeat("s", 64), "aZ09_+=,.@-"} {
			out, err := paramsAssume(s, s.IssueCredentials(awsTestRole), sts.AssumeRoleInput{SourceIdentity: aws.String(id)})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(aws.ToString(out.SourceIdentity)).To(Equal(id))
		}
	})
}

func TestSTS_AssumeRole_SetSourceIdentity(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		trust   [][]fakes.TrustOption // one AllowAssumeRole per element
		id      *string
		wantMsg string
	}{
		{
			name:    "without sts:SetSourceIdentity",
			trust:   [][]fakes.TrustOption{{fakes.AllowTagSession()}},
			id:      aws.String(sourceID),
			wantMsg: sourceDenied(paramsCallerARN, "sts:SetSourceIdentity"),
		},
		{
			name:  "with sts:SetSourceIdentity",
			trust: [][]fakes.TrustOption{{fakes.AllowSetSourceIdentity()}},
			id:    aws.String(sourceID),
		},
		{
			name:  "none sent, none allowed",
			trust: [][]fakes.TrustOption{nil},
		},
		{
			name:  "sts:SetSourceIdentity in another statement",
			trust: [][]fakes.TrustOption{nil, {fakes.AllowSetSourceIdentity()}},
			id:    aws.String(sourceID),
		},
		{
			name:    "sts:SetSourceIdentity under an external ID condition not met",
			trust:   [][]fakes.TrustOption{nil, {fakes.AllowSetSourceIdentity(), fakes.RequireExternalID("tenant-a-7f3c")}},
			id:      aws.String(sourceID),
			wantMsg: sourceDenied(paramsCallerARN, "sts:SetSourceIdentity"),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			s := awsStartSTS(t, fakes.AWSSTSOptions{})
			for _, opts := range tt.trust {
				s.AllowAssumeRole(awsTestRole, awsTestTenantRole, opts...)
			}

			out, err := paramsAssume(s, s.IssueCredentials(awsTestRole), sts.AssumeRoleInput{SourceIdentity: tt.id})

			g.Expect(s.Calls()).To(HaveLen(1))
			g.Expect(s.Calls()[0].SourceIdentity).To(Equal(aws.ToString(tt.id)))
			if tt.wantMsg != "" {
				paramsExpectRefused(g, s, err, "AccessDenied", tt.wantMsg)
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(aws.ToString(out.SourceIdentity)).To(Equal(aws.ToString(tt.id)))
			id, ok := s.SessionSourceIdentity(aws.ToString(out.Credentials.AccessKeyId))
			g.Expect(ok).To(BeTrue())
			g.Expect(id).To(Equal(aws.ToString(tt.id)))
		})
	}
}

// TestSTS_AssumeRole_SetSourceIdentity_SessionPolicy shows that a caller
// restricted by session policies needs them to allow sts:SetSourceIdentity
// too.
func TestSTS_AssumeRole_SetSourceIdentity_SessionPolicy(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, policy, wantWhy string
	}{
		{
			name:    "policy without it",
			policy:  `{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}}`,
			wantWhy: " because no session policy allows the sts:SetSourceIdentity action",
		},
		{
			name:    "policy denying it",
			policy:  `{"Statement":[{"Effect":"Allow","Action":"sts:*","Resource":"*"},{"Effect":"Deny","Action":"sts:SetSourceIdentity","Resource":"*"}]}`,
			wantWhy: " with an explicit deny in a session policy",
		},
		{
			name:   "policy allowing it",
			policy: `{"Statement":{"Effect":"Allow","Action":["sts:AssumeRole","sts:SetSourceIdentity"],"Resource":"*"}}`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			s := awsStartSTS(t, fakes.AWSSTSOptions{})
			s.AllowAssumeRole(awsTestRole, awsTestOtherRole)
			s.AllowAssumeRole(awsTestOtherRole, awsTestTenantRole, fakes.AllowSetSourceIdentity())
			restricted, err := paramsAssume(s, s.IssueCredentials(awsTestRole), sts.AssumeRoleInput{
				RoleArn: aws.String(awsTestOtherRole),
				Policy:  aws.String(tt.policy),
			})
			g.Expect(err).NotTo(HaveOccurred())

			_, err = paramsAssume(s, paramsCreds(restricted), sts.AssumeRoleInput{SourceIdentity: aws.String(sourceID)})

			if tt.wantWhy != "" {
				paramsExpectRefused(g, s, err, "AccessDenied", sourceDenied(policySession, "sts:SetSourceIdentity")+tt.wantWhy)
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
		})
	}
}

// TestSTS_AssumeRole_SourceIdentityChain follows a source identity through
// role chaining: it is kept without being sent again, needs
// sts:SetSourceIdentity at every hop, and cannot be changed.
func TestSTS_AssumeRole_SourceIdentityChain(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	const tenantSession = "arn:aws:sts::210987654321:assumed-role/tenant-a/flux-session"
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	s.AllowAssumeRole(awsTestRole, awsTestTenantRole, fakes.AllowSetSourceIdentity())
	s.AllowAssumeRole(awsTestTenantRole, sourceHop1) // without sts:SetSourceIdentity
	s.AllowAssumeRole(awsTestTenantRole, sourceHop2, fakes.AllowSetSourceIdentity())

	tenant, err := paramsAssume(s, s.IssueCredentials(awsTestRole), sts.AssumeRoleInput{SourceIdentity: aws.String(sourceID)})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(aws.ToString(tenant.SourceIdentity)).To(Equal(sourceID))

	// The inherited source identity needs sts:SetSourceIdentity as a sent
	// one does.
	_, err = paramsAssume(s, paramsCreds(tenant), sts.AssumeRoleInput{RoleArn: aws.String(sourceHop1)})
	paramsExpectRefused(g, s, err, "AccessDenied",
		"User: "+tenantSession+" is not authorized to perform: sts:SetSourceIdentity on resource: "+sourceHop1)

	// Not sent: inherited.
	hop2, err := paramsAssume(s, paramsCreds(tenant), sts.AssumeRoleInput{RoleArn: aws.String(sourceHop2)})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(aws.ToString(hop2.SourceIdentity)).To(Equal(sourceID))
	id, ok := s.SessionSourceIdentity(aws.ToString(hop2.Credentials.AccessKeyId))
	g.Expect(ok).To(BeTrue())
	g.Expect(id).To(Equal(sourceID))
	calls := s.Calls()
	g.Expect(calls[len(calls)-1].SourceIdentity).To(BeEmpty(), "recorded as sent")

	// Sent again unchanged: allowed.
	same, err := paramsAssume(s, paramsCreds(tenant), sts.AssumeRoleInput{RoleArn: aws.String(sourceHop2), SourceIdentity: aws.String(sourceID)})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(aws.ToString(same.SourceIdentity)).To(Equal(sourceID))

	// Changed, even in case only: refused.
	for _, other := range []string{"flux-system.kustomize-controller", strings.ToUpper(sourceID)} {
		_, err = paramsAssume(s, paramsCreds(hop2), sts.AssumeRoleInput{RoleArn: aws.String(sourceHop2), SourceIdentity: aws.String(other)})
		paramsExpectRefused(g, s, err, "AccessDenied",
			"User: arn:aws:sts::210987654321:assumed-role/hop2/flux-session is not authorized to perform: sts:SetSourceIdentity on resource: "+sourceHop2+
				" because the source identity of the calling session cannot be changed")
		calls := s.Calls()
		g.Expect(calls[len(calls)-1].SourceIdentity).To(Equal(other))
	}

	// A session without one has none, and an unknown key is reported.
	id, ok = s.SessionSourceIdentity(s.IssueCredentials(awsTestRole).AccessKeyID)
	g.Expect(ok).To(BeTrue())
	g.Expect(id).To(BeEmpty())
	_, ok = s.SessionSourceIdentity("ASIAAAAAAAAAAAAAAAAA")
	g.Expect(ok).To(BeFalse())
}

func TestSTS_AssumeRole_RequireSourceIdentity(t *testing.T) {
	t.Parallel()
	denied := sourceDenied(paramsCallerARN, "sts:AssumeRole")
	for _, tt := range []struct {
		name     string
		require  string
		id       *string
		wantDeny bool
	}{
		{name: "equal", require: sourceID, id: aws.String(sourceID)},
		{name: "another", require: sourceID, id: aws.String("flux-system.kustomize-controller"), wantDeny: true},
		{name: "differing in case", require: sourceID, id: aws.String("Flux-System.Source-Controller"), wantDeny: true},
		{name: "a prefix of it", require: sourceID, id: aws.String("flux-system.source"), wantDeny: true},
		{name: "none", require: sourceID, wantDeny: true},
		{name: "prefix match", require: "flux-system.*", id: aws.String("flux-system.kustomize-controller")},
		{name: "prefix match of the prefix alone", require: "flux-system.*", id: aws.String("flux-system.")},
		{name: "prefix mismatch", require: "flux-system.*", id: aws.String("flux-systemx.source-controller"), wantDeny: true},
		{name: "prefix match needs a source identity", require: "*", wantDeny: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			s, _ := paramsSTS(t, fakes.AllowSetSourceIdentity(), fakes.RequireSourceIdentity(tt.require))

			out, err := paramsAssume(s, s.IssueCredentials(awsTestRole), sts.AssumeRoleInput{SourceIdentity: tt.id})

			if tt.wantDeny {
				paramsExpectRefused(g, s, err, "AccessDenied", denied)
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(aws.ToString(out.SourceIdentity)).To(Equal(aws.ToString(tt.id)))
		})
	}

	t.Run("inherited", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		s := awsStartSTS(t, fakes.AWSSTSOptions{})
		s.AllowAssumeRole(awsTestRole, awsTestTenantRole, fakes.AllowSetSourceIdentity())
		s.AllowAssumeRole(awsTestTenantRole, sourceHop1, fakes.AllowSetSourceIdentity(), fakes.RequireSourceIdentity("flux-system.*"))
		s.AllowAssumeRole(awsTestTenantRole, sourceHop2, fakes.AllowSetSourceIdentity(), fakes.RequireSourceIdentity("apps.*"))
		tenant, err := paramsAssume(s, s.IssueCredentials(awsTestRole), sts.AssumeRoleInput{SourceIdentity: aws.String(sourceID)})
		g.Expect(err).NotTo(HaveOccurred())

		hop1, err := paramsAssume(s, paramsCreds(tenant), sts.AssumeRoleInput{RoleArn: aws.String(sourceHop1)})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(aws.ToString(hop1.SourceIdentity)).To(Equal(sourceID))

		_, err = paramsAssume(s, paramsCreds(tenant), sts.AssumeRoleInput{RoleArn: aws.String(sourceHop2)})
		paramsExpectRefused(g, s, err, "AccessDenied",
			"User: arn:aws:sts::210987654321:assumed-role/tenant-a/flux-session is not authorized to perform: sts:AssumeRole on resource: "+sourceHop2)
	})
}

// TestSTS_AssumeRoleWithWebIdentity_SourceIdentity: a web identity token
// sets a source identity with a claim, which the trust that
// AllowWebIdentity makes never allows.
func TestSTS_AssumeRoleWithWebIdentity_SourceIdentity(t *testing.T) {
	t.Parallel()
	key := newExtKey(t, jose.ES256, "ec")
	issuer, err := fakes.NewExternalIssuer(extTestIssuerURL, extJWKS(t, key.public))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(t *testing.T, sub string, claims map[string]any) string {
		t.Helper()
		now := time.Now()
		all := map[string]any{
			"iss": extTestIssuerURL, "sub": sub, "aud": []string{"sts.amazonaws.com"},
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}
		for k, v := range claims {
			all[k] = v
		}
		tok, err := jwt.Signed(key.signer).Claims(all).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	trusted := fakes.ServiceAccountSubject(awsTestNamespace, awsTestSA)
	for _, tt := range []struct {
		name     string
		sub      string
		claims   map[string]any
		wantID   string
		wantCode string
		wantMsg  string
	}{
		{name: "no claim", sub: trusted},
		{
			name: "claim", sub: trusted, claims: map[string]any{"https://aws.amazon.com/source_identity": sourceID},
			wantID: sourceID, wantCode: "AccessDenied", wantMsg: "Not authorized to perform sts:SetSourceIdentity",
		},
		{
			name: "claim that is no string", sub: trusted, claims: map[string]any{"https://aws.amazon.com/source_identity": 42},
			wantID: "42", wantCode: "AccessDenied", wantMsg: "Not authorized to perform sts:SetSourceIdentity",
		},
		{
			name: "claim of an untrusted subject", sub: "system:serviceaccount:apps:app", claims: map[string]any{"https://aws.amazon.com/source_identity": sourceID},
			wantID: sourceID, wantCode: "AccessDenied", wantMsg: "Not authorized to perform sts:AssumeRoleWithWebIdentity",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			s := awsStartSTS(t, fakes.AWSSTSOptions{Issuer: issuer})
			s.AllowWebIdentity(awsTestRole, awsTestNamespace, awsTestSA)

			out, err := awsSTSClient(s, nil).AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
				RoleArn:          aws.String(awsTestRole),
				RoleSessionName:  aws.String(awsTestSession),
				WebIdentityToken: aws.String(sign(t, tt.sub, tt.claims)),
			})

			g.Expect(s.Calls()).To(HaveLen(1))
			g.Expect(s.Calls()[0].SourceIdentity).To(Equal(tt.wantID))
			if tt.wantCode != "" {
				paramsExpectRefused(g, s, err, tt.wantCode, tt.wantMsg)
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out.SourceIdentity).To(BeNil())
			id, ok := s.SessionSourceIdentity(aws.ToString(out.Credentials.AccessKeyId))
			g.Expect(ok).To(BeTrue())
			g.Expect(id).To(BeEmpty())
		})
	}
}
