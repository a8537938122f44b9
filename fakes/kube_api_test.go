package fakes_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/identitychain/auth/fakes"
)

// kubeHTTPClient trusts api's CA, and nothing else.
func kubeHTTPClient(t *testing.T, api *fakes.KubeAPIServer) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(api.CAData) {
		t.Fatal("CAData holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestKubeAPIServer_Protocol sends raw requests to check what the API
// server reads and writes, as the kube-apiserver would: its content
// negotiation, its routes and its Status documents.
func TestKubeAPIServer_Protocol(t *testing.T) {
	t.Parallel()
	const review = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
	for _, tt := range []struct {
		name            string
		method, path    string
		contentType     string
		accept          string
		body            string
		noToken         bool
		wantCode        int
		wantContentType string
		wantBody        string // a substring
		wantReason      metav1.StatusReason
	}{
		{
			name:   "JSON",
			method: http.MethodPost, path: review, contentType: "application/json", accept: "application/json",
			body:     `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`,
			wantCode: http.StatusCreated, wantContentType: "application/json",
			wantBody: `"username":"` + eksTestSession + `"`,
		},
		{
			name:   "JSON without kind, any answer",
			method: http.MethodPost, path: review, contentType: "application/json; charset=utf-8", accept: "*/*",
			body:     `{}`,
			wantCode: http.StatusCreated, wantContentType: "application/json",
			wantBody: `"kind":"SelfSubjectReview"`,
		},
		{
			name:   "YAML",
			method: http.MethodPost, path: review, contentType: "application/yaml", accept: "application/yaml",
			body:     "apiVersion: authentication.k8s.io/v1\nkind: SelfSubjectReview\n",
			wantCode: http.StatusCreated, wantContentType: "application/yaml",
			wantBody: "username: " + eksTestSession,
		},
		{
			name:   "unknown content type",
			method: http.MethodPost, path: review, contentType: "text/plain", body: "who am I",
			wantCode: http.StatusUnsupportedMediaType, wantReason: metav1.StatusReasonUnsupportedMediaType,
		},
		{
			name:   "unacceptable answer",
			method: http.MethodPost, path: review, contentType: "application/json", accept: "text/html",
			body:     `{}`,
			wantCode: http.StatusNotAcceptable, wantReason: metav1.StatusReasonNotAcceptable,
		},
		{
			name:   "another kind",
			method: http.MethodPost, path: review, contentType: "application/json",
			body:     `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview"}`,
			wantCode: http.StatusBadRequest, wantReason: metav1.StatusReasonBadRequest,
		},
		{
			name:   "get",
			method: http.MethodGet, path: review,
			wantCode: http.StatusMethodNotAllowed, wantReason: metav1.StatusReasonMethodNotAllowed,
		},
		{
			name:   "another API",
			method: http.MethodGet, path: "/api/v1/namespaces",
			wantCode: http.StatusNotFound, wantReason: metav1.StatusReasonNotFound,
		},
		{
			name:   "no token",
			method: http.MethodPost, path: review, contentType: "application/json", body: `{}`, noToken: true,
			wantCode: http.StatusUnauthorized, wantReason: metav1.StatusReasonUnauthorized,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := eksStart(t)
			req, err := http.NewRequest(tt.method, w.api.URL+tt.path, strings.NewReader(tt.body))
			g.Expect(err).NotTo(HaveOccurred())
			if !tt.noToken {
				req.Header.Set("Authorization", "Bearer "+w.token(t, awsTestRole, eksTestClusterName))
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}

			resp, err := kubeHTTPClient(t, w.api).Do(req)
			g.Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(resp.StatusCode).To(Equal(tt.wantCode), string(body))
			if tt.wantReason == "" {
				g.Expect(resp.Header.Get("Content-Type")).To(Equal(tt.wantContentType))
				g.Expect(string(body)).To(ContainSubstring(tt.wantBody))
			} else {
				var status metav1.Status
				g.Expect(json.Unmarshal(body, &status)).To(Succeed())
				g.Expect(status.Kind).To(Equal("Status"))
				g.Expect(status.Status).To(Equal(metav1.StatusFailure))
				g.Expect(status.Reason).To(Equal(tt.wantReason))
				g.Expect(status.Code).To(Equal(int32(tt.wantCode)))
			}
			requests := w.api.Requests()
			g.Expect(requests).To(HaveLen(1))
			g.Expect(requests[0].Code).To(Equal(tt.wantCode))
			g.Expect(requests[0].Path).To(Equal(tt.path))
		})
	}
}
