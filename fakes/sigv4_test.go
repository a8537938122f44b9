package fakes_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	signerv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

// awsRawErrorResponse is the STS Query-protocol error document.
type awsRawErrorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

// TestSTS_SigV4Raw signs requests by hand, then alters them the ways an
// attacker or a buggy client would, which the SDK client never does.
func TestSTS_SigV4Raw(t *testing.T) {
	t.Parallel()
	const form = "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A210987654321%3Arole%2Ftenants%2Ftenant-a&RoleSessionName=raw&Version=2011-06-15"

	for _, tt := range []struct {
		name       string
		service    string
		region     string
		afterSign  func(r *http.Request)
		body       string // sent instead of form, after signing form
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{
			name:       "intact",
			wantStatus: http.StatusOK,
		},
		{
			name:       "body altered after signing",
			body:       strings.Replace(form, "tenant-a", "tenant-b", 1),
			wantStatus: http.StatusForbidden,
			wantCode:   "SignatureDoesNotMatch",
		},
		{
			name: "signed header altered",
			afterSign: func(r *http.Request) {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
			},
			wantStatus: http.StatusForbidden,
			wantCode:   "SignatureDoesNotMatch",
		},
		{
			name:       "unsigned header added",
			afterSign:  func(r *http.Request) { r.Header.Set("X-Unsigned", "ignored") },
			wantStatus: http.StatusOK,
		},
		{
			name:       "signed for another service",
			service:    "iam",
			wantStatus: http.StatusForbidden,
			wantCode:   "SignatureDoesNotMatch",
			wantMsg:    "Credential should be scoped to correct service: 'sts'.",
		},
		{
			name:       "signed for an invalid region",
			region:     "moon",
			wantStatus: http.StatusForbidden,
			wantCode:   "SignatureDoesNotMatch",
			wantMsg:    "Credential should be scoped to a valid region.",
		},
		{
			name: "date differs from scope",
			afterSign: func(r *http.Request) {
				r.Header.Set("X-Amz-Date", time.Now().UTC().Add(48*time.Hour).Format("20060102T150405Z"))
			},
			wantStatus: http.StatusForbidden,
			wantCode:   "SignatureDoesNotMatch",
		},
		{
			name:       "missing date",
			afterSign:  func(r *http.Request) { r.Header.Del("X-Amz-Date") },
			wantStatus: http.StatusBadRequest,
			wantCode:   "IncompleteSignature",
		},
		{
			name: "other algorithm",
			afterSign: func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1))
			},
			wantStatus: http.StatusBadRequest,
			wantCode:   "IncompleteSignature",
		},
		{
			name: "signature missing",
			afterSign: func(r *http.Request) {
				a := r.Header.Get("Authorization")
				r.Header.Set("Authorization", a[:strings.Index(a, ", Signature=")])
			},
			wantStatus: http.StatusBadRequest,
			wantCode:   "IncompleteSignature",
			wantMsg:    "Authorization header requires 'Signature' parameter.",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			s := awsStartSTS(t, fakes.AWSSTSOptions{})
			s.AllowAssumeRole(awsTestRole, awsTestTenantRole)
			creds := s.IssueCredentials(awsTestRole)

			req, err := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader(form))
			g.Expect(err).NotTo(HaveOccurred())
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			sum := sha256.Sum256([]byte(form))
			service, region := "sts", awsTestRegion
			if tt.service != "" {
				service = tt.service
			}
			if tt.region != "" {
				region = tt.region
			}
			err = signerv4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, region, time.Now())
			g.Expect(err).NotTo(HaveOccurred())
			if tt.body != "" {
				req.Body = io.NopCloser(strings.NewReader(tt.body))
				req.ContentLength = int64(len(tt.body))
			}
			if tt.afterSign != nil {
				tt.afterSign(req)
			}

			resp, err := http.DefaultClient.Do(req)
			g.Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			g.Expect(err).NotTo(HaveOccurred())

			g.Expect(resp.StatusCode).To(Equal(tt.wantStatus), string(body))
			g.Expect(resp.Header.Get("Content-Type")).To(Equal("text/xml"))
			g.Expect(string(body)).NotTo(ContainSubstring(creds.SecretAccessKey))
			if tt.wantCode == "" {
				g.Expect(string(body)).To(ContainSubstring(`<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><AssumedRoleUser>`))
				return
			}
			var e awsRawErrorResponse
			g.Expect(xml.Unmarshal(body, &e)).To(Succeed())
			g.Expect(e.Type).To(Equal("Sender"))
			g.Expect(e.Code).To(Equal(tt.wantCode))
			g.Expect(e.RequestID).To(MatchRegexp(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`))
			g.Expect(resp.Header.Get("X-Amzn-Requestid")).To(Equal(e.RequestID))
			if tt.wantMsg != "" {
				g.Expect(e.Message).To(Equal(tt.wantMsg))
			}
			g.Expect(s.Calls()[0].Err).To(Equal(tt.wantCode))
		})
	}
}

func TestSTS_QueryProtocolErrors(t *testing.T) {
	t.Parallel()
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	for _, tt := range []struct {
		name     string
		form     url.Values
		wantCode string
	}{
		{name: "missing action", form: url.Values{"Version": {"2011-06-15"}}, wantCode: "MissingAction"},
		{name: "unknown action", form: url.Values{"Action": {"GetSessionToken"}, "Version": {"2011-06-15"}}, wantCode: "InvalidAction"},
		{name: "wrong version", form: url.Values{"Action": {"AssumeRole"}, "Version": {"2010-01-01"}}, wantCode: "InvalidAction"},
		{name: "web identity without token", form: url.Values{
			"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
			"RoleArn": {awsTestRole}, "RoleSessionName": {"s1"},
		}, wantCode: "ValidationError"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			resp, err := http.PostForm(s.URL, tt.form)
			g.Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			g.Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
			var e awsRawErrorResponse
			g.Expect(xml.NewDecoder(resp.Body).Decode(&e)).To(Succeed())
			g.Expect(e.Code).To(Equal(tt.wantCode))
		})
	}
}
