package aws_test

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

// A success from STS whose credentials are missing or unusable is an
// ordinary error on every path of the provider: no panic in the SDK (which
// dereferences a missing Expiration, in a goroutine of its own on the
// controller's IRSA path) nor in upstream. Once the fault goes, the next
// call succeeds.

const (
	guardNamespace = "my-app"
	guardName      = "my-app"
)

// stsReplyFaults are the faults of the fake STS that make a reply wrong,
// with the regular expression for the end of the error each gives, after
// "operation error STS: <action>, ". None is retried: each meets one
// request.
var stsReplyFaults = []struct {
	fault   fakes.Fault
	wantErr string
	invalid bool // the error wraps aws.ErrInvalidCredentials
}{
	{
		fault:   fakes.MissingExpiry(),
		wantErr: regexp.QuoteMeta("the reply holds invalid AWS credentials: Expiration is missing"),
		invalid: true,
	},
	{
		fault: fakes.EmptyCredentials(),
		wantErr: regexp.QuoteMeta("the reply holds invalid AWS credentials: " +
			"AccessKeyId is empty; SecretAccessKey is empty; SessionToken is empty"),
		invalid: true,
	},
	{
		fault: fakes.ExpiredCredentials(),
		wantErr: `the reply holds invalid AWS credentials: Expiration ` + rfc3339 + ` is not more than 1m0s ` +
			`after the current time ` + rfc3339,
		invalid: true,
	},
	{
		fault: fakes.MalformedBody(),
		wantErr: `https response error StatusCode: 200, RequestID: [0-9a-f-]{36}, deserialization failed, ` +
			`failed to decode response body, XML syntax error on line 2: unexpected EOF`,
	},
}

const rfc3339 = `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`

// expectSTSReplyError checks that err is, in full, prefix, then the SDK's
// "operation error STS: <action>, ", then the regular expression wantErr.
func expectSTSReplyError(g Gomega, err error, prefix, action, wantErr string, invalid bool) {
	g.Expect(err).To(MatchError(MatchRegexp(
		"^" + regexp.QuoteMeta(prefix+"operation error STS: "+action+", ") + wantErr + "$")))
	g.Expect(errors.Is(err, aws.ErrInvalidCredentials)).To(Equal(invalid))
}

type guardWorld struct {
	issuer *fakes.Issuer
	sts    *fakes.AWSSTS
}

func startGuardWorld(t *testing.T) *guardWorld {
	t.Helper()
	issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	s := fakes.StartAWSSTS(fakes.AWSSTSOptions{Issuer: issuer})
	t.Cleanup(s.Close)
	return &guardWorld{issuer: issuer, sts: s}
}

// Not parallel: the default credential chain is configured through the
// environment.
func TestNewControllerTokenRefusesBadSTSReplies(t *testing.T) {
	for _, impl := range []struct {
		name string
		impl func(*fakes.AWSSTS) aws.Implementation
	}{
		// The real SDK, sent to the fake by AWS_ENDPOINT_URL_STS.
		{name: "zero Provider", impl: func(*fakes.AWSSTS) aws.Implementation { return nil }},
		{name: "fakes Implementation", impl: func(s *fakes.AWSSTS) aws.Implementation { return s.Implementation() }},
	} {
		t.Run(impl.name, func(t *testing.T) {
			for _, tt := range stsReplyFaults {
				t.Run(tt.fault.String(), func(t *testing.T) {
					g := NewWithT(t)
					w := startGuardWorld(t)
					w.sts.AllowWebIdentity(sourceRole, "flux-system", "source-controller")
					env, err := fakes.IRSAEnv(t.TempDir(), region, w.sts, w.issuer, sourceRole, "flux-system", "source-controller")
					g.Expect(err).NotTo(HaveOccurred())
					for k, v := range env {
						t.Setenv(k, v)
					}
					p := aws.Provider{Implementation: impl.impl(w.sts)}
					fault := w.sts.InjectFault(tt.fault)

					token, err := p.NewControllerToken(context.Background())

					g.Expect(token).To(BeNil())
					expectSTSReplyError(g, err, "failed to refresh cached credentials, failed to retrieve credentials, ",
						"AssumeRoleWithWebIdentity", tt.wantErr, tt.invalid)
					g.Expect(fault.Hits()).To(Equal(1))

					fault.Remove()
					token, err = p.NewControllerToken(context.Background())
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(p.ValidateToken(token, time.Now())).To(Succeed())
					g.Expect(w.sts.Attempts()).To(Equal(2), "one request each")
				})
			}
		})
	}
}

func TestNewTokenForServiceAccountRefusesBadSTSReplies(t *testing.T) {
	t.Parallel()
	for _, tt := range stsReplyFaults {
		t.Run(tt.fault.String(), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := startGuardWorld(t)
			w.sts.AllowWebIdentity(sourceRole, guardNamespace, guardName)
			oidcToken, err := w.issuer.Sign(guardNamespace, guardName, []string{"sts.amazonaws.com"}, time.Hour)
			g.Expect(err).NotTo(HaveOccurred())
			sa := corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
				Namespace: guardNamespace, Name: guardName,
				Annotations: map[string]string{aws.RoleARNAnnotation: sourceRole},
			}}
			p := aws.Provider{Implementation: w.sts.Implementation()}
			fault := w.sts.InjectFault(tt.fault)

			token, err := p.NewTokenForServiceAccount(context.Background(), oidcToken, sa, fluxauth.WithSTSRegion(region))

			g.Expect(token).To(BeNil())
			expectSTSReplyError(g, err, "", "AssumeRoleWithWebIdentity", tt.wantErr, tt.invalid)
			g.Expect(fault.Hits()).To(Equal(1))

			fault.Remove()
			token, err = p.NewTokenForServiceAccount(context.Background(), oidcToken, sa, fluxauth.WithSTSRegion(region))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.ValidateToken(token, time.Now())).To(Succeed())
			g.Expect(w.sts.Attempts()).To(Equal(2), "one request each")
		})
	}
}

func TestImpersonateRefusesBadSTSReplies(t *testing.T) {
	t.Parallel()
	for _, tt := range stsReplyFaults {
		t.Run(tt.fault.String(), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := startGuardWorld(t)
			w.sts.AllowAssumeRole(sourceRole, targetRole)
			c := w.sts.IssueCredentials(sourceRole)
			source := &aws.Credentials{Credentials: types.Credentials{
				AccessKeyId: &c.AccessKeyID, SecretAccessKey: &c.SecretAccessKey, SessionToken: &c.SessionToken, Expiration: &c.Expires,
			}}
			p := aws.Provider{Implementation: w.sts.Implementation()}
			impersonate := func() (fluxauth.Token, error) {
				return p.Impersonate(context.Background(), source, auth.Impersonation{
					Annotation:     aws.AssumeRoleAnnotation,
					ServiceAccount: client.ObjectKey{Namespace: guardNamespace, Name: guardName},
					Target:         targetRole,
				}, fluxauth.WithSTSRegion(region))
			}
			fault := w.sts.InjectFault(tt.fault)

			token, err := impersonate()

			g.Expect(token).To(BeNil())
			expectSTSReplyError(g, err, "sts AssumeRole in region 'us-east-1': ", "AssumeRole", tt.wantErr, tt.invalid)
			g.Expect(fault.Hits()).To(Equal(1))

			fault.Remove()
			token, err = impersonate()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.ValidateToken(token, time.Now())).To(Succeed())
			g.Expect(w.sts.Attempts()).To(Equal(2), "one request each")
		})
	}
}

// bareSTS answers AssumeRoleWithWebIdentity and AssumeRole itself, without
// an SDK client, as a hand-written Implementation may: the replies are
// checked on return too.
type bareSTS struct {
	*fakes.AWSImplementation
	creds *types.Credentials
}

func (b bareSTS) AssumeRoleWithWebIdentity(context.Context, *sts.AssumeRoleWithWebIdentityInput,
	sts.Options) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	return &sts.AssumeRoleWithWebIdentityOutput{Credentials: b.creds}, nil
}

func (b bareSTS) AssumeRole(context.Context, *sts.AssumeRoleInput, sts.Options) (*sts.AssumeRoleOutput, error) {
	return &sts.AssumeRoleOutput{Credentials: b.creds}, nil
}

func TestBadRepliesOfAnImplementationWithoutSDKClient(t *testing.T) {
	t.Parallel()
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	for _, tt := range []struct {
		name    string
		creds   *types.Credentials
		wantErr string
	}{
		{name: "good", creds: &types.Credentials{
			AccessKeyId: awssdk.String("ASIAX"), SecretAccessKey: awssdk.String("SECRET"),
			SessionToken: awssdk.String("SECRETTOKEN"), Expiration: &exp,
		}},
		{name: "no credentials", wantErr: "the reply holds invalid AWS credentials: Credentials is missing"},
		{
			name: "no expiration",
			creds: &types.Credentials{
				AccessKeyId: awssdk.String("ASIAX"), SecretAccessKey: awssdk.String("SECRET"),
				SessionToken: awssdk.String("SECRETTOKEN"),
			},
			wantErr: "the reply holds invalid AWS credentials: Expiration is missing",
		},
		{
			name:  "nil keys",
			creds: &types.Credentials{Expiration: &exp},
			wantErr: "the reply holds invalid AWS credentials: " +
				"AccessKeyId is empty; SecretAccessKey is empty; SessionToken is empty",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			p := aws.Provider{Implementation: bareSTS{creds: tt.creds}}
			sa := corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
				Namespace: guardNamespace, Name: guardName,
				Annotations: map[string]string{aws.RoleARNAnnotation: sourceRole},
			}}
			source := &aws.Credentials{Credentials: types.Credentials{
				AccessKeyId: awssdk.String("ASIAS"), SecretAccessKey: awssdk.String("SECRET"),
				SessionToken: awssdk.String("SECRETTOKEN"), Expiration: &exp,
			}}

			fromSA, saErr := p.NewTokenForServiceAccount(context.Background(), "oidc", sa, fluxauth.WithSTSRegion(region))
			imp, impErr := p.Impersonate(context.Background(), source, auth.Impersonation{
				Annotation:     aws.AssumeRoleAnnotation,
				ServiceAccount: client.ObjectKey{Namespace: guardNamespace, Name: guardName},
				Target:         targetRole,
			}, fluxauth.WithSTSRegion(region))

			if tt.wantErr == "" {
				g.Expect(saErr).NotTo(HaveOccurred())
				g.Expect(impErr).NotTo(HaveOccurred())
				g.Expect(fromSA).To(Equal(&aws.Credentials{Credentials: *tt.creds}))
				g.Expect(imp).To(Equal(&aws.Credentials{Credentials: *tt.creds}))
				return
			}
			g.Expect(fromSA).To(BeNil())
			g.Expect(imp).To(BeNil())
			g.Expect(saErr).To(MatchError(tt.wantErr))
			g.Expect(impErr).To(MatchError("sts AssumeRole in region 'us-east-1': " + tt.wantErr))
			g.Expect(errors.Is(saErr, aws.ErrInvalidCredentials)).To(BeTrue())
			g.Expect(errors.Is(impErr, aws.ErrInvalidCredentials)).To(BeTrue())
			g.Expect(saErr.Error() + impErr.Error()).NotTo(ContainSubstring("SECRET"))
		})
	}
}
