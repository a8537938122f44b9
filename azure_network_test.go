package auth_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/fakes"
)

// tunnelingProxy is an HTTPS proxy (CONNECT) that counts the tunnels it
// opens to host, and refuses every other host.
func tunnelingProxy(t *testing.T, host string) (*url.URL, *atomic.Int64) {
	t.Helper()
	var tunnels atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Host != host {
			http.Error(rw, "only CONNECT to "+host, http.StatusForbidden)
			return
		}
		upstream, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		tunnels.Add(1)
		conn, buf, err := rw.(http.Hijacker).Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		_, _ = conn.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n"))
		done := make(chan struct{})
		go func() {
			_, _ = io.Copy(upstream, buf)
			upstream.Close()
			close(done)
		}()
		_, _ = io.Copy(conn, upstream)
		conn.Close()
		<-done
	}))
	t.Cleanup(proxy.Close)
	u, _ := url.Parse(proxy.URL)
	return u, &tunnels
}

// Both hops, the controller's managed identity and the app's token, reach
// Entra through the object's proxy, as a controller behind one does.
func TestAzureFICThroughProxy(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := newFICWorld(t)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "azure-impersonate.yaml"))
	entraURL, _ := url.Parse(w.entra.URL)
	proxyURL, tunnels := tunnelingProxy(t, entraURL.Host)

	_, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube,
		auth.WithScopes(azARMScope), auth.WithProxyURL(*proxyURL))...)

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(w.entra.Calls()).To(HaveLen(2))
	g.Expect(tunnels.Load()).To(BeNumerically(">=", 2), "each hop's client goes through the proxy")
}
