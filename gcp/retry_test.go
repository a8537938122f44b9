package gcp_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

func writeUnavailable(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]any{
		"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE",
	}})
}

// closeConn ends the connection without an answer: EOF for the client, or
// with reset, a TCP reset.
func closeConn(reset bool) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		if reset {
			_ = conn.(*net.TCPConn).SetLinger(0)
		}
		_ = conn.Close()
	}
}

// failFirst answers the first n requests with fail, the rest with the fake.
func failFirst(n int64, fail func(http.ResponseWriter, *http.Request)) replyFunc {
	return func(i int64, w http.ResponseWriter, r *http.Request) bool {
		if i > n {
			return false
		}
		fail(w, r)
		return true
	}
}

func TestImpersonateRetries(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name         string
		reply        replyFunc
		wantRequests int64
		wantErr      string
	}{
		{name: "503 twice", reply: failFirst(2, writeUnavailable), wantRequests: 3},
		{name: "connection closed twice", reply: failFirst(2, closeConn(false)), wantRequests: 3},
		{name: "connection reset twice", reply: failFirst(2, closeConn(true)), wantRequests: 3},
		{
			name: "503 for ever", reply: failFirst(100, writeUnavailable), wantRequests: 4,
			wantErr: "iamcredentials generateAccessToken for '" + targetGSA + "': HTTP 503: " +
				"The service is currently unavailable",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			f := startFrontedIAM(t, tt.reply)

			token, err := f.impersonate(context.Background(), targetGSA)

			g.Expect(f.requests.Load()).To(Equal(tt.wantRequests))
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				g.Expect(token).To(BeNil())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(gcp.Provider{}.ValidateToken(token, time.Now())).To(Succeed())
			g.Expect(f.iam.Count()).To(Equal(1))
		})
	}
}

func TestImpersonateRetriesStopBeforeTheDeadline(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	f := startFrontedIAM(t, failFirst(100, writeUnavailable))
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()

	token, err := f.impersonate(ctx, targetGSA)

	// The first wait (under 500ms) fits in the deadline, the second (500ms
	// or more) does not: the caller gets the last answer instead of waiting.
	g.Expect(token).To(BeNil())
	g.Expect(err).To(MatchError("iamcredentials generateAccessToken for '" + targetGSA + "': HTTP 503: " +
		"The service is currently unavailable"))
	g.Expect(f.requests.Load()).To(Equal(int64(2)))
	g.Expect(ctx.Err()).NotTo(HaveOccurred())
}

// The Google STS exchange runs inside upstream's provider; the retries reach
// it through the HTTP client it takes from the context, with the fakes'
// implementation as with the real one. The failures come from a proxy in
// front of the fakes.
func TestNewTokenForServiceAccountRetriesGoogleSTS(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
	g.Expect(err).NotTo(HaveOccurred())
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	sts := fakes.StartGCPSTS(fakes.GCPSTSOptions{Issuer: issuer, IAM: iam})
	t.Cleanup(sts.Close)
	const wip = "projects/123456789012/locations/global/workloadIdentityPools/pool/providers/prov"
	const audience = "//iam.googleapis.com/" + wip
	sts.AllowAudience(audience)
	stsURL, _ := url.Parse(sts.URL)

	var toSTS atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Host == stsURL.Host && toSTS.Add(1) <= 2 {
			writeUnavailable(w, r)
			return
		}
		r.RequestURI = ""
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(proxy.Close)
	proxyURL, _ := url.Parse(proxy.URL)

	sa := serviceAccount(map[string]string{gcp.WorkloadIdentityProviderAnnotation: wip})
	oidc, err := issuer.Sign(sa.Namespace, sa.Name, []string{audience}, time.Hour)
	g.Expect(err).NotTo(HaveOccurred())
	provider := gcp.Provider{Implementation: fakes.NewGCPImplementation(sts, iam)}

	token, err := provider.NewTokenForServiceAccount(context.Background(), oidc, sa, fluxauth.WithProxyURL(*proxyURL))

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(provider.ValidateToken(token, time.Now())).To(Succeed())
	g.Expect(toSTS.Load()).To(Equal(int64(3)))
	g.Expect(sts.Exchanges()).To(Equal(int64(1)))
}
