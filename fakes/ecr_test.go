package fakes_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/aws/smithy-go"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

// ecrLogin is what either ECR service returned, decoded.
type ecrLogin struct {
	username, password string
	expiresAt          *time.Time
}

// ecrGetLogin calls GetAuthorizationToken of ECR, or of ECR Public when
// public is set, with the real SDK client and without retries.
func ecrGetLogin(t *testing.T, e *fakes.ECR, public bool, creds aws.CredentialsProvider) (ecrLogin, error) {
	t.Helper()
	ctx := context.Background()
	cfg := aws.Config{Region: "us-east-1", Credentials: creds, Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
	var token string
	var expiresAt *time.Time
	if public {
		out, err := ecrpublic.NewFromConfig(cfg, func(o *ecrpublic.Options) { o.BaseEndpoint = aws.String(e.URL) }).
			GetAuthorizationToken(ctx, &ecrpublic.GetAuthorizationTokenInput{})
		if err != nil {
			return ecrLogin{}, err
		}
		token, expiresAt = aws.ToString(out.AuthorizationData.AuthorizationToken), out.AuthorizationData.ExpiresAt
	} else {
		out, err := ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = aws.String(e.URL) }).
			GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
		if err != nil {
			return ecrLogin{}, err
		}
		if len(out.AuthorizationData) != 1 {
			t.Fatalf("want one authorization data, got %d", len(out.AuthorizationData))
		}
		d := out.AuthorizationData[0]
		if want := "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"; aws.ToString(d.ProxyEndpoint) != want {
			t.Errorf("proxy endpoint is %q, want %q", aws.ToString(d.ProxyEndpoint), want)
		}
		token, expiresAt = aws.ToString(d.AuthorizationToken), d.ExpiresAt
	}
	b, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		t.Fatalf("token is not base64: %v", err)
	}
	user, password, _ := strings.Cut(string(b), ":")
	return ecrLogin{username: user, password: password, expiresAt: expiresAt}, nil
}

func TestECR_GetAuthorizationToken(t *testing.T) {
	t.Parallel()
	const callerARN = "arn:aws:sts::123456789012:assumed-role/controller/fakes-issued"
	for _, tt := range []struct {
		name     string
		public   bool
		allow    func(e *fakes.ECR)
		creds    func(s *fakes.AWSSTS, clock *awsClock) aws.CredentialsProvider
		wantCode string
		wantMsg  string
		// unsigned: no credential scope, so no region either.
		unsigned bool
	}{
		{
			name:  "ECR, allowed",
			allow: func(e *fakes.ECR) { e.Allow(awsTestRole) },
		},
		{
			name:   "ECR Public, allowed",
			public: true,
			allow:  func(e *fakes.ECR) { e.AllowPublic(awsTestRole) },
		},
		{
			name:     "ECR, only ECR Public allowed",
			allow:    func(e *fakes.ECR) { e.AllowPublic(awsTestRole) },
			wantCode: "AccessDeniedException",
			wantMsg: "User: " + callerARN + " is not authorized to perform: ecr:GetAuthorizationToken on resource: * " +
				"because no identity-based policy allows the ecr:GetAuthorizationToken action",
		},
		{
			name:     "ECR Public, only ECR allowed",
			public:   true,
			allow:    func(e *fakes.ECR) { e.Allow(awsTestRole) },
			wantCode: "AccessDeniedException",
			wantMsg: "User: " + callerARN + " is not authorized to perform: ecr-public:GetAuthorizationToken on resource: * " +
				"because no identity-based policy allows the ecr-public:GetAuthorizationToken action",
		},
		{
			name:  "another role allowed",
			allow: func(e *fakes.ECR) { e.Allow(awsTestOtherRole) },
			creds: func(s *fakes.AWSSTS, _ *awsClock) aws.CredentialsProvider {
				return awsStatic(s.IssueCredentials(awsTestRole))
			},
			wantCode: "AccessDeniedException",
		},
		{
			name:  "credentials the fake STS did not issue",
			allow: func(e *fakes.ECR) { e.Allow(awsTestRole) },
			creds: func(*fakes.AWSSTS, *awsClock) aws.CredentialsProvider {
				return credentials.NewStaticCredentialsProvider("ASIAOTHER", "secret", "token")
			},
			wantCode: "UnrecognizedClientException",
			wantMsg:  "The security token included in the request is invalid.",
		},
		{
			name:  "wrong secret",
			allow: func(e *fakes.ECR) { e.Allow(awsTestRole) },
			creds: func(s *fakes.AWSSTS, _ *awsClock) aws.CredentialsProvider {
				c := s.IssueCredentials(awsTestRole)
				c.SecretAccessKey = "not-the-secret"
				return awsStatic(c)
			},
			wantCode: "InvalidSignatureException",
		},
		{
			name:  "expired credentials",
			allow: func(e *fakes.ECR) { e.Allow(awsTestRole) },
			creds: func(s *fakes.AWSSTS, clock *awsClock) aws.CredentialsProvider {
				c := s.IssueCredentials(awsTestRole)
				clock.Advance(2 * time.Hour)
				return awsStatic(c)
			},
			wantCode: "ExpiredTokenException",
			wantMsg:  "The security token included in the request is expired",
		},
		{
			name:     "unsigned",
			allow:    func(e *fakes.ECR) { e.Allow(awsTestRole) },
			creds:    func(*fakes.AWSSTS, *awsClock) aws.CredentialsProvider { return aws.AnonymousCredentials{} },
			wantCode: "MissingAuthenticationTokenException",
			wantMsg:  "Request is missing Authentication Token",
			unsigned: true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			clock := newAWSClock()
			s := awsStartSTS(t, fakes.AWSSTSOptions{Now: clock.Now})
			e := fakes.StartECR(s, fakes.ECROptions{Now: clock.Now})
			t.Cleanup(e.Close)
			tt.allow(e)
			creds := awsStatic(s.IssueCredentials(awsTestRole))
			if tt.creds != nil {
				creds = tt.creds(s, clock)
			}

			login, err := ecrGetLogin(t, e, tt.public, creds)
			op := map[bool]string{false: fakes.ECRGetAuthorizationToken, true: fakes.ECRPublicGetAuthorizationToken}[tt.public]
			calls := e.Calls()
			g.Expect(calls).To(HaveLen(1))
			g.Expect(calls[0].Operation).To(Equal(op))
			if tt.unsigned {
				g.Expect(calls[0].Region).To(BeEmpty())
			} else {
				g.Expect(calls[0].Region).To(Equal("us-east-1"))
			}
			g.Expect(calls[0].Err).To(Equal(tt.wantCode))
			if tt.wantCode != "" {
				var apiErr smithy.APIError
				g.Expect(errors.As(err, &apiErr)).To(BeTrue(), "%v", err)
				g.Expect(apiErr.ErrorCode()).To(Equal(tt.wantCode))
				if tt.wantMsg != "" {
					g.Expect(apiErr.ErrorMessage()).To(Equal(tt.wantMsg))
				}
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(calls[0].Caller).To(Equal(awsTestRole))
			g.Expect(login.username).To(Equal("AWS"))
			g.Expect(login.password).NotTo(BeEmpty())
			g.Expect(login.expiresAt).NotTo(BeNil())
			g.Expect(*login.expiresAt).To(BeTemporally("==", clock.Now().Add(12*time.Hour)))
			who, ok := e.WhoAmI(login.password)
			g.Expect(ok).To(BeTrue())
			g.Expect(who).To(Equal(callerARN))
			_, ok = e.WhoAmI("AWS:" + login.password)
			g.Expect(ok).To(BeFalse())
		})
	}
}

func TestECR_Faults(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		fault fakes.Fault
		check func(g Gomega, now time.Time, login ecrLogin, err error)
	}{
		{
			name:  "throttled",
			fault: fakes.Throttle(),
			check: func(g Gomega, _ time.Time, _ ecrLogin, err error) {
				var apiErr smithy.APIError
				g.Expect(errors.As(err, &apiErr)).To(BeTrue())
				g.Expect(apiErr.ErrorCode()).To(Equal("ThrottlingException"))
			},
		},
		{
			name:  "server error",
			fault: fakes.ServerError(500),
			check: func(g Gomega, _ time.Time, _ ecrLogin, err error) {
				var apiErr smithy.APIError
				g.Expect(errors.As(err, &apiErr)).To(BeTrue())
				g.Expect(apiErr.ErrorCode()).To(Equal("ServerException"))
			},
		},
		{
			name:  "malformed",
			fault: fakes.MalformedBody(),
			check: func(g Gomega, _ time.Time, _ ecrLogin, err error) {
				var de *smithy.DeserializationError
				g.Expect(errors.As(err, &de)).To(BeTrue(), "%v", err)
			},
		},
		{
			name:  "expired",
			fault: fakes.ExpiredCredentials(),
			check: func(g Gomega, now time.Time, l ecrLogin, err error) {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(*l.expiresAt).To(BeTemporally("==", now.Add(-time.Minute)))
			},
		},
		{
			name:  "missing expiry",
			fault: fakes.MissingExpiry(),
			check: func(g Gomega, _ time.Time, l ecrLogin, err error) {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(l.expiresAt).To(BeNil())
			},
		},
		{
			name:  "empty token",
			fault: fakes.EmptyCredentials(),
			check: func(g Gomega, _ time.Time, l ecrLogin, err error) {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(l.username).To(BeEmpty())
			},
		},
		{
			name:  "clock skew",
			fault: fakes.ClockSkew(time.Hour),
			check: func(g Gomega, now time.Time, l ecrLogin, err error) {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(*l.expiresAt).To(BeTemporally("==", now.Add(13*time.Hour)))
			},
		},
	} {
		for _, public := range []bool{false, true} {
			t.Run(tt.name+map[bool]string{false: "", true: ", public"}[public], func(t *testing.T) {
				t.Parallel()
				g := NewWithT(t)
				clock := newAWSClock()
				s := awsStartSTS(t, fakes.AWSSTSOptions{Now: clock.Now})
				e := fakes.StartECR(s, fakes.ECROptions{Now: clock.Now})
				t.Cleanup(e.Close)
				e.Allow(awsTestRole)
				e.AllowPublic(awsTestRole)
				op := map[bool]string{false: fakes.ECRGetAuthorizationToken, true: fakes.ECRPublicGetAuthorizationToken}
				f := e.InjectFault(tt.fault.Times(1).OnlyFor(op[public]))
				e.InjectFault(fakes.ServerError(503).OnlyFor(op[!public])) // never met

				login, err := ecrGetLogin(t, e, public, awsStatic(s.IssueCredentials(awsTestRole)))
				tt.check(g, clock.Now(), login, err)
				g.Expect(f.Hits()).To(Equal(1))
				g.Expect(e.Attempts()).To(Equal(1))

				// Times(1) is used up: the next request succeeds.
				login, err = ecrGetLogin(t, e, public, awsStatic(s.IssueCredentials(awsTestRole)))
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(*login.expiresAt).To(BeTemporally("==", clock.Now().Add(12*time.Hour)))
			})
		}
	}

	t.Run("unknown operation", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		s := awsStartSTS(t, fakes.AWSSTSOptions{})
		e := fakes.StartECR(s, fakes.ECROptions{})
		t.Cleanup(e.Close)
		g.Expect(func() { e.InjectFault(fakes.Throttle().OnlyFor("GetAuthorizationToken")) }).
			To(PanicWith("fakes: ECR.InjectFault: unknown operation 'GetAuthorizationToken'"))
	})
}

// TestECR_ThroughTheImplementation checks the wiring of
// AWSImplementation.WithECR, which the library's provider calls.
func TestECR_ThroughTheImplementation(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	e := fakes.StartECR(s, fakes.ECROptions{})
	t.Cleanup(e.Close)
	e.Allow(awsTestRole)
	e.AllowPublic(awsTestRole)
	impl := s.Implementation().WithECR(e)
	cfg := aws.Config{Region: "us-east-1", Credentials: awsStatic(s.IssueCredentials(awsTestRole))}

	out, err := impl.GetAuthorizationToken(context.Background(), cfg)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(BeAssignableToTypeOf(&ecr.GetAuthorizationTokenOutput{}))
	out, err = impl.GetPublicAuthorizationToken(context.Background(), cfg)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(BeAssignableToTypeOf(&ecrpublic.GetAuthorizationTokenOutput{}))
	g.Expect(e.Calls()).To(HaveLen(2))
}
