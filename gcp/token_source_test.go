package gcp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"
	"golang.org/x/oauth2"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

// The adapter on the controller's own identity, which needs no
// ServiceAccount and so no feature gate: impersonation through it is
// tested end to end in the root package (adapters_e2e_test.go).

const controllerGSA = "flux-controller@flux-project.iam.gserviceaccount.com"

// controllerTokens is the fakes' seam with the controller's token minted by
// the fake IAM Credentials, as the GKE metadata server would hand it out,
// without touching the process environment. It counts the tokens it gives.
type controllerTokens struct {
	*fakes.GCPImplementation
	iam    *fakes.GCPIAMCredentials
	err    error
	tokens atomic.Int64
}

func newControllerTokens(t *testing.T, err error) *controllerTokens {
	t.Helper()
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	return &controllerTokens{GCPImplementation: fakes.NewGCPImplementation(nil, iam), iam: iam, err: err}
}

func (c *controllerTokens) DefaultTokenSource(context.Context, ...string) (oauth2.TokenSource, error) {
	if c.err != nil {
		return nil, c.err
	}
	return tokenSourceFunc(func() (*oauth2.Token, error) {
		c.tokens.Add(1)
		access, expiry := c.iam.IssueToken(controllerGSA)
		return &oauth2.Token{AccessToken: access, TokenType: "Bearer", Expiry: expiry}, nil
	}), nil
}

type tokenSourceFunc func() (*oauth2.Token, error)

func (f tokenSourceFunc) Token() (*oauth2.Token, error) { return f() }

// startGoogleAPI is a Google API that answers each request with the
// principal its bearer token belongs to, as the fake IAM Credentials knows
// it, and refuses unknown tokens as Google does.
func startGoogleAPI(t *testing.T, iam *fakes.GCPIAMCredentials) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, ok := iam.WhoAmI(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if !ok {
			http.Error(w, "Request had invalid authentication credentials.", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, who)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(client *http.Client, url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status)
	}
	return string(body), err
}

// An HTTP client authorizes its requests with what the chain returns,
// asking the chain on every request unless a cache sits in front: the
// oauth2.ReuseTokenSource of oauth2.NewClient (as Google's clients add) or
// our TokenCache.
func TestTokenSourceAuthorizesRequests(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		tokenCache bool
		reuse      bool
		wantTokens int64
	}{
		{name: "no cache: every request asks the chain", wantTokens: 3},
		{name: "auth.WithTokenCache", tokenCache: true, wantTokens: 1},
		{name: "oauth2.NewClient reuses the token", reuse: true, wantTokens: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			impl := newControllerTokens(t, nil)
			api := startGoogleAPI(t, impl.iam)
			var opts []auth.Option
			if tt.tokenCache {
				tc, err := auth.NewTokenCache(10)
				g.Expect(err).NotTo(HaveOccurred())
				opts = append(opts, auth.WithTokenCache(tc, cache.InvolvedObject{}))
			}
			ts := gcp.Provider{Implementation: impl}.NewTokenSource(context.Background(), opts...)
			client := &http.Client{Transport: &oauth2.Transport{Source: ts}}
			if tt.reuse {
				client = oauth2.NewClient(context.Background(), ts)
			}

			for range 3 {
				who, err := get(client, api.URL+"/storage/v1/b/bucket")
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(who).To(Equal(controllerGSA))
			}
			g.Expect(impl.tokens.Load()).To(Equal(tt.wantTokens))
		})
	}
}

// Upstream hands out a pointer into the token it got; with a TokenCache
// that is the token every caller shares, so ours hands out a copy.
func TestTokenSourceTokensAreCopies(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	impl := newControllerTokens(t, nil)
	tc, err := auth.NewTokenCache(10)
	g.Expect(err).NotTo(HaveOccurred())
	ts := gcp.Provider{Implementation: impl}.NewTokenSource(context.Background(), auth.WithTokenCache(tc, cache.InvolvedObject{}))

	first, err := ts.Token()
	g.Expect(err).NotTo(HaveOccurred())
	issued := *first
	first.AccessToken = "changed by the caller"
	first.Expiry = first.Expiry.Add(-1)

	second, err := ts.Token()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(impl.tokens.Load()).To(Equal(int64(1)), "served from the cache")
	g.Expect(second.AccessToken).To(Equal(issued.AccessToken))
	g.Expect(second.Expiry).To(Equal(issued.Expiry))
	g.Expect(second).NotTo(BeIdenticalTo(first))
}

// The chain's errors reach the caller unchanged, and through an HTTP
// client still match with errors.Is.
func TestTokenSourceErrors(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	errNoMetadata := errors.New("no GKE metadata server")
	impl := newControllerTokens(t, errNoMetadata)
	api := startGoogleAPI(t, impl.iam)
	ts := gcp.Provider{Implementation: impl}.NewTokenSource(context.Background())

	_, err := ts.Token()
	g.Expect(err).To(MatchError("failed to get gcp source credentials of the controller identity: no GKE metadata server"))
	g.Expect(err).To(MatchError(errNoMetadata))

	_, err = get(&http.Client{Transport: &oauth2.Transport{Source: ts}}, api.URL)
	g.Expect(err).To(MatchError(errNoMetadata))
}

// The options are the caller's at the time of the call: reusing the slice
// afterwards changes nothing.
func TestTokenSourceCopiesOptions(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	impl := newControllerTokens(t, nil)
	opts := []auth.Option{auth.WithServiceAccountNamespace("team-a"), auth.WithScopes("https://www.googleapis.com/auth/cloud-platform")}
	ts := gcp.Provider{Implementation: impl}.NewTokenSource(context.Background(), opts...)
	opts[1] = auth.WithServiceAccountName("app") // would make the ServiceAccount the source

	_, err := ts.Token()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(impl.tokens.Load()).To(Equal(int64(1)))
}
