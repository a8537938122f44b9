package auth_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

// countingProxy forwards plain-HTTP proxy requests and counts those for host.
func countingProxy(t *testing.T, host string) (*url.URL, *atomic.Int64) {
	var n atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Host == host {
			n.Add(1)
		}
		r.RequestURI = ""
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			rw.Header()[k] = v
		}
		rw.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(rw, resp.Body)
	}))
	t.Cleanup(proxy.Close)
	u, _ := url.Parse(proxy.URL)
	return u, &n
}

func TestGCPImpersonateThroughProxy(t *testing.T) {
	g := NewWithT(t)
	w := newGCPWorld(t)
	w.iam.AllowImpersonation(controllerGSA, targetGSA)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "gcp-controller-wif.yaml"))
	iamURL, _ := url.Parse(w.iam.URL)
	proxyURL, proxied := countingProxy(t, iamURL.Host)

	_, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube, auth.WithProxyURL(*proxyURL))...)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(proxied.Load()).To(Equal(int64(1)), "generateAccessToken must go through the proxy")
}

func TestGCPImpersonateHonoursContext(t *testing.T) {
	g := NewWithT(t)
	w := newGCPWorld(t)
	slow := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{Latency: time.Minute})
	t.Cleanup(slow.Close)
	w.iam.AllowImpersonation(controllerGSA, targetGSA)
	provider := gcp.Provider{Implementation: fakes.NewGCPImplementation(w.sts, slow)}
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "gcp-controller-wif.yaml"))

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := auth.GetAccessToken(ctx, provider, myAppOptions(kube)...)
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
}
