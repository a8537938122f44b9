package aws_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

const (
	region     = "us-east-1"
	sourceRole = "arn:aws:iam::111111111111:role/source"
	targetRole = "arn:aws:iam::222222222222:role/target"
)

// stsAt is the fakes' SDK seam with AssumeRole sent to url instead: the
// real SDK client, so signing, retries and XML parsing are the SDK's.
type stsAt struct {
	*fakes.AWSImplementation
	url string
}

func (s stsAt) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, o sts.Options) (*sts.AssumeRoleOutput, error) {
	return sts.New(o, func(o *sts.Options) { o.BaseEndpoint = &s.url }).AssumeRole(ctx, in)
}

// frontedSTS is a fake STS behind a handler that answers the first requests
// itself: reply(n) for request n (from 1) writes a reply and returns true,
// or returns false to let the fake STS answer.
type frontedSTS struct {
	sts      *fakes.AWSSTS
	provider aws.Provider
	source   *aws.Credentials
	requests atomic.Int64
}

func startFrontedSTS(t *testing.T, reply func(n int64, w http.ResponseWriter) bool) *frontedSTS {
	t.Helper()
	issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	s := fakes.StartAWSSTS(fakes.AWSSTSOptions{Issuer: issuer})
	t.Cleanup(s.Close)
	s.AllowAssumeRole(sourceRole, targetRole)
	target, _ := url.Parse(s.URL)
	// Keep the Host header: it is part of what SigV4 signs.
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host
	}}
	f := &frontedSTS{sts: s}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !reply(f.requests.Add(1), w) {
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(front.Close)
	f.provider = aws.Provider{Implementation: stsAt{AWSImplementation: s.Implementation(), url: front.URL}}
	c := s.IssueCredentials(sourceRole)
	f.source = &aws.Credentials{Credentials: types.Credentials{
		AccessKeyId: &c.AccessKeyID, SecretAccessKey: &c.SecretAccessKey, SessionToken: &c.SessionToken, Expiration: &c.Expires,
	}}
	return f
}

func (f *frontedSTS) impersonate(ctx context.Context) (fluxauth.Token, error) {
	return f.provider.Impersonate(ctx, f.source, auth.Impersonation{
		Annotation:     aws.AssumeRoleAnnotation,
		ServiceAccount: client.ObjectKey{Namespace: "team-a", Name: "app"},
		Target:         targetRole,
	}, fluxauth.WithSTSRegion(region))
}

// writeAssumeRole writes an AssumeRole success whose Credentials element
// holds the given child elements, in order; nil means no Credentials at all.
func writeAssumeRole(w http.ResponseWriter, fields [][2]string) {
	var creds string
	if fields != nil {
		var b strings.Builder
		for _, f := range fields {
			fmt.Fprintf(&b, "<%s>%s</%[1]s>", f[0], f[1])
		}
		creds = "<Credentials>" + b.String() + "</Credentials>"
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>`+
		`<AssumedRoleUser><Arn>arn:aws:sts::222222222222:assumed-role/target/s</Arn><AssumedRoleId>AROAX:s</AssumedRoleId></AssumedRoleUser>`+
		`%s</AssumeRoleResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></AssumeRoleResponse>`, creds)
}

func writeSTSError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", "req-err")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Receiver</Type>`+
		`<Code>%s</Code><Message>try again</Message></Error><RequestId>req-err</RequestId></ErrorResponse>`, code)
}

func TestImpersonateRefusesBadSuccesses(t *testing.T) {
	t.Parallel()
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	// The SDK client refuses them (reply_guard.go), before Impersonate sees them.
	const prefix = "sts AssumeRole in region 'us-east-1': operation error STS: AssumeRole, " +
		"the reply holds invalid AWS credentials: "
	for _, tt := range []struct {
		name    string
		fields  [][2]string
		wantErr string // a regular expression when it starts with ^
	}{
		{
			name:    "no credentials",
			wantErr: prefix + "Credentials is missing",
		},
		{
			name:    "no expiration",
			fields:  [][2]string{{"AccessKeyId", "ASIAX"}, {"SecretAccessKey", "SECRET"}, {"SessionToken", "SECRETTOKEN"}},
			wantErr: prefix + "Expiration is missing",
		},
		{
			name: "zero expiration",
			fields: [][2]string{{"AccessKeyId", "ASIAX"}, {"SecretAccessKey", "SECRET"}, {"SessionToken", "SECRETTOKEN"},
				{"Expiration", "0001-01-01T00:00:00Z"}},
			wantErr: prefix + "Expiration is zero",
		},
		{
			name: "expired",
			fields: [][2]string{{"AccessKeyId", "ASIAX"}, {"SecretAccessKey", "SECRET"}, {"SessionToken", "SECRETTOKEN"},
				{"Expiration", "2001-01-01T00:00:00Z"}},
			wantErr: `^` + prefix + `Expiration 2001-01-01T00:00:00Z is not more than 1m0s after the current time ` +
				`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`,
		},
		{
			name:    "empty keys",
			fields:  [][2]string{{"AccessKeyId", ""}, {"SecretAccessKey", ""}, {"SessionToken", ""}, {"Expiration", future}},
			wantErr: prefix + "AccessKeyId is empty; SecretAccessKey is empty; SessionToken is empty",
		},
		{
			name:    "empty session token",
			fields:  [][2]string{{"AccessKeyId", "ASIAX"}, {"SecretAccessKey", "SECRET"}, {"Expiration", future}},
			wantErr: prefix + "SessionToken is empty",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			f := startFrontedSTS(t, func(_ int64, w http.ResponseWriter) bool {
				writeAssumeRole(w, tt.fields)
				return true
			})

			token, err := f.impersonate(context.Background())

			g.Expect(token).To(BeNil())
			if strings.HasPrefix(tt.wantErr, "^") {
				g.Expect(err).To(MatchError(MatchRegexp(tt.wantErr)))
			} else {
				g.Expect(err).To(MatchError(tt.wantErr))
			}
			g.Expect(errors.Is(err, aws.ErrInvalidCredentials)).To(BeTrue())
			g.Expect(err.Error()).NotTo(ContainSubstring("SECRET"))
			g.Expect(f.requests.Load()).To(Equal(int64(1)), "a bad success is not retried")
		})
	}
}

func TestImpersonateAcceptsAGoodReply(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	f := startFrontedSTS(t, func(int64, http.ResponseWriter) bool { return false })

	token, err := f.impersonate(context.Background())

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(aws.Provider{}.ValidateToken(token, time.Now())).To(Succeed())
	g.Expect(f.sts.Count("AssumeRole")).To(Equal(1))
}

// The SDK's standard retryer is what retries AssumeRole: 3 attempts in all,
// for throttling, 5xx and the like, and nothing else.
func TestImpersonateRetriesWithTheSDKRetryer(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name         string
		failures     int64
		status       int
		code         string
		wantRequests int64
		wantErr      string
	}{
		{name: "throttled twice", failures: 2, status: http.StatusBadRequest, code: "Throttling", wantRequests: 3},
		{name: "unavailable twice", failures: 2, status: http.StatusServiceUnavailable, code: "ServiceUnavailable", wantRequests: 3},
		{
			name: "unavailable thrice", failures: 3, status: http.StatusServiceUnavailable, code: "ServiceUnavailable",
			wantRequests: 3,
			wantErr: "sts AssumeRole in region 'us-east-1': operation error STS: AssumeRole, exceeded maximum number of " +
				"attempts, 3, https response error StatusCode: 503, RequestID: req-err, api error ServiceUnavailable: try again",
		},
		{
			name: "a refusal is not retried", failures: 1, status: http.StatusForbidden, code: "AccessDenied",
			wantRequests: 1,
			wantErr: "sts AssumeRole in region 'us-east-1': operation error STS: AssumeRole, https response error " +
				"StatusCode: 403, RequestID: req-err, api error AccessDenied: try again. the trust policy of '" + targetRole +
				"' must allow sts:AssumeRole by the source role, and the source role's policy must allow sts:AssumeRole on it",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			f := startFrontedSTS(t, func(n int64, w http.ResponseWriter) bool {
				if n > tt.failures {
					return false
				}
				writeSTSError(w, tt.status, tt.code)
				return true
			})

			token, err := f.impersonate(context.Background())

			g.Expect(f.requests.Load()).To(Equal(tt.wantRequests))
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				g.Expect(token).To(BeNil())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(aws.Provider{}.ValidateToken(token, time.Now())).To(Succeed())
		})
	}
}

func TestImpersonateRetriesStopAtTheDeadline(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	f := startFrontedSTS(t, func(_ int64, w http.ResponseWriter) bool {
		writeSTSError(w, http.StatusServiceUnavailable, "ServiceUnavailable")
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()

	token, err := f.impersonate(ctx)

	g.Expect(token).To(BeNil())
	g.Expect(err).To(MatchError(HavePrefix("sts AssumeRole in region 'us-east-1': operation error STS: AssumeRole, ")))
	// The SDK draws each backoff from [0, 2^attempt s): all three attempts
	// fit in 100ms once in thousands of runs, and then the deadline is moot.
	if f.requests.Load() < 3 {
		g.Expect(err).To(MatchError(context.DeadlineExceeded))
	}
}
