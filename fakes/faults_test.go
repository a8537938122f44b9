package fakes_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	. "github.com/onsi/gomega"
	iamcredentials "google.golang.org/api/iamcredentials/v1"

	"github.com/identitychain/auth/fakes"
)

// faultTTL is the lifetime every hop's fake grants by default.
const faultTTL = time.Hour

// faultCreds is what a client got from a hop, reduced to what faults alter.
type faultCreds struct {
	// AccessKeyID, SecretAccessKey and SessionToken on AWS; AccessToken
	// alone on Google.
	AccessKeyID, SecretAccessKey, SessionToken, AccessToken string
	// Expiry is zero when the reply carried none.
	Expiry time.Time
}

func (c faultCreds) empty() bool {
	return c.AccessKeyID == "" && c.SecretAccessKey == "" && c.SessionToken == "" && c.AccessToken == ""
}

// faultTarget is one fake started for a test, and a real client of it.
type faultTarget struct {
	inject   func(fakes.Fault) *fakes.InjectedFault
	attempts func() int
	close    func()
	// now is the fake's clock.
	now func() time.Time
	// call asks the fake for credentials with the real client.
	call func(ctx context.Context) (faultCreds, error)
	// throttled, serverError and malformed check what the client reports.
	throttled   func(t *testing.T, g Gomega, err error)
	serverError func(t *testing.T, g Gomega, err error, status int)
	malformed   func(t *testing.T, g Gomega, err error)
}

// faultHop is a fake that issues credentials, one hop of a credential
// chain.
type faultHop struct {
	name  string
	start func(t *testing.T) *faultTarget
}

var faultHops = []faultHop{
	{"STS/AssumeRoleWithWebIdentity", faultStartSTSWebIdentity},
	{"STS/AssumeRole", faultStartSTSAssumeRole},
	{"PodIdentityAgent", faultStartPodIdentity},
	{"Metadata", faultStartMetadata},
	{"GoogleSTS", faultStartGoogleSTS},
	{"IAMCredentials", faultStartIAM},
}

// faultHTTPStatus returns the HTTP status an SDK error carries, or 0.
func faultHTTPStatus(err error) int {
	var withStatus interface{ HTTPStatusCode() int }
	if errors.As(err, &withStatus) {
		return withStatus.HTTPStatusCode()
	}
	return 0
}

func faultAWSRetryable(err error) aws.Ternary {
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err)
}

func faultDeserializationError(_ *testing.T, g Gomega, err error) {
	var de *smithy.DeserializationError
	g.Expect(errors.As(err, &de)).To(BeTrue(), "want a deserialization error, got %v", err)
}

func faultAWSCreds(c *sts.AssumeRoleWithWebIdentityOutput, d *sts.AssumeRoleOutput) faultCreds {
	var creds faultCreds
	var exp *time.Time
	switch {
	case c != nil:
		creds = faultCreds{AccessKeyID: aws.ToString(c.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(c.Credentials.SecretAccessKey), SessionToken: aws.ToString(c.Credentials.SessionToken)}
		exp = c.Credentials.Expiration
	case d != nil:
		creds = faultCreds{AccessKeyID: aws.ToString(d.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(d.Credentials.SecretAccessKey), SessionToken: aws.ToString(d.Credentials.SessionToken)}
		exp = d.Credentials.Expiration
	}
	if exp != nil {
		creds.Expiry = *exp
	}
	return creds
}

// faultSTSTarget has the checks shared by both STS operations.
func faultSTSTarget(s *fakes.AWSSTS, clock *awsClock) *faultTarget {
	return &faultTarget{
		inject:   s.InjectFault,
		attempts: s.Attempts,
		close:    s.Close,
		now:      clock.Now,
		throttled: func(_ *testing.T, g Gomega, err error) {
			g.Expect(awsErrorCode(err)).To(Equal("Throttling"))
			g.Expect(faultHTTPStatus(err)).To(Equal(http.StatusBadRequest))
			// The SDK's standard retryer must see a retryable throttle.
			g.Expect(retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err)).To(Equal(aws.TrueTernary))
			g.Expect(faultAWSRetryable(err)).To(Equal(aws.TrueTernary))
		},
		serverError: func(_ *testing.T, g Gomega, err error, status int) {
			code := "InternalFailure"
			if status == http.StatusServiceUnavailable {
				code = "ServiceUnavailable"
			}
			g.Expect(awsErrorCode(err)).To(Equal(code))
			g.Expect(faultHTTPStatus(err)).To(Equal(status))
			g.Expect(faultAWSRetryable(err)).To(Equal(aws.TrueTernary))
		},
		malformed: faultDeserializationError,
	}
}

func faultStartSTSWebIdentity(t *testing.T) *faultTarget {
	clock := newAWSClock()
	s := awsStartSTS(t, fakes.AWSSTSOptions{Issuer: awsSharedIssuer(), Now: clock.Now})
	s.AllowWebIdentity(awsTestRole, awsTestNamespace, awsTestSA)
	token := awsSign(t, awsSharedIssuer(), awsTestNamespace, awsTestSA, "sts.amazonaws.com")
	client := awsSTSClient(s, nil)
	ft := faultSTSTarget(s, clock)
	ft.call = func(ctx context.Context) (faultCreds, error) {
		out, err := client.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
			RoleArn:          aws.String(awsTestRole),
			RoleSessionName:  aws.String(awsTestSession),
			WebIdentityToken: aws.String(token),
		})
		if err != nil {
			return faultCreds{}, err
		}
		return faultAWSCreds(out, nil), nil
	}
	return ft
}

func faultStartSTSAssumeRole(t *testing.T) *faultTarget {
	clock := newAWSClock()
	s := awsStartSTS(t, fakes.AWSSTSOptions{Now: clock.Now})
	s.AllowAssumeRole(awsTestRole, awsTestTenantRole)
	client := awsSTSClient(s, awsStatic(s.IssueCredentials(awsTestRole)))
	ft := faultSTSTarget(s, clock)
	ft.call = func(ctx context.Context) (faultCreds, error) {
		out, err := client.AssumeRole(ctx, &sts.AssumeRoleInput{
			RoleArn:         aws.String(awsTestTenantRole),
			RoleSessionName: aws.String(awsTestSession),
		})
		if err != nil {
			return faultCreds{}, err
		}
		return faultAWSCreds(nil, out), nil
	}
	return ft
}

func faultStartPodIdentity(t *testing.T) *faultTarget {
	clock := newAWSClock()
	s := awsStartSTS(t, fakes.AWSSTSOptions{Now: clock.Now})
	agent := awsStartPodIdentityAgent(t, s, awsTestRole)
	token, err := os.ReadFile(agent.TokenFile())
	if err != nil {
		t.Fatal(err)
	}
	provider := endpointcreds.New(agent.URL, func(o *endpointcreds.Options) {
		o.AuthorizationToken = string(token)
		o.Retryer = aws.NopRetryer{}
	})
	return &faultTarget{
		inject:   agent.InjectFault,
		attempts: agent.Attempts,
		close:    agent.Close,
		now:      clock.Now,
		call: func(ctx context.Context) (faultCreds, error) {
			c, err := provider.Retrieve(ctx)
			if err != nil {
				return faultCreds{}, err
			}
			creds := faultCreds{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
			if c.CanExpire {
				creds.Expiry = c.Expires
			}
			return creds, nil
		},
		throttled: func(_ *testing.T, g Gomega, err error) {
			g.Expect(faultHTTPStatus(err)).To(Equal(http.StatusTooManyRequests))
			g.Expect(err).To(MatchError(ContainSubstring("Too Many Requests")))
			// The container provider's default retryer adds 429 to the
			// standard retryables.
			g.Expect(retry.RetryableHTTPStatusCode{Codes: map[int]struct{}{http.StatusTooManyRequests: {}}}.
				IsErrorRetryable(err)).To(Equal(aws.TrueTernary))
		},
		serverError: func(_ *testing.T, g Gomega, err error, status int) {
			g.Expect(faultHTTPStatus(err)).To(Equal(status))
			g.Expect(faultAWSRetryable(err)).To(Equal(aws.TrueTernary))
		},
		malformed: faultDeserializationError,
	}
}

// faultHTTPError is a non-2xx answer seen by a plain net/http client.
type faultHTTPError struct {
	status int
	body   string
}

func (e *faultHTTPError) Error() string { return fmt.Sprintf("status %d: %s", e.status, e.body) }

// faultDo sends req with client and decodes a 200 answer as an OAuth token
// response ({"access_token", "expires_in"}) against now, as oauth2 does.
func faultDo(client *http.Client, req *http.Request, now func() time.Time) (faultCreds, error) {
	resp, err := client.Do(req)
	if err != nil {
		return faultCreds{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return faultCreds{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return faultCreds{}, &faultHTTPError{resp.StatusCode, string(body)}
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   *int64 `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		return faultCreds{}, err
	}
	creds := faultCreds{AccessToken: tok.AccessToken}
	if tok.ExpiresIn != nil {
		creds.Expiry = now().Add(time.Duration(*tok.ExpiresIn) * time.Second)
	}
	return creds, nil
}

// faultGoogleStatus returns the status of Google's JSON error envelope.
func faultGoogleStatus(g Gomega, body string) string {
	var envelope struct {
		Error struct {
			Status string `json:"status"`
		} `json:"error"`
	}
	g.Expect(json.Unmarshal([]byte(body), &envelope)).To(Succeed())
	return envelope.Error.Status
}

func faultHTTPStatusOf(g Gomega, err error) *faultHTTPError {
	var herr *faultHTTPError
	g.Expect(errors.As(err, &herr)).To(BeTrue(), "want an HTTP error, got %v", err)
	return herr
}

func faultJSONSyntaxError(_ *testing.T, g Gomega, err error) {
	var se *json.SyntaxError
	g.Expect(errors.As(err, &se)).To(BeTrue(), "want a JSON syntax error, got %v", err)
}

// faultHTTPClient is a client of its own per test, so no connection is
// shared between tests and none outlives them.
func faultHTTPClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func faultStartMetadata(t *testing.T) *faultTarget {
	clock := newGCPClock()
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{Now: clock.Now})
	t.Cleanup(iam.Close)
	m := gcpStartMetadata(t, iam)
	client := faultHTTPClient(t)
	return &faultTarget{
		inject:   m.InjectFault,
		attempts: m.Attempts,
		close:    m.Close,
		now:      clock.Now,
		call: func(ctx context.Context) (faultCreds, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+"/computeMetadata/v1/instance/service-accounts/default/token", nil)
			if err != nil {
				return faultCreds{}, err
			}
			req.Header.Set("Metadata-Flavor", "Google")
			return faultDo(client, req, clock.Now)
		},
		throttled: func(_ *testing.T, g Gomega, err error) {
			herr := faultHTTPStatusOf(g, err)
			g.Expect(herr.status).To(Equal(http.StatusTooManyRequests))
			g.Expect(herr.body).To(Equal("Too Many Requests\n"))
		},
		serverError: func(_ *testing.T, g Gomega, err error, status int) {
			g.Expect(faultHTTPStatusOf(g, err).status).To(Equal(status))
		},
		malformed: faultJSONSyntaxError,
	}
}

func faultStartGoogleSTS(t *testing.T) *faultTarget {
	f := gcpStartFederation(t, fakes.GCPSTSOptions{})
	subject := f.sign(t, "apps", "podinfo", gcpTestPool)
	client := faultHTTPClient(t)
	return &faultTarget{
		inject:   f.sts.InjectFault,
		attempts: f.sts.Attempts,
		close:    f.sts.Close,
		now:      f.clock.Now,
		call: func(ctx context.Context) (faultCreds, error) {
			form := url.Values{
				"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
				"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
				"subject_token_type":   {"urn:ietf:params:oauth:token-type:jwt"},
				"subject_token":        {subject},
				"audience":             {gcpTestGKEAud},
				"scope":                {gcpScopeCloudPlatform},
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.sts.URL+"/v1/token", strings.NewReader(form.Encode()))
			if err != nil {
				return faultCreds{}, err
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return faultDo(client, req, f.clock.Now)
		},
		throttled: func(_ *testing.T, g Gomega, err error) {
			herr := faultHTTPStatusOf(g, err)
			g.Expect(herr.status).To(Equal(http.StatusTooManyRequests))
			g.Expect(faultGoogleStatus(g, herr.body)).To(Equal("RESOURCE_EXHAUSTED"))
		},
		serverError: func(_ *testing.T, g Gomega, err error, status int) {
			herr := faultHTTPStatusOf(g, err)
			g.Expect(herr.status).To(Equal(status))
			g.Expect(faultGoogleStatus(g, herr.body)).To(Equal(map[int]string{500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE"}[status]))
		},
		malformed: faultJSONSyntaxError,
	}
}

func faultStartIAM(t *testing.T) *faultTarget {
	clock := newGCPClock()
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{Now: clock.Now})
	t.Cleanup(iam.Close)
	bearer, _ := iam.IssueToken(gcpTestControllerSA)
	iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
	svc := gcpIAMService(t, iam, bearer)
	return &faultTarget{
		inject:   iam.InjectFault,
		attempts: iam.Attempts,
		close:    iam.Close,
		now:      clock.Now,
		call: func(ctx context.Context) (faultCreds, error) {
			resp, err := svc.Projects.ServiceAccounts.GenerateAccessToken("projects/-/serviceAccounts/"+gcpTestTenantSA,
				&iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}}).Context(ctx).Do()
			if err != nil {
				return faultCreds{}, err
			}
			creds := faultCreds{AccessToken: resp.AccessToken}
			if resp.ExpireTime != "" {
				if creds.Expiry, err = time.Parse(time.RFC3339, resp.ExpireTime); err != nil {
					return faultCreds{}, err
				}
			}
			return creds, nil
		},
		throttled: func(t *testing.T, g Gomega, err error) {
			g.Expect(gcpDecodeAPIError(t, err)).To(Equal(gcpAPIErr{
				Code:    http.StatusTooManyRequests,
				Status:  "RESOURCE_EXHAUSTED",
				Reason:  "RATE_LIMIT_EXCEEDED",
				Message: "Quota exceeded for quota metric 'Generate credentials requests' and limit 'Generate credentials requests per minute' of service 'iamcredentials.googleapis.com'.",
			}))
		},
		serverError: func(t *testing.T, g Gomega, err error, status int) {
			got := gcpDecodeAPIError(t, err)
			g.Expect(got.Code).To(Equal(status))
			g.Expect(got.Status).To(Equal(map[int]string{500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE"}[status]))
		},
		malformed: faultJSONSyntaxError,
	}
}

// faultPending is a call running in the background.
type faultPending struct {
	cancel context.CancelFunc
	done   chan struct{}
	creds  faultCreds
	err    error
}

func faultStart(ctx context.Context, ft *faultTarget) *faultPending {
	ctx, cancel := context.WithCancel(ctx)
	p := &faultPending{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.creds, p.err = ft.call(ctx)
	}()
	return p
}

// wait returns the call's result once it has one.
func (p *faultPending) wait() (faultCreds, error) {
	<-p.done
	p.cancel()
	return p.creds, p.err
}

// answered reports whether the call has a result by now.
func (p *faultPending) answered() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// faultCase is one fault and what every client must see of it.
type faultCase struct {
	fault fakes.Fault
	hangs bool
	check func(t *testing.T, g Gomega, ft *faultTarget, creds faultCreds, err error)
}

func faultCases() []faultCase {
	serverError := func(status int) faultCase {
		return faultCase{fault: fakes.ServerError(status), check: func(t *testing.T, g Gomega, ft *faultTarget, _ faultCreds, err error) {
			ft.serverError(t, g, err, status)
		}}
	}
	skew := func(d time.Duration) faultCase {
		return faultCase{fault: fakes.ClockSkew(d), check: func(_ *testing.T, g Gomega, ft *faultTarget, creds faultCreds, err error) {
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(creds.empty()).To(BeFalse())
			g.Expect(creds.Expiry).To(BeTemporally("==", ft.now().Add(faultTTL+d)))
		}}
	}
	return []faultCase{
		{fault: fakes.Throttle(), check: func(t *testing.T, g Gomega, ft *faultTarget, _ faultCreds, err error) {
			ft.throttled(t, g, err)
		}},
		serverError(http.StatusInternalServerError),
		serverError(http.StatusBadGateway),
		serverError(http.StatusServiceUnavailable),
		{fault: fakes.ResetConnection(), check: func(_ *testing.T, g Gomega, _ *faultTarget, _ faultCreds, err error) {
			g.Expect(errors.Is(err, syscall.ECONNRESET)).To(BeTrue(), "want ECONNRESET, got %v", err)
		}},
		{fault: fakes.Hang(), hangs: true, check: func(_ *testing.T, g Gomega, _ *faultTarget, _ faultCreds, err error) {
			// Only the client giving up ended the call: the fake never
			// answered.
			g.Expect(errors.Is(err, context.Canceled)).To(BeTrue(), "want the client's cancellation, got %v", err)
		}},
		{fault: fakes.MalformedBody(), check: func(t *testing.T, g Gomega, ft *faultTarget, _ faultCreds, err error) {
			ft.malformed(t, g, err)
		}},
		{fault: fakes.ExpiredCredentials(), check: func(_ *testing.T, g Gomega, ft *faultTarget, creds faultCreds, err error) {
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(creds.empty()).To(BeFalse())
			g.Expect(creds.Expiry).To(BeTemporally("==", ft.now().Add(-time.Minute)))
		}},
		{fault: fakes.MissingExpiry(), check: func(_ *testing.T, g Gomega, _ *faultTarget, creds faultCreds, err error) {
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(creds.empty()).To(BeFalse())
			g.Expect(creds.Expiry.IsZero()).To(BeTrue(), "want no expiry, got %v", creds.Expiry)
		}},
		{fault: fakes.EmptyCredentials(), check: func(_ *testing.T, g Gomega, ft *faultTarget, creds faultCreds, err error) {
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(creds.empty()).To(BeTrue(), "want empty credentials")
			g.Expect(creds.Expiry).To(BeTemporally("==", ft.now().Add(faultTTL)))
		}},
		skew(-30 * time.Minute),
		skew(2 * time.Hour),
	}
}

// faultContext bounds a test that waits on the network: a fault that hangs
// where it should not fails the test instead of stalling the binary.
func faultContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestFaults_EveryFaultOnEveryFake drives each fault through each fake with
// the real client of that fake. Each fault is injected twice: limited to one
// request, then unlimited. The first request meets the limited one, the
// second the unlimited one, and once that is removed the third succeeds,
// while a request it hung stays hung until its client gives up.
func TestFaults_EveryFaultOnEveryFake(t *testing.T) {
	t.Parallel()
	for _, hop := range faultHops {
		for _, tc := range faultCases() {
			t.Run(hop.name+"/"+tc.fault.String(), func(t *testing.T) {
				t.Parallel()
				g := NewWithT(t)
				ctx := faultContext(t)
				ft := hop.start(t)
				once := ft.inject(tc.fault.Times(1))
				always := ft.inject(tc.fault)

				first := faultStart(ctx, ft)
				if tc.hangs {
					g.Expect(once.WaitHits(ctx, 1)).To(Succeed())
					g.Expect(first.answered()).To(BeFalse())
					first.cancel()
				}
				creds, err := first.wait()
				tc.check(t, g, ft, creds, err)
				g.Expect(once.Hits()).To(Equal(1))
				g.Expect(always.Hits()).To(Equal(0))

				second := faultStart(ctx, ft)
				if tc.hangs {
					g.Expect(always.WaitHits(ctx, 1)).To(Succeed())
				} else {
					creds, err := second.wait()
					tc.check(t, g, ft, creds, err)
				}
				g.Expect(once.Hits()).To(Equal(1))
				g.Expect(always.Hits()).To(Equal(1))

				always.Remove()
				creds, err = ft.call(ctx)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(creds.empty()).To(BeFalse())
				g.Expect(creds.Expiry).To(BeTemporally("==", ft.now().Add(faultTTL)))

				if tc.hangs {
					g.Expect(second.answered()).To(BeFalse(), "removing a fault must not release a request it hung")
					second.cancel()
					creds, err := second.wait()
					tc.check(t, g, ft, creds, err)
				}
				g.Expect(ft.attempts()).To(Equal(3))
				g.Expect(once.Hits()).To(Equal(1))
				g.Expect(always.Hits()).To(Equal(1))
			})
		}
	}
}

// TestFaults_CloseReleasesHungRequests closes each fake while a request
// hangs: Close must return, and the client must see the connection dropped,
// not an answer.
func TestFaults_CloseReleasesHungRequests(t *testing.T) {
	t.Parallel()
	for _, hop := range faultHops {
		t.Run(hop.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ctx := faultContext(t)
			ft := hop.start(t)
			hang := ft.inject(fakes.Hang())

			call := faultStart(ctx, ft)
			g.Expect(hang.WaitHits(ctx, 1)).To(Succeed())
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				ft.close()
			}()
			select {
			case <-closed:
			case <-ctx.Done():
				t.Fatal("Close did not return while a request hung")
			}
			_, err := call.wait()
			g.Expect(err).To(HaveOccurred())
			g.Expect(errors.Is(err, context.Canceled)).To(BeFalse(), "the fake, not the client, must end the call: %v", err)
		})
	}
}

func TestFault_String(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		fault fakes.Fault
		want  string
	}{
		{fakes.Fault{}, "Fault{}"},
		{fakes.Throttle(), "Throttle()"},
		{fakes.ServerError(503).Times(2).OnlyFor("AssumeRole"), `ServerError(503).Times(2).OnlyFor("AssumeRole")`},
		{fakes.ResetConnection(), "ResetConnection()"},
		{fakes.Hang().Times(1), "Hang().Times(1)"},
		{fakes.MalformedBody(), "MalformedBody()"},
		{fakes.ExpiredCredentials(), "ExpiredCredentials()"},
		{fakes.MissingExpiry(), "MissingExpiry()"},
		{fakes.EmptyCredentials().OnlyFor("/v1/token"), `EmptyCredentials().OnlyFor("/v1/token")`},
		{fakes.ClockSkew(-90 * time.Minute), "ClockSkew(-1h30m0s)"},
		// Times(0) is the default: until removed.
		{fakes.Throttle().Times(3).Times(0), "Throttle()"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			NewWithT(t).Expect(tt.fault.String()).To(Equal(tt.want))
		})
	}
}

// TestFaults_Refused pins the panics that catch a fault that cannot work:
// a typo in OnlyFor would otherwise leave a test passing for the wrong
// reason.
func TestFaults_Refused(t *testing.T) {
	t.Parallel()
	clock := newGCPClock()
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	agent := awsStartPodIdentityAgent(t, s, awsTestRole)
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{Now: clock.Now})
	t.Cleanup(iam.Close)
	m := gcpStartMetadata(t, iam)
	f := gcpStartFederation(t, fakes.GCPSTSOptions{})

	for _, tt := range []struct {
		name string
		do   func()
		want string
	}{
		{"5xx only", func() { fakes.ServerError(404) }, "fakes: ServerError needs a 5xx status, got 404"},
		{"negative times", func() { fakes.Throttle().Times(-1) }, "fakes: Fault.Times needs n >= 0, got -1"},
		{"zero fault", func() { s.InjectFault(fakes.Fault{}) }, "fakes: InjectFault needs a Fault made by a constructor such as Throttle"},
		{"unknown action", func() { s.InjectFault(fakes.Throttle().OnlyFor("AssumeRoleWithSAML")) },
			"fakes: AWSSTS.InjectFault: unknown Action 'AssumeRoleWithSAML'"},
		{"no credentials from GetCallerIdentity", func() { s.InjectFault(fakes.EmptyCredentials().OnlyFor("GetCallerIdentity")) },
			`fakes: EmptyCredentials().OnlyFor("GetCallerIdentity") can never apply: GetCallerIdentity returns no credentials`},
		{"agent path", func() { agent.InjectFault(fakes.Hang().OnlyFor("/v2/credentials")) },
			"fakes: PodIdentityAgent.InjectFault: unknown operation '/v2/credentials': the agent serves /v1/credentials"},
		{"metadata path", func() { m.InjectFault(fakes.Hang().OnlyFor("instance/service-accounts/default/token")) },
			`fakes: GCPMetadata.InjectFault: unknown operation 'instance/service-accounts/default/token': want "/" or a path under /computeMetadata/v1/`},
		{"no credentials from project-id", func() { m.InjectFault(fakes.MalformedBody().OnlyFor("/computeMetadata/v1/project/project-id")) },
			`fakes: MalformedBody().OnlyFor("/computeMetadata/v1/project/project-id") can never apply: only token paths return credentials`},
		{"google sts path", func() { f.sts.InjectFault(fakes.Throttle().OnlyFor("token")) },
			`fakes: GCPSTS.InjectFault: unknown operation 'token': want "/v1/token" or "/v1/introspect"`},
		{"no credentials from introspect", func() { f.sts.InjectFault(fakes.ClockSkew(time.Hour).OnlyFor("/v1/introspect")) },
			`fakes: ClockSkew(1h0m0s).OnlyFor("/v1/introspect") can never apply: /v1/introspect returns no credentials`},
		{"iam path", func() { iam.InjectFault(fakes.Throttle().OnlyFor("generateAccessToken")) },
			"fakes: GCPIAMCredentials.InjectFault: unknown operation 'generateAccessToken': want /v1/projects/-/serviceAccounts/<email>:generateAccessToken"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			NewWithT(t).Expect(tt.do).To(PanicWith(tt.want))
		})
	}
}

// TestFaults_OnlyFor narrows STS faults to one action, and shows that faults
// that need credentials pass other actions by without a hit.
func TestFaults_OnlyFor(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := faultContext(t)
	s := awsStartSTS(t, fakes.AWSSTSOptions{Issuer: awsSharedIssuer()})
	s.AllowWebIdentity(awsTestRole, awsTestNamespace, awsTestSA)
	s.AllowAssumeRole(awsTestRole, awsTestTenantRole)
	signed := awsSTSClient(s, awsStatic(s.IssueCredentials(awsTestRole)))
	throttle := s.InjectFault(fakes.Throttle().OnlyFor("AssumeRole"))
	empty := s.InjectFault(fakes.EmptyCredentials())

	_, err := signed.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(empty.Hits()).To(Equal(0), "GetCallerIdentity returns no credentials to empty")

	_, err = signed.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(awsTestTenantRole), RoleSessionName: aws.String(awsTestSession)})
	g.Expect(awsErrorCode(err)).To(Equal("Throttling"))

	out, err := awsSTSClient(s, nil).AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(awsTestRole),
		RoleSessionName:  aws.String(awsTestSession),
		WebIdentityToken: aws.String(awsSign(t, awsSharedIssuer(), awsTestNamespace, awsTestSA, "sts.amazonaws.com")),
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(aws.ToString(out.Credentials.AccessKeyId)).To(BeEmpty())
	g.Expect(out.Credentials.Expiration).NotTo(BeNil())

	g.Expect(throttle.Hits()).To(Equal(1))
	g.Expect(empty.Hits()).To(Equal(1))
	g.Expect(s.Attempts()).To(Equal(3))
	// The throttled call was answered in place of STS and is not recorded.
	g.Expect(s.Count("AssumeRole")).To(Equal(0))
	g.Expect(s.Count("AssumeRoleWithWebIdentity")).To(Equal(1))
}

// TestFaults_PassByRequestsWithoutCredentials checks, on the Google fakes,
// that bad successes leave requests that return no credentials alone while
// failures apply to them.
func TestFaults_PassByRequestsWithoutCredentials(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := faultContext(t)
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	m := gcpStartMetadata(t, iam)
	client := faultHTTPClient(t)
	get := func(path string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+path, nil)
		g.Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Metadata-Flavor", "Google")
		resp, err := client.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	malformed := m.InjectFault(fakes.MalformedBody())
	g.Expect(get("/computeMetadata/v1/project/project-id")).To(Equal(http.StatusOK))
	g.Expect(malformed.Hits()).To(Equal(0))

	unavailable := m.InjectFault(fakes.ServerError(http.StatusServiceUnavailable).OnlyFor("/computeMetadata/v1/project/project-id"))
	g.Expect(get("/computeMetadata/v1/project/project-id")).To(Equal(http.StatusServiceUnavailable))
	g.Expect(get("/computeMetadata/v1/instance/attributes/cluster-name")).To(Equal(http.StatusOK))
	g.Expect(unavailable.Hits()).To(Equal(1))
	g.Expect(m.Attempts()).To(Equal(3))
	g.Expect(m.Requests("project/project-id")).To(BeEquivalentTo(2))
}

func TestInjectedFault_WaitHits(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	fault := s.InjectFault(fakes.Throttle())
	g.Expect(fault.WaitHits(t.Context(), 0)).To(Succeed())

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	g.Expect(fault.WaitHits(ctx, 1)).To(MatchError(context.Canceled))

	// Remove twice, and after use, does nothing.
	fault.Remove()
	fault.Remove()
	g.Expect(fault.Hits()).To(Equal(0))
}
