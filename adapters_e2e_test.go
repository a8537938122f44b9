package auth_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
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
	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	storage "google.golang.org/api/storage/v1"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

// The SDK adapters end to end: a real SDK client, configured with an
// adapter as upstream's are used, makes a request to a loopback fake that
// tells whose credentials signed it.

const targetSession = "arn:aws:sts::222222222222:assumed-role/target-account-role/my-app.my-app.fluxcd.io"

// callerARN is GetCallerIdentity by a real SDK client whose credentials
// come from creds.
func (w *awsWorld) callerARN(ctx context.Context, creds awssdk.CredentialsProvider) (string, error) {
	out, err := sts.New(sts.Options{Region: region, BaseEndpoint: &w.sts.URL, Credentials: creds}).
		GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", err
	}
	return awssdk.ToString(out.Arn), nil
}

// An SDK client signs as the target role of an aws.auth.fluxcd.io/assume-role
// ServiceAccount, and the lockdown rules hold through the adapter.
func TestAWSCredentialsProviderImpersonates(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		manifest string
		lockdown bool
		wantErr  string
	}{
		{name: "object-level IRSA source", manifest: "aws-object-irsa.yaml"},
		{name: "object-level IRSA source under lockdown", manifest: "aws-object-irsa.yaml", lockdown: true},
		{name: "controller source refused under lockdown", manifest: "aws-pod-identity.yaml", lockdown: true,
			wantErr: "failed to get provider identity from service account 'my-app/my-app' annotations: " +
				"the service account has no eks.amazonaws.com/role-arn annotation: add eks.amazonaws.com/role-arn " +
				"with the IAM role the service account's token is exchanged for (under multi-tenancy lockdown the " +
				"service account, not the controller, is the source of aws.auth.fluxcd.io/assume-role)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := newAWSWorld(t)
			w.sts.AllowWebIdentity(sourceRole, "my-app", "my-app")
			w.sts.AllowAssumeRole(sourceRole, targetRole)
			kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, tt.manifest))
			opts := myAppOptions(kube, auth.WithSTSRegion(region))
			if tt.lockdown {
				opts = append(opts, auth.WithDefaultServiceAccount("default"))
			}

			arn, err := w.callerARN(context.Background(), w.provider.NewCredentialsProvider(context.Background(), opts...))

			if tt.wantErr != "" {
				g.Expect(err).To(MatchError("operation error STS: GetCallerIdentity, get identity: get credentials: " + tt.wantErr))
				g.Expect(err).To(MatchError(aws.ErrNoServiceAccountRole))
				g.Expect(w.sts.Calls()).To(BeEmpty())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(arn).To(Equal(targetSession))
			g.Expect(w.sts.Calls()).To(Equal([]fakes.AWSSTSCall{
				{Action: "AssumeRoleWithWebIdentity", RoleARN: sourceRole, RoleSessionName: "my-app.my-app.fluxcd.io",
					Caller: "system:serviceaccount:my-app:my-app"},
				{Action: "AssumeRole", RoleARN: targetRole, RoleSessionName: "my-app.my-app.fluxcd.io", Caller: sourceRole, Region: region},
				{Action: "GetCallerIdentity", Caller: targetRole, Region: region},
			}))
		})
	}
}

// Through auth.WithTokenCache, Retrieve within the credentials' lifetime
// makes no cloud call, and past it refreshes through the whole chain:
// a new ServiceAccount token, source credentials and AssumeRole.
func TestAWSCredentialsProviderCachesAndRefreshes(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := newAWSWorld(t)
	w.sts.AllowWebIdentity(sourceRole, "my-app", "my-app")
	w.sts.AllowAssumeRole(sourceRole, targetRole)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-object-irsa.yaml"))
	clock := newAdapterClock()
	tc, err := auth.NewTokenCache(10, auth.CacheClock(clock.Now))
	g.Expect(err).NotTo(HaveOccurred())
	creds := w.provider.NewCredentialsProvider(context.Background(), myAppOptions(kube, auth.WithSTSRegion(region),
		auth.WithTokenCache(tc, cache.InvolvedObject{Kind: "Bucket", Name: "app", Namespace: "my-app"}))...)
	calls := func() []int {
		return []int{int(kube.TokenRequests()), w.sts.Count("AssumeRoleWithWebIdentity"), w.sts.Count("AssumeRole")}
	}

	first, err := creds.Retrieve(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(calls()).To(Equal([]int{1, 1, 1}))

	clock.Add(10 * time.Minute)
	second, err := creds.Retrieve(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(second).To(Equal(first))
	g.Expect(calls()).To(Equal([]int{1, 1, 1}), "a hit makes no call")

	clock.Add(time.Hour)
	third, err := creds.Retrieve(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(third.AccessKeyID).NotTo(Equal(first.AccessKeyID))
	g.Expect(calls()).To(Equal([]int{2, 2, 2}), "both levels expired: the whole chain ran again")
	who, ok := w.sts.WhoAmI(third.AccessKeyID)
	g.Expect(ok).To(BeTrue())
	g.Expect(who).To(Equal(targetSession))
}

// gcsAPI is a Cloud Storage JSON API that serves buckets.get to the
// identities the fake IAM Credentials minted tokens for, and records them.
type gcsAPI struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string // guarded by mu
}

func startGCS(t *testing.T, iam *fakes.GCPIAMCredentials) *gcsAPI {
	t.Helper()
	api := &gcsAPI{}
	api.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, ok := iam.WhoAmI(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if !ok || r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/storage/v1/b/") {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": 401, "message": "Invalid Credentials"}})
			return
		}
		api.mu.Lock()
		api.seen = append(api.seen, who)
		api.mu.Unlock()
		_ = json.NewEncoder(w).Encode(storage.Bucket{Kind: "storage#bucket", Name: strings.TrimPrefix(r.URL.Path, "/storage/v1/b/")})
	}))
	t.Cleanup(api.srv.Close)
	return api
}

func (a *gcsAPI) callers() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

// getBucket is buckets.get by a real Google API client authorized by ts.
func (a *gcsAPI) getBucket(ctx context.Context, ts oauth2.TokenSource) error {
	svc, err := storage.NewService(ctx, option.WithTokenSource(ts), option.WithEndpoint(a.srv.URL+"/storage/v1/"))
	if err != nil {
		return err
	}
	_, err = svc.Buckets.Get("bucket").Context(ctx).Do()
	return err
}

// A Google API client authorized by the adapter reaches Cloud Storage as
// the target of a gcp.auth.fluxcd.io/impersonate ServiceAccount, from the
// source the lockdown rules choose. The GCP world sets process variables
// (the metadata server), so these tests are not parallel.
func TestGCPTokenSourceImpersonates(t *testing.T) {
	for _, tt := range []struct {
		name     string
		manifest string
		lockdown bool
		grant    string // the principal allowed to impersonate targetGSA
	}{
		{name: "controller workload identity source", manifest: "gcp-controller-wif.yaml", grant: controllerGSA},
		{name: "object-level direct access source under lockdown", manifest: "gcp-controller-wif.yaml", lockdown: true,
			grant: myAppPrincipal},
		{name: "object-level workload identity source", manifest: "gcp-object-wif.yaml", grant: sourceGSA},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			w := newGCPWorld(t)
			w.iam.AllowImpersonation(myAppPrincipal, sourceGSA)
			w.iam.AllowImpersonation(tt.grant, targetGSA)
			gcs := startGCS(t, w.iam)
			kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, tt.manifest))
			var extra []auth.Option
			if tt.lockdown {
				extra = append(extra, auth.WithDefaultServiceAccount("default"))
			}

			err := gcs.getBucket(context.Background(), w.provider.NewTokenSource(context.Background(), myAppOptions(kube, extra...)...))

			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(gcs.callers()).To(Equal([]string{targetGSA}))
			calls := w.iam.Calls()
			g.Expect(calls[len(calls)-1]).To(Equal(fakes.GCPIAMCall{
				Target: targetGSA, Caller: tt.grant, Scopes: []string{cloudPlatform}, Lifetime: "3600s",
			}))
		})
	}
}

// Through auth.WithTokenCache, Token within the token's lifetime makes no
// cloud call, and past it refreshes through the whole chain: the
// controller's token and generateAccessToken.
func TestGCPTokenSourceCachesAndRefreshes(t *testing.T) {
	g := NewWithT(t)
	w := newGCPWorld(t)
	w.iam.AllowImpersonation(controllerGSA, targetGSA)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "gcp-controller-wif.yaml"))
	clock := newAdapterClock()
	tc, err := auth.NewTokenCache(10, auth.CacheClock(clock.Now))
	g.Expect(err).NotTo(HaveOccurred())
	ts := w.provider.NewTokenSource(context.Background(), myAppOptions(kube,
		auth.WithTokenCache(tc, cache.InvolvedObject{Kind: "Bucket", Name: "app", Namespace: "my-app"}))...)
	calls := func() []int64 {
		return []int64{w.metadata.Requests("instance/service-accounts/default/token"), int64(w.iam.Count())}
	}

	first, err := ts.Token()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(calls()).To(Equal([]int64{1, 1}))

	clock.Add(10 * time.Minute)
	second, err := ts.Token()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(second).To(Equal(first))
	g.Expect(calls()).To(Equal([]int64{1, 1}), "a hit makes no call")

	clock.Add(time.Hour)
	third, err := ts.Token()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(third.AccessToken).NotTo(Equal(first.AccessToken))
	g.Expect(calls()).To(Equal([]int64{2, 2}), "both levels expired: the whole chain ran again")
	g.Expect(w.whoAmI(t, &gcp.Token{Token: *third})).To(Equal(targetGSA))
}

const (
	appClientID = "11111111-1111-1111-1111-111111111111"
	armScope    = "https://management.azure.com/.default"
	vaultScope  = "https://vault.azure.net/.default"
)

// workloadEntra is Entra ID for workload identity federation, behind
// upstream's SDK seam: it takes a client assertion only when the issuer
// signed it for Entra's audience, and mints tokens that it remembers with
// the client ID, the assertion's subject and the scopes.
type workloadEntra struct {
	azure.Implementation // the methods not overridden are not used
	issuer               *fakes.Issuer

	mu     sync.Mutex
	tokens map[string]string // guarded by mu
}

func (e *workloadEntra) NewClientAssertionCredential(_ string, clientID string,
	getAssertion func(context.Context) (string, error), _ *azidentity.ClientAssertionCredentialOptions) (azcore.TokenCredential, error) {
	return credentialFunc(func(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
		assertion, err := getAssertion(ctx)
		if err != nil {
			return azcore.AccessToken{}, err
		}
		subject, err := e.issuer.Verify(assertion, "api://AzureADTokenExchange")
		if err != nil {
			return azcore.AccessToken{}, fmt.Errorf("AADSTS700211: invalid client assertion: %w", err)
		}
		token := rand.Text()
		e.mu.Lock()
		defer e.mu.Unlock()
		e.tokens[token] = fmt.Sprintf("%s as %s for %s", subject, clientID, strings.Join(o.Scopes, " "))
		return azcore.AccessToken{Token: token, ExpiresOn: time.Now().Add(time.Hour)}, nil
	}), nil
}

func (e *workloadEntra) whoIs(token string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	who, ok := e.tokens[token]
	return who, ok
}

func (e *workloadEntra) minted() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.tokens)
}

type azureWorld struct {
	entra *workloadEntra
	kube  *fakes.KubeClient
	api   *httptest.Server // answers with whose bearer token it got
}

func newAzureWorld(t *testing.T) *azureWorld {
	t.Helper()
	issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	w := &azureWorld{entra: &workloadEntra{issuer: issuer, tokens: map[string]string{}}}
	w.kube = fakes.NewKubeClient(issuer, sa("app", map[string]string{
		azure.ClientIDAnnotation: appClientID,
		azure.TenantIDAnnotation: "22222222-2222-2222-2222-222222222222",
	}), sa("bad", map[string]string{azure.ImpersonateAnnotation: "clientID: my-app\ntenantID: contoso.com"}))
	// TLS: the SDK sends no credential over plain HTTP.
	w.api = httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		who, ok := w.entra.whoIs(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if !ok {
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = rw.Write([]byte(who))
	}))
	t.Cleanup(w.api.Close)
	return w
}

func (w *azureWorld) provider() azure.Provider { return azure.Provider{Implementation: w.entra} }

// get is a GET through a real azcore pipeline, as the Azure SDK clients
// build, authorized by cred for scope.
func (w *azureWorld) get(ctx context.Context, cred azcore.TokenCredential, scope string) (string, error) {
	pl := runtime.NewPipeline("identitychain-test", "v0.0.0", runtime.PipelineOptions{
		PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(cred, []string{scope}, nil)},
	}, &policy.ClientOptions{Transport: w.api.Client(), Retry: policy.RetryOptions{MaxRetries: -1}})
	req, err := runtime.NewRequest(ctx, http.MethodGet, w.api.URL+"/subscriptions")
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
	var body strings.Builder
	_, err = io.Copy(&body, resp.Body)
	return body.String(), err
}

// An azcore pipeline authorized by the adapter reaches an Azure API as the
// ServiceAccount's federated identity, with the scopes the pipeline asked
// for; an invalid impersonation annotation is refused through it with what
// to do, before any call.
func TestAzureTokenCredential(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name           string
		serviceAccount string
		scope          string
		wantWho        string
		wantErr        error
	}{
		{name: "workload identity federation", serviceAccount: "app", scope: armScope,
			wantWho: "system:serviceaccount:my-app:app as " + appClientID + " for " + armScope},
		{name: "the scope is the pipeline's", serviceAccount: "app", scope: vaultScope,
			wantWho: "system:serviceaccount:my-app:app as " + appClientID + " for " + vaultScope},
		{name: "invalid annotation refused", serviceAccount: "bad", scope: armScope, wantErr: auth.ErrInvalidAnnotation},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := newAzureWorld(t)
			cred := w.provider().NewTokenCredential(context.Background(), auth.WithClient(w.kube),
				auth.WithServiceAccountNamespace("my-app"), auth.WithServiceAccountName(tt.serviceAccount))

			who, err := w.get(context.Background(), cred, tt.scope)

			if tt.wantErr != nil {
				g.Expect(err).To(MatchError(tt.wantErr))
				g.Expect(err).To(MatchError("invalid azure.auth.fluxcd.io/impersonate annotation on service account " +
					"'my-app/bad': clientID 'my-app' is not a GUID: it must look like 00001111-aaaa-2222-bbbb-3333cccc4444, " +
					"the Application (client) ID of the app registration"))
				g.Expect(w.kube.TokenRequests()).To(BeZero())
				g.Expect(w.entra.minted()).To(BeZero())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(who).To(Equal(tt.wantWho))
		})
	}
}

// Through auth.WithTokenCache, GetToken for scopes it has a token for makes
// no call, and past the token's lifetime refreshes through the chain: a new
// ServiceAccount token exchanged at Entra.
func TestAzureTokenCredentialCachesAndRefreshes(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := newAzureWorld(t)
	clock := newAdapterClock()
	tc, err := auth.NewTokenCache(10, auth.CacheClock(clock.Now))
	g.Expect(err).NotTo(HaveOccurred())
	cred := w.provider().NewTokenCredential(context.Background(), auth.WithClient(w.kube),
		auth.WithServiceAccountNamespace("my-app"), auth.WithServiceAccountName("app"),
		auth.WithTokenCache(tc, cache.InvolvedObject{Kind: "Bucket", Name: "app", Namespace: "my-app"}))
	getToken := func(scope string) azcore.AccessToken {
		token, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
		g.Expect(err).NotTo(HaveOccurred())
		return token
	}
	calls := func() []int { return []int{int(w.kube.TokenRequests()), w.entra.minted()} }

	first := getToken(armScope)
	g.Expect(getToken(vaultScope).Token).NotTo(Equal(first.Token))
	g.Expect(calls()).To(Equal([]int{2, 2}), "one token per scope")

	clock.Add(10 * time.Minute)
	g.Expect(getToken(armScope)).To(Equal(first))
	g.Expect(calls()).To(Equal([]int{2, 2}), "a hit makes no call")

	clock.Add(time.Hour)
	third := getToken(armScope)
	g.Expect(third.Token).NotTo(Equal(first.Token))
	g.Expect(calls()).To(Equal([]int{3, 3}), "expired: the chain ran again")
	who, _ := w.entra.whoIs(third.Token)
	g.Expect(who).To(Equal("system:serviceaccount:my-app:app as " + appClientID + " for " + armScope))
}

// adapterClock is a TokenCache clock that the test moves. It is safe for
// concurrent use.
type adapterClock struct {
	mu  sync.Mutex
	now time.Time // guarded by mu
}

func newAdapterClock() *adapterClock { return &adapterClock{now: time.Now()} }

func (c *adapterClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *adapterClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
