package fakes_test

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	signerv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

// awsEKSPresigner adds the cluster name header, as upstream's EKS token
// presigner does, so the header is part of the signature.
type awsEKSPresigner struct {
	sts.HTTPPresignerV4
	cluster string
}

func (p awsEKSPresigner) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request,
	payloadHash, service, region string, t time.Time, optFns ...func(*signerv4.SignerOptions)) (string, http.Header, error) {
	r.Header.Add("x-k8s-aws-id", p.cluster)
	r.Header.Add("X-Amz-Expires", "900")
	return p.HTTPPresignerV4.PresignHTTP(ctx, creds, r, payloadHash, service, region, t, optFns...)
}

// awsPresignCallerIdentity presigns GetCallerIdentity for cluster with the
// real SDK, as an EKS token does.
func awsPresignCallerIdentity(t *testing.T, s *fakes.AWSSTS, creds aws.Credentials, cluster string) string {
	t.Helper()
	p, err := s.Implementation().PresignGetCallerIdentity(context.Background(),
		func(o *sts.PresignOptions) { o.Presigner = awsEKSPresigner{o.Presigner, cluster} },
		sts.Options{Region: awsTestRegion, Credentials: awsStatic(creds)})
	if err != nil {
		t.Fatalf("failed to presign: %v", err)
	}
	return p.URL
}

// TestSTS_PresignedGetCallerIdentity calls presigned URLs the way an EKS
// API server's authenticator does, with the cluster name header, and
// alters them the ways a stolen or forged token would be.
func TestSTS_PresignedGetCallerIdentity(t *testing.T) {
	t.Parallel()
	const cluster = "prod"
	editQuery := func(edit func(q url.Values)) func(u *url.URL, h http.Header) {
		return func(u *url.URL, _ http.Header) {
			q := u.Query()
			edit(q)
			u.RawQuery = q.Encode()
		}
	}
	for _, tt := range []struct {
		name     string
		edit     func(u *url.URL, h http.Header)
		wantCode string
		wantMsg  string
	}{
		{name: "intact"},
		{
			name:     "for another cluster",
			edit:     func(_ *url.URL, h http.Header) { h.Set("x-k8s-aws-id", "staging") },
			wantCode: "SignatureDoesNotMatch",
		},
		{
			name:     "without the cluster header",
			edit:     func(_ *url.URL, h http.Header) { h.Del("x-k8s-aws-id") },
			wantCode: "SignatureDoesNotMatch",
		},
		{
			name:     "expiry lengthened",
			edit:     editQuery(func(q url.Values) { q.Set("X-Amz-Expires", "604800") }),
			wantCode: "SignatureDoesNotMatch",
		},
		{
			name:     "signed headers narrowed",
			edit:     editQuery(func(q url.Values) { q.Set("X-Amz-SignedHeaders", "host") }),
			wantCode: "SignatureDoesNotMatch",
		},
		{
			name:     "session token of other credentials",
			edit:     editQuery(func(q url.Values) { q.Set("X-Amz-Security-Token", "forged") }),
			wantCode: "InvalidClientTokenId",
			wantMsg:  "The security token included in the request is invalid.",
		},
		{
			name: "signed for another service",
			edit: editQuery(func(q url.Values) {
				q.Set("X-Amz-Credential", strings.Replace(q.Get("X-Amz-Credential"), "/sts/", "/eks/", 1))
			}),
			wantCode: "SignatureDoesNotMatch",
			wantMsg:  "Credential should be scoped to correct service: 'sts'.",
		},
		{
			name:     "signature missing",
			edit:     editQuery(func(q url.Values) { q.Del("X-Amz-Signature") }),
			wantCode: "IncompleteSignature",
			wantMsg:  "AWS query-string parameters must include 'X-Amz-Signature'.",
		},
		{
			name:     "other algorithm",
			edit:     editQuery(func(q url.Values) { q.Set("X-Amz-Algorithm", "AWS4-ECDSA-P256-SHA256") }),
			wantCode: "IncompleteSignature",
			wantMsg:  "X-Amz-Algorithm only supports 'AWS4-HMAC-SHA256'.",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			s := awsStartSTS(t, fakes.AWSSTSOptions{})
			creds := s.IssueCredentials(awsTestRole)
			u, err := url.Parse(awsPresignCallerIdentity(t, s, creds, cluster))
			g.Expect(err).NotTo(HaveOccurred())
			header := http.Header{}
			header.Set("x-k8s-aws-id", cluster)
			if tt.edit != nil {
				tt.edit(u, header)
			}

			req, err := http.NewRequest(http.MethodGet, u.String(), nil)
			g.Expect(err).NotTo(HaveOccurred())
			req.Header = header
			resp, err := http.DefaultClient.Do(req)
			g.Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(string(body)).NotTo(ContainSubstring(creds.SecretAccessKey))

			calls := s.Calls()
			g.Expect(calls).To(HaveLen(1))
			g.Expect(calls[0].Action).To(Equal("GetCallerIdentity"))
			g.Expect(calls[0].Err).To(Equal(tt.wantCode))
			if tt.wantCode == "" {
				g.Expect(resp.StatusCode).To(Equal(http.StatusOK), string(body))
				g.Expect(string(body)).To(ContainSubstring("<Arn>arn:aws:sts::123456789012:assumed-role/controller/fakes-issued</Arn>"))
				g.Expect(calls[0].Caller).To(Equal(awsTestRole))
				g.Expect(calls[0].Region).To(Equal(awsTestRegion))
				return
			}
			var e awsRawErrorResponse
			g.Expect(xml.Unmarshal(body, &e)).To(Succeed())
			g.Expect(e.Code).To(Equal(tt.wantCode))
			if tt.wantMsg != "" {
				g.Expect(e.Message).To(Equal(tt.wantMsg))
			}
		})
	}
}
