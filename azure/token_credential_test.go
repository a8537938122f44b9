package azure_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/azure"
)

// The adapter on the controller's own identity, which needs no
// ServiceAccount and so no feature gate: workload identity and the
// impersonation refusal through it are tested in the root package
// (adapters_e2e_test.go).

const (
	armScope   = "https://management.azure.com/.default"
	vaultScope = "https://vault.azure.net/.default"
)

// entra is the upstream SDK seam with the controller's default credential
// minting tokens that it remembers, with the scopes they were asked for.
type entra struct {
	azure.Implementation // the methods not overridden are not used

	err error

	mu     sync.Mutex
	tokens map[string]string // token -> "<credential> for <scopes>"; guarded by mu
	minted int               // guarded by mu
}

func newEntra(err error) *entra { return &entra{err: err, tokens: map[string]string{}} }

func (e *entra) NewDefaultAzureCredential(*azidentity.DefaultAzureCredentialOptions) (azcore.TokenCredential, error) {
	return e.credential("azure cli"), nil
}

func (e *entra) NewDefaultAzureCredentialWithoutShellOut(*azidentity.DefaultAzureCredentialOptions) (azcore.TokenCredential, error) {
	return e.credential("workload identity"), nil
}

func (e *entra) credential(name string) azcore.TokenCredential {
	return credentialFunc(func(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
		if e.err != nil {
			return azcore.AccessToken{}, e.err
		}
		token := rand.Text()
		e.mu.Lock()
		defer e.mu.Unlock()
		e.tokens[token] = name + " for " + strings.Join(o.Scopes, " ")
		e.minted++
		return azcore.AccessToken{Token: token, ExpiresOn: time.Now().Add(time.Hour)}, nil
	})
}

// whoIs says which credential minted token, for which scopes.
func (e *entra) whoIs(token string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	who, ok := e.tokens[token]
	return who, ok
}

func (e *entra) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.minted
}

type credentialFunc func(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error)

func (f credentialFunc) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return f(ctx, o)
}

// startAzureAPI is an Azure API on TLS (the SDK sends no credential over
// plain HTTP) that answers with whose bearer token it got.
func startAzureAPI(t *testing.T, e *entra) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, ok := e.whoIs(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, who)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// pipeline is a real azcore pipeline, as the Azure SDK clients build,
// authorized by cred for scope and sending to srv.
func pipeline(srv *httptest.Server, cred azcore.TokenCredential, scope string) runtime.Pipeline {
	return runtime.NewPipeline("identitychain-test", "v0.0.0", runtime.PipelineOptions{
		PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(cred, []string{scope}, nil)},
	}, &policy.ClientOptions{Transport: srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}})
}

// get sends a GET to url through pl and returns the body of a 200.
func get(ctx context.Context, pl runtime.Pipeline, url string) (string, error) {
	req, err := runtime.NewRequest(ctx, http.MethodGet, url)
	if err != nil {
		return "", err
	}
	resp, err := pl.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if !runtime.HasStatusCode(resp, http.StatusOK) {
		return "", runtime.NewResponseError(resp)
	}
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// An azcore pipeline authorizes its requests with a token the chain got for
// the scopes the pipeline asked for; WithAllowShellOut, for the Flux CLI,
// picks upstream's credential that may run the Azure CLI.
func TestTokenCredentialAuthorizesSDKRequests(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		opts    []auth.Option
		scope   string
		wantWho string
	}{
		{name: "controller", scope: armScope, wantWho: "workload identity for " + armScope},
		{name: "another scope", scope: vaultScope, wantWho: "workload identity for " + vaultScope},
		{name: "the pipeline's scopes win over WithScopes", opts: []auth.Option{auth.WithScopes(vaultScope)},
			scope: armScope, wantWho: "workload identity for " + armScope},
		{name: "WithAllowShellOut", opts: []auth.Option{auth.WithAllowShellOut()}, scope: armScope,
			wantWho: "azure cli for " + armScope},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			e := newEntra(nil)
			srv := startAzureAPI(t, e)
			pl := pipeline(srv, azure.Provider{Implementation: e}.NewTokenCredential(context.Background(), tt.opts...), tt.scope)

			for range 2 {
				who, err := get(context.Background(), pl, srv.URL+"/subscriptions")
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(who).To(Equal(tt.wantWho))
			}
			g.Expect(e.count()).To(Equal(1), "the SDK's bearer token policy reuses the token")
		})
	}
}

// GetToken asks the chain every time, unless auth.WithTokenCache is given:
// then only for scopes it has no token for.
func TestTokenCredentialCache(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		tokenCache bool
		wantMinted int
	}{
		{name: "no cache", wantMinted: 4},
		{name: "auth.WithTokenCache: one token per scope", tokenCache: true, wantMinted: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			e := newEntra(nil)
			var opts []auth.Option
			if tt.tokenCache {
				tc, err := auth.NewTokenCache(10)
				g.Expect(err).NotTo(HaveOccurred())
				opts = append(opts, auth.WithTokenCache(tc, cache.InvolvedObject{}))
			}
			cred := azure.Provider{Implementation: e}.NewTokenCredential(context.Background(), opts...)

			for _, scope := range []string{armScope, vaultScope, armScope, vaultScope} {
				token, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
				g.Expect(err).NotTo(HaveOccurred())
				who, ok := e.whoIs(token.Token)
				g.Expect(ok).To(BeTrue())
				g.Expect(who).To(Equal("workload identity for " + scope))
			}
			g.Expect(e.count()).To(Equal(tt.wantMinted))
		})
	}
}

// The chain's errors reach the caller unchanged, and through a pipeline
// still match with errors.Is.
func TestTokenCredentialErrors(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	errNoIdentity := errors.New("no managed identity endpoint")
	e := newEntra(errNoIdentity)
	srv := startAzureAPI(t, e)
	cred := azure.Provider{Implementation: e}.NewTokenCredential(context.Background())

	_, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{armScope}})
	g.Expect(err).To(MatchError("failed to get azure source credentials of the controller identity: no managed identity endpoint"))
	g.Expect(err).To(MatchError(errNoIdentity))

	_, err = get(context.Background(), pipeline(srv, cred, armScope), srv.URL+"/subscriptions")
	g.Expect(err).To(MatchError(errNoIdentity))
}

// The options are the caller's at the time of the call, and concurrent
// GetToken calls for different scopes do not append to a shared slice.
// Five options, because a copy of five has spare capacity.
func TestTokenCredentialCopiesOptions(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	e := newEntra(nil)
	opts := []auth.Option{auth.WithServiceAccountNamespace("team-a"), auth.WithScopes(vaultScope),
		auth.WithAudiences("api://AzureADTokenExchange"), auth.WithClusterAddress("https://aks.example.com"),
		auth.WithCAData("ca")}
	cred := azure.Provider{Implementation: e}.NewTokenCredential(context.Background(), opts...)
	opts[1] = auth.WithServiceAccountName("app") // would make the ServiceAccount the source

	scopes := []string{armScope, vaultScope, armScope, vaultScope}
	whos := make([]string, len(scopes))
	errs := make([]error, len(scopes))
	var wg sync.WaitGroup
	for i, scope := range scopes {
		wg.Go(func() {
			var token azcore.AccessToken
			token, errs[i] = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
			whos[i], _ = e.whoIs(token.Token)
		})
	}
	wg.Wait()
	for i, scope := range scopes {
		g.Expect(errs[i]).NotTo(HaveOccurred())
		g.Expect(whos[i]).To(Equal("workload identity for "+scope), "call %d", i)
	}
}
