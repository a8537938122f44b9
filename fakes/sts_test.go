package fakes_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

const (
	awsTestIssuerURL  = "https://kubernetes.default.svc.cluster.local"
	awsTestRegion     = "eu-central-1"
	awsTestNamespace  = "flux-system"
	awsTestSA         = "source-controller"
	awsTestRole       = "arn:aws:iam::123456789012:role/controller"
	awsTestTenantRole = "arn:aws:iam::210987654321:role/tenants/tenant-a"
	awsTestOtherRole  = "arn:aws:iam::123456789012:role/other"
	awsTestSession    = "flux-session"
)

// awsClock is a settable clock for injecting into the fakes.
type awsClock struct {
	// mu guards now.
	mu  sync.Mutex
	now time.Time
}

func newAWSClock() *awsClock {
	// Start at wall time: the SDK checks expiry of the credentials the fakes
	// issue against time.Now.
	return &awsClock{now: time.Now().Truncate(time.Second)}
}

func (c *awsClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *awsClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// awsSharedIssuer is one issuer for tests that do not change its clock: RSA
// key generation is slow under -race.
var awsSharedIssuer = sync.OnceValue(func() *fakes.Issuer {
	i, err := fakes.NewIssuer(awsTestIssuerURL)
	if err != nil {
		panic(err)
	}
	return i
})

func awsNewIssuer(t *testing.T, url string) *fakes.Issuer {
	t.Helper()
	i, err := fakes.NewIssuer(url)
	if err != nil {
		t.Fatalf("failed to create issuer: %v", err)
	}
	return i
}

func awsStartSTS(t *testing.T, opts fakes.AWSSTSOptions) *fakes.AWSSTS {
	t.Helper()
	s := fakes.StartAWSSTS(opts)
	t.Cleanup(s.Close)
	return s
}

// awsSTSClient returns the real SDK client for s, without retries so that
// call counts are exact. creds may be nil for unsigned calls.
func awsSTSClient(s *fakes.AWSSTS, creds aws.CredentialsProvider) *sts.Client {
	return sts.New(sts.Options{
		Region:       awsTestRegion,
		BaseEndpoint: aws.String(s.URL),
		Credentials:  creds,
		Retryer:      aws.NopRetryer{},
	})
}

func awsStatic(c aws.Credentials) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
}

// awsErrorCode returns the AWS error code of err, or "" when it has none.
func awsErrorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func awsSign(t *testing.T, issuer *fakes.Issuer, namespace, name string, aud ...string) string {
	t.Helper()
	token, err := issuer.Sign(namespace, name, aud, time.Hour)
	if err != nil {
		t.Fatalf("failed to sign token: %v", err)
	}
	return token
}

func TestSTS_AssumeRoleWithWebIdentity(t *testing.T) {
	t.Parallel()
	issuer := awsSharedIssuer()
	impostor := awsNewIssuer(t, awsTestIssuerURL) // same URL, other key
	stranger := awsNewIssuer(t, "https://oidc.example.com")

	for _, tt := range []struct {
		name      string
		token     func() string
		role      string
		session   string
		advance   time.Duration
		wantCode  string
		wantMsg   string
		wantCalls int
	}{
		{
			name:  "trusted subject and audience",
			token: func() string { return awsSign(t, issuer, awsTestNamespace, awsTestSA, "sts.amazonaws.com") },
		},
		{
			name:  "sts audience among others",
			token: func() string { return awsSign(t, issuer, awsTestNamespace, awsTestSA, "other", "sts.amazonaws.com") },
		},
		{
			name:     "wrong audience",
			token:    func() string { return awsSign(t, issuer, awsTestNamespace, awsTestSA, awsTestIssuerURL) },
			wantCode: "InvalidIdentityToken",
			wantMsg:  "Incorrect token audience",
		},
		{
			name:     "untrusted subject",
			token:    func() string { return awsSign(t, issuer, awsTestNamespace, "other", "sts.amazonaws.com") },
			wantCode: "AccessDenied",
			wantMsg:  "Not authorized to perform sts:AssumeRoleWithWebIdentity",
		},
		{
			name:     "subject trusted by another role",
			token:    func() string { return awsSign(t, issuer, awsTestNamespace, awsTestSA, "sts.amazonaws.com") },
			role:     awsTestOtherRole,
			wantCode: "AccessDenied",
		},
		{
			name:     "signed by another key",
			token:    func() string { return awsSign(t, impostor, awsTestNamespace, awsTestSA, "sts.amazonaws.com") },
			wantCode: "InvalidIdentityToken",
			wantMsg:  "Couldn't verify the signature of the web identity token with the keys of the OpenIDConnect provider",
		},
		{
			name:     "unregistered issuer",
			token:    func() string { return awsSign(t, stranger, awsTestNamespace, awsTestSA, "sts.amazonaws.com") },
			wantCode: "InvalidIdentityToken",
			wantMsg:  "No OpenIDConnect provider found in your account for https://oidc.example.com",
		},
		{
			name:     "not a JWT",
			token:    func() string { return "not-a-jwt" },
			wantCode: "InvalidIdentityToken",
		},
		{
			name:     "expired on the STS clock",
			token:    func() string { return awsSign(t, issuer, awsTestNamespace, awsTestSA, "sts.amazonaws.com") },
			advance:  time.Hour + time.Second,
			wantCode: "ExpiredTokenException",
		},
		{
			name:     "session name too short",
			token:    func() string { return awsSign(t, issuer, awsTestNamespace, awsTestSA, "sts.amazonaws.com") },
			session:  "x",
			wantCode: "ValidationError",
			wantMsg:  "1 validation error detected: Value 'x' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2",
		},
		{
			name:     "session name with forbidden characters",
			token:    func() string { return awsSign(t, issuer, awsTestNamespace, awsTestSA, "sts.amazonaws.com") },
			session:  "a b",
			wantCode: "ValidationError",
		},
		{
			name:     "session name too long",
			token:    func() string { return awsSign(t, issuer, awsTestNamespace, awsTestSA, "sts.amazonaws.com") },
			session:  strings.Repeat("a", 65),
			wantCode: "ValidationError",
		},
		{
			name:     "malformed role ARN",
			token:    func() string { return awsSign(t, issuer, awsTestNamespace, awsTestSA, "sts.amazonaws.com") },
			role:     "arn:aws:iam::123:role/controller",
			wantCode: "ValidationError",
			wantMsg:  "Request ARN is invalid",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			clock := newAWSClock()
			s := awsStartSTS(t, fakes.AWSSTSOptions{Issuer: issuer, Now: clock.Now})
			s.AllowWebIdentity(awsTestRole, awsTestNamespace, awsTestSA)
			role := awsTestRole
			if tt.role != "" {
				role = tt.role
			}
			session := awsTestSession
			if tt.session != "" {
				session = tt.session
			}
			token := tt.token()
			clock.Advance(tt.advance)

			out, err := awsSTSClient(s, nil).AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
				RoleArn:          aws.String(role),
				RoleSessionName:  aws.String(session),
				WebIdentityToken: aws.String(token),
			})

			g.Expect(s.Count("AssumeRoleWithWebIdentity")).To(Equal(1))
			call := s.Calls()[0]
			g.Expect(call.RoleARN).To(Equal(role))
			g.Expect(call.RoleSessionName).To(Equal(session))
			g.Expect(call.Region).To(BeEmpty())
			if tt.wantCode != "" {
				g.Expect(err).To(HaveOccurred())
				g.Expect(awsErrorCode(err)).To(Equal(tt.wantCode))
				if tt.wantMsg != "" {
					var apiErr smithy.APIError
					g.Expect(errors.As(err, &apiErr)).To(BeTrue())
					g.Expect(apiErr.ErrorMessage()).To(Equal(tt.wantMsg))
				}
				g.Expect(err.Error()).NotTo(ContainSubstring(token))
				g.Expect(call.Err).To(Equal(tt.wantCode))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(call.Err).To(BeEmpty())
			g.Expect(call.Caller).To(Equal("system:serviceaccount:flux-system:source-controller"))
			g.Expect(aws.ToString(out.SubjectFromWebIdentityToken)).To(Equal("system:serviceaccount:flux-system:source-controller"))
			g.Expect(aws.ToString(out.Audience)).To(Equal("sts.amazonaws.com"))
			g.Expect(aws.ToString(out.Provider)).To(Equal(awsTestIssuerURL))
			g.Expect(aws.ToString(out.AssumedRoleUser.Arn)).To(Equal("arn:aws:sts::123456789012:assumed-role/controller/flux-session"))
			g.Expect(aws.ToString(out.AssumedRoleUser.AssumedRoleId)).To(MatchRegexp(`^AROA[A-Z2-7]{17}:flux-session$`))
			g.Expect(aws.ToString(out.Credentials.AccessKeyId)).To(MatchRegexp(`^ASIA[A-Z0-9]{16}$`))
			g.Expect(aws.ToString(out.Credentials.SecretAccessKey)).To(HaveLen(40))
			g.Expect(aws.ToString(out.Credentials.SessionToken)).NotTo(BeEmpty())
			g.Expect(*out.Credentials.Expiration).To(Equal(clock.Now().Add(time.Hour).UTC()))
		})
	}
}

func TestSTS_AssumeRoleWithWebIdentity_DurationSeconds(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		ttl      time.Duration
		duration int32
		want     time.Duration
		wantCode string
	}{
		{name: "shortens the default", duration: 900, want: 15 * time.Minute},
		{name: "never lengthens TTL", ttl: time.Minute, duration: 3600, want: time.Minute},
		{name: "below STS minimum", duration: 899, wantCode: "ValidationError"},
		{name: "above STS maximum", duration: 43201, wantCode: "ValidationError"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			clock := newAWSClock()
			s := awsStartSTS(t, fakes.AWSSTSOptions{Issuer: awsSharedIssuer(), Now: clock.Now, TTL: tt.ttl})
			s.AllowWebIdentity(awsTestRole, awsTestNamespace, awsTestSA)
			out, err := awsSTSClient(s, nil).AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
				RoleArn:          aws.String(awsTestRole),
				RoleSessionName:  aws.String(awsTestSession),
				WebIdentityToken: aws.String(awsSign(t, awsSharedIssuer(), awsTestNamespace, awsTestSA, "sts.amazonaws.com")),
				DurationSeconds:  aws.Int32(tt.duration),
			})
			if tt.wantCode != "" {
				g.Expect(awsErrorCode(err)).To(Equal(tt.wantCode))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(*out.Credentials.Expiration).To(Equal(clock.Now().Add(tt.want).UTC()))
		})
	}
}

func TestSTS_AssumeRoleWithWebIdentity_NoIssuer(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	s.AllowWebIdentity(awsTestRole, awsTestNamespace, awsTestSA)
	_, err := awsSTSClient(s, nil).AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(awsTestRole),
		RoleSessionName:  aws.String(awsTestSession),
		WebIdentityToken: aws.String(awsSign(t, awsSharedIssuer(), awsTestNamespace, awsTestSA, "sts.amazonaws.com")),
	})
	g.Expect(awsErrorCode(err)).To(Equal("InvalidIdentityToken"))
}

func TestSTS_AssumeRole(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		creds    func(s *fakes.AWSSTS, issued aws.Credentials) aws.Credentials
		target   string
		session  string
		advance  time.Duration
		wantCode string
		wantMsg  string
	}{
		{
			name: "signed with issued credentials of a trusted source",
		},
		{
			name: "tampered secret",
			creds: func(_ *fakes.AWSSTS, c aws.Credentials) aws.Credentials {
				// Change the first character, whichever it is: a fixed
				// replacement leaves one secret in 64 untouched.
				first := "X"
				if c.SecretAccessKey[0] == 'X' {
					first = "Y"
				}
				c.SecretAccessKey = first + c.SecretAccessKey[1:]
				return c
			},
			wantCode: "SignatureDoesNotMatch",
			wantMsg:  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
		},
		{
			name: "secret of other issued credentials",
			creds: func(s *fakes.AWSSTS, c aws.Credentials) aws.Credentials {
				c.SecretAccessKey = s.IssueCredentials(awsTestRole).SecretAccessKey
				return c
			},
			wantCode: "SignatureDoesNotMatch",
		},
		{
			name: "unknown access key",
			creds: func(_ *fakes.AWSSTS, c aws.Credentials) aws.Credentials {
				c.AccessKeyID = "ASIAAAAAAAAAAAAAAAAA"
				return c
			},
			wantCode: "InvalidClientTokenId",
			wantMsg:  "The security token included in the request is invalid.",
		},
		{
			name: "session token of other credentials",
			creds: func(s *fakes.AWSSTS, c aws.Credentials) aws.Credentials {
				c.SessionToken = s.IssueCredentials(awsTestRole).SessionToken
				return c
			},
			wantCode: "InvalidClientTokenId",
		},
		{
			name: "missing session token",
			creds: func(_ *fakes.AWSSTS, c aws.Credentials) aws.Credentials {
				c.SessionToken = ""
				return c
			},
			wantCode: "InvalidClientTokenId",
		},
		{
			name:     "expired credentials",
			advance:  time.Hour,
			wantCode: "ExpiredToken",
			wantMsg:  "The security token included in the request is expired",
		},
		{
			name:     "untrusted source",
			target:   awsTestOtherRole,
			wantCode: "AccessDenied",
			wantMsg:  "User: arn:aws:sts::123456789012:assumed-role/controller/fakes-issued is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/other",
		},
		{
			name:     "malformed target ARN",
			target:   "arn:aws:iam::123456789012:user/alice",
			wantCode: "ValidationError",
			wantMsg:  "Request ARN is invalid",
		},
		{
			name:     "invalid session name",
			session:  "tenant/a",
			wantCode: "ValidationError",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			clock := newAWSClock()
			s := awsStartSTS(t, fakes.AWSSTSOptions{Now: clock.Now})
			s.AllowAssumeRole(awsTestRole, awsTestTenantRole)
			issued := s.IssueCredentials(awsTestRole)
			signing := issued
			if tt.creds != nil {
				signing = tt.creds(s, issued)
			}
			target := awsTestTenantRole
			if tt.target != "" {
				target = tt.target
			}
			session := awsTestSession
			if tt.session != "" {
				session = tt.session
			}
			clock.Advance(tt.advance)

			out, err := awsSTSClient(s, awsStatic(signing)).AssumeRole(context.Background(), &sts.AssumeRoleInput{
				RoleArn:         aws.String(target),
				RoleSessionName: aws.String(session),
			})

			g.Expect(s.Count("AssumeRole")).To(Equal(1))
			call := s.Calls()[0]
			g.Expect(call.RoleARN).To(Equal(target))
			g.Expect(call.Region).To(Equal(awsTestRegion))
			if tt.wantCode != "" {
				g.Expect(err).To(HaveOccurred())
				g.Expect(awsErrorCode(err)).To(Equal(tt.wantCode))
				if tt.wantMsg != "" {
					var apiErr smithy.APIError
					g.Expect(errors.As(err, &apiErr)).To(BeTrue())
					g.Expect(apiErr.ErrorMessage()).To(Equal(tt.wantMsg))
				}
				for _, secret := range []string{issued.SecretAccessKey, issued.SessionToken, signing.SecretAccessKey, signing.SessionToken} {
					if secret != "" {
						g.Expect(err.Error()).NotTo(ContainSubstring(secret))
					}
				}
				g.Expect(call.Err).To(Equal(tt.wantCode))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(call).To(Equal(fakes.AWSSTSCall{
				Action:          "AssumeRole",
				RoleARN:         awsTestTenantRole,
				RoleSessionName: awsTestSession,
				Caller:          awsTestRole,
				Region:          awsTestRegion,
			}))
			g.Expect(aws.ToString(out.AssumedRoleUser.Arn)).To(Equal("arn:aws:sts::210987654321:assumed-role/tenant-a/flux-session"))
			g.Expect(aws.ToString(out.Credentials.AccessKeyId)).To(MatchRegexp(`^ASIA[A-Z0-9]{16}$`))
			g.Expect(*out.Credentials.Expiration).To(Equal(clock.Now().Add(time.Hour).UTC()))

			// The credentials returned are themselves recognised: the tenant
			// role can be asked who it is.
			id, err := awsSTSClient(s, credentials.NewStaticCredentialsProvider(
				aws.ToString(out.Credentials.AccessKeyId),
				aws.ToString(out.Credentials.SecretAccessKey),
				aws.ToString(out.Credentials.SessionToken),
			)).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(aws.ToString(id.Arn)).To(Equal("arn:aws:sts::210987654321:assumed-role/tenant-a/flux-session"))
			g.Expect(aws.ToString(id.Account)).To(Equal("210987654321"))
		})
	}
}

func TestSTS_AssumeRole_Unsigned(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	_, err := awsSTSClient(s, aws.AnonymousCredentials{}).AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn:         aws.String(awsTestTenantRole),
		RoleSessionName: aws.String(awsTestSession),
	})
	g.Expect(awsErrorCode(err)).To(Equal("MissingAuthenticationToken"))
	g.Expect(s.Calls()).To(Equal([]fakes.AWSSTSCall{{
		Action:          "AssumeRole",
		RoleARN:         awsTestTenantRole,
		RoleSessionName: awsTestSession,
		Err:             "MissingAuthenticationToken",
	}}))
}

func TestSTS_Latency(t *testing.T) {
	t.Parallel()
	t.Run("delays calls", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		s := awsStartSTS(t, fakes.AWSSTSOptions{Latency: 20 * time.Millisecond})
		start := time.Now()
		_, err := awsSTSClient(s, awsStatic(s.IssueCredentials(awsTestRole))).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(time.Since(start)).To(BeNumerically(">=", 20*time.Millisecond))
	})
	t.Run("yields to the client's context", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		s := awsStartSTS(t, fakes.AWSSTSOptions{Latency: time.Hour})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		_, err := awsSTSClient(s, awsStatic(s.IssueCredentials(awsTestRole))).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		g.Expect(errors.Is(err, context.DeadlineExceeded)).To(BeTrue(), "%v", err)
		// Close blocks until the handler has returned, so a handler stuck
		// in Latency would hang the test here.
		s.Close()
		g.Expect(s.Calls()).To(BeEmpty())
	})
}

func TestSTS_Concurrent(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	issuer := awsSharedIssuer()
	s := awsStartSTS(t, fakes.AWSSTSOptions{Issuer: issuer})
	s.AllowWebIdentity(awsTestRole, awsTestNamespace, awsTestSA)
	s.AllowAssumeRole(awsTestRole, awsTestTenantRole)
	token := awsSign(t, issuer, awsTestNamespace, awsTestSA, "sts.amazonaws.com")

	const workers = 16
	var wg sync.WaitGroup
	errs := make(chan error, workers*2)
	for i := range workers {
		wg.Go(func() {
			web, err := awsSTSClient(s, nil).AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
				RoleArn:          aws.String(awsTestRole),
				RoleSessionName:  aws.String(fmt.Sprintf("web-%d", i)),
				WebIdentityToken: aws.String(token),
			})
			if err != nil {
				errs <- err
				return
			}
			c := web.Credentials
			_, err = awsSTSClient(s, credentials.NewStaticCredentialsProvider(
				aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken),
			)).AssumeRole(context.Background(), &sts.AssumeRoleInput{
				RoleArn:         aws.String(awsTestTenantRole),
				RoleSessionName: aws.String(fmt.Sprintf("hop-%d", i)),
			})
			if err != nil {
				errs <- err
			}
		})
		// Mutations and reads race with the calls above.
		wg.Go(func() {
			s.AllowAssumeRole(awsTestRole, fmt.Sprintf("arn:aws:iam::123456789012:role/r%d", i))
			s.AllowWebIdentity(awsTestOtherRole, awsTestNamespace, fmt.Sprintf("sa-%d", i))
			_ = s.IssueCredentials(awsTestRole)
			_ = s.Calls()
			_ = s.Count("AssumeRole")
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(s.Count("AssumeRoleWithWebIdentity")).To(Equal(workers))
	g.Expect(s.Count("AssumeRole")).To(Equal(workers))
	g.Expect(s.Calls()).To(HaveLen(2 * workers))
}
