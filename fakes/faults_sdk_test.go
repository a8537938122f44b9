package fakes_test

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	. "github.com/onsi/gomega"
	"golang.org/x/oauth2/google"
	iamcredentials "google.golang.org/api/iamcredentials/v1"

	"github.com/identitychain/auth/fakes"
)

// These tests show what the real SDKs make of injected faults beyond one
// request: which they retry, and which bad values they pass on to the code
// under test.

// faultAWSRetryer is retry.Standard as the SDK builds it, without the
// backoff sleeps and the retry quota, so that retries are instant and
// exact. extra adds retryable status codes.
func faultAWSRetryer(extra ...int) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		o.RateLimiter = ratelimit.None
		codes := map[int]struct{}{}
		for _, c := range extra {
			codes[c] = struct{}{}
		}
		o.Retryables = append(o.Retryables, retry.RetryableHTTPStatusCode{Codes: codes})
	})
}

func TestFaults_STSRetriedByStandardRetryer(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := faultContext(t)
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	s.AllowAssumeRole(awsTestRole, awsTestTenantRole)
	throttle := s.InjectFault(fakes.Throttle().Times(1))
	unavailable := s.InjectFault(fakes.ServerError(http.StatusServiceUnavailable).Times(1))
	reset := s.InjectFault(fakes.ResetConnection().Times(1))

	client := sts.New(sts.Options{
		Region:       awsTestRegion,
		BaseEndpoint: aws.String(s.URL),
		Credentials:  awsStatic(s.IssueCredentials(awsTestRole)),
		Retryer:      retry.AddWithMaxAttempts(faultAWSRetryer(), 4),
	})
	_, err := client.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String(awsTestTenantRole),
		RoleSessionName: aws.String(awsTestSession),
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.Attempts()).To(Equal(4))
	g.Expect([]int{throttle.Hits(), unavailable.Hits(), reset.Hits()}).To(Equal([]int{1, 1, 1}))
	// Only the call that got through was handled.
	g.Expect(s.Count("AssumeRole")).To(Equal(1))
}

func TestFaults_STSExpiredCredentialsAreExpiredForTheFakeToo(t *testing.T) {
	t.Parallel()
	ctx := faultContext(t)
	for _, tt := range []struct {
		fault    fakes.Fault
		wantCode string
	}{
		{fault: fakes.ExpiredCredentials(), wantCode: "ExpiredToken"},
		{fault: fakes.ClockSkew(-2 * time.Hour)},
		{fault: fakes.MissingExpiry()},
	} {
		t.Run(tt.fault.String(), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			s := awsStartSTS(t, fakes.AWSSTSOptions{})
			s.AllowAssumeRole(awsTestRole, awsTestTenantRole)
			s.InjectFault(tt.fault.OnlyFor("AssumeRole"))
			out, err := awsSTSClient(s, awsStatic(s.IssueCredentials(awsTestRole))).AssumeRole(ctx, &sts.AssumeRoleInput{
				RoleArn:         aws.String(awsTestTenantRole),
				RoleSessionName: aws.String(awsTestSession),
			})
			g.Expect(err).NotTo(HaveOccurred())

			c := out.Credentials
			_, err = awsSTSClient(s, awsStatic(aws.Credentials{
				AccessKeyID:     aws.ToString(c.AccessKeyId),
				SecretAccessKey: aws.ToString(c.SecretAccessKey),
				SessionToken:    aws.ToString(c.SessionToken),
			})).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if tt.wantCode != "" {
				g.Expect(awsErrorCode(err)).To(Equal(tt.wantCode))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
		})
	}
}

func TestFaults_PodIdentityRetriedByContainerProvider(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := faultContext(t)
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	agent := awsStartPodIdentityAgent(t, s, awsTestRole)
	token, err := os.ReadFile(agent.TokenFile())
	g.Expect(err).NotTo(HaveOccurred())
	throttle := agent.InjectFault(fakes.Throttle().Times(2))

	// The container provider's default retryer is retry.Standard plus 429.
	provider := endpointcreds.New(agent.URL, func(o *endpointcreds.Options) {
		o.AuthorizationToken = string(token)
		o.Retryer = faultAWSRetryer(http.StatusTooManyRequests)
	})
	creds, err := provider.Retrieve(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(creds.AccessKeyID).NotTo(BeEmpty())
	g.Expect(throttle.Hits()).To(Equal(2))
	g.Expect(agent.Attempts()).To(Equal(3))
	g.Expect(agent.Requests()).To(BeEquivalentTo(3))
}

// TestFaults_MetadataWithComputeTokenSource runs oauth2's metadata token
// source, through the metadata package's own retries. Not parallel: it
// sets GCE_METADATA_HOST.
func TestFaults_MetadataWithComputeTokenSource(t *testing.T) {
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	m := gcpStartMetadata(t, iam)
	gcpSetEnv(t, m)
	const tokenPath = "/computeMetadata/v1/instance/service-accounts/default/token"

	for _, tt := range []struct {
		fault        fakes.Fault
		wantErr      string
		wantAttempts int
		wantExpiry   time.Duration
	}{
		// The metadata package retries 429, 5xx and ECONNRESET itself.
		{fault: fakes.Throttle().Times(2), wantAttempts: 3, wantExpiry: time.Hour},
		{fault: fakes.ServerError(http.StatusServiceUnavailable).Times(1), wantAttempts: 2, wantExpiry: time.Hour},
		{fault: fakes.ResetConnection().Times(1), wantAttempts: 2, wantExpiry: time.Hour},
		{fault: fakes.MalformedBody(), wantErr: "oauth2/google: invalid token JSON from metadata: unexpected EOF", wantAttempts: 1},
		// oauth2 takes a missing expires_in, like an empty token, for an
		// incomplete one, but passes an expired token on.
		{fault: fakes.MissingExpiry(), wantErr: "oauth2/google: incomplete token received from metadata", wantAttempts: 1},
		{fault: fakes.EmptyCredentials(), wantErr: "oauth2/google: incomplete token received from metadata", wantAttempts: 1},
		{fault: fakes.ExpiredCredentials(), wantAttempts: 1, wantExpiry: -time.Minute},
		{fault: fakes.ClockSkew(-50 * time.Minute), wantAttempts: 1, wantExpiry: 10 * time.Minute},
	} {
		t.Run(tt.fault.String(), func(t *testing.T) {
			g := NewWithT(t)
			before := m.Attempts()
			fault := m.InjectFault(tt.fault.OnlyFor(tokenPath))
			defer fault.Remove()

			tok, err := google.ComputeTokenSource("").Token()
			g.Expect(m.Attempts() - before).To(Equal(tt.wantAttempts))
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(tok.AccessToken).NotTo(BeEmpty())
			// oauth2 stamps expiry on the wall clock as it reads the reply.
			g.Expect(tok.Expiry).To(BeTemporally("~", time.Now().Add(tt.wantExpiry), 5*time.Second))
		})
	}
}

func TestFaults_GoogleSTSWithExternalAccount(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		fault      fakes.Fault
		wantErr    string
		wantEmpty  bool
		wantExpiry time.Duration
	}{
		{fault: fakes.Throttle(), wantErr: `oauth2/google: status code 429: {"error":{"code":429,"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","domain":"googleapis.com","reason":"RATE_LIMIT_EXCEEDED"}],"message":"Quota exceeded for quota metric 'Token exchange requests' and limit 'Token exchange requests per minute' of service 'sts.googleapis.com'.","status":"RESOURCE_EXHAUSTED"}}` + "\n"},
		{fault: fakes.ServerError(http.StatusServiceUnavailable), wantErr: `oauth2/google: status code 503: {"error":{"code":503,"message":"The service encountered an error.","status":"UNAVAILABLE"}}` + "\n"},
		{fault: fakes.MalformedBody(), wantErr: "oauth2/google: failed to unmarshal response body from Secure Token Server: unexpected end of JSON input"},
		// externalaccount refuses a missing or non-positive expires_in...
		{fault: fakes.ExpiredCredentials(), wantErr: "oauth2/google/externalaccount: got invalid expiry from security token service"},
		{fault: fakes.MissingExpiry(), wantErr: "oauth2/google/externalaccount: got invalid expiry from security token service"},
		// ...but passes an empty token and a skewed expiry on.
		{fault: fakes.EmptyCredentials(), wantEmpty: true, wantExpiry: time.Hour},
		{fault: fakes.ClockSkew(-30 * time.Minute), wantExpiry: 30 * time.Minute},
	} {
		t.Run(tt.fault.String(), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			f := gcpStartFederation(t, fakes.GCPSTSOptions{})
			fault := f.sts.InjectFault(tt.fault)
			subject := f.sign(t, "apps", "podinfo", gcpTestPool)
			ts, err := f.impl.NewTokenSource(faultContext(t), gcpUpstreamConfig(gcpTestGKEAud, subject, ""))
			g.Expect(err).NotTo(HaveOccurred())

			tok, err := ts.Token()
			g.Expect(fault.Hits()).To(Equal(1))
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(tok.AccessToken == "").To(Equal(tt.wantEmpty))
			g.Expect(tok.Expiry).To(BeTemporally("~", time.Now().Add(tt.wantExpiry), 5*time.Second))
		})
	}
}

// TestFaults_IAMHitsOneTargetOfAChain fails generateAccessToken for one
// service account and not for another, as OnlyFor on a path allows.
func TestFaults_IAMHitsOneTargetOfAChain(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	bearer, _ := iam.IssueToken(gcpTestControllerSA)
	iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
	iam.AllowImpersonation(gcpTestControllerSA, gcpTestOtherSA)
	fault := iam.InjectFault(fakes.ServerError(http.StatusInternalServerError).
		OnlyFor("/v1/projects/-/serviceAccounts/" + gcpTestOtherSA + ":generateAccessToken"))

	_, err := gcpGenerate(t, iam, bearer, gcpTestTenantSA, &iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = gcpGenerate(t, iam, bearer, gcpTestOtherSA, &iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}})
	g.Expect(gcpDecodeAPIError(t, err).Status).To(Equal("INTERNAL"))
	g.Expect(fault.Hits()).To(Equal(1))
	g.Expect(iam.Attempts()).To(Equal(2))
	// The refused call never reached the service, so it is not recorded.
	g.Expect(iam.Count()).To(Equal(1))
}

// TestFaults_ExpiredIAMTokenIsRefusedByIAM uses an expired token as a
// bearer: the fake knows it expired.
func TestFaults_ExpiredIAMTokenIsRefusedByIAM(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	bearer, _ := iam.IssueToken(gcpTestControllerSA)
	iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
	iam.AllowImpersonation(gcpTestTenantSA, gcpTestOtherSA)
	iam.InjectFault(fakes.ExpiredCredentials().Times(1))

	resp, err := gcpGenerate(t, iam, bearer, gcpTestTenantSA, &iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = gcpGenerate(t, iam, resp.AccessToken, gcpTestOtherSA, &iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}})
	g.Expect(gcpDecodeAPIError(t, err).Reason).To(Equal("ACCESS_TOKEN_EXPIRED"))
}
