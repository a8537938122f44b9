package fakes_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"
	iamcredentials "google.golang.org/api/iamcredentials/v1"
	"google.golang.org/api/option"

	"github.com/identitychain/auth/fakes"
)

// Values shared by every GCP test in this binary. They must not vary: the
// metadata package and fluxcd/pkg/auth/gcp cache project, location and
// cluster name process-wide (see fakes.GCPMetadata).
const (
	gcpTestProject  = "flux-test-project"
	gcpTestLocation = "europe-west1"
	gcpTestCluster  = "flux"
	gcpTestPool     = gcpTestProject + ".svc.id.goog"
	gcpTestGKEAud   = "identitynamespace:" + gcpTestPool +
		":https://container.googleapis.com/v1/projects/" + gcpTestProject +
		"/locations/" + gcpTestLocation + "/clusters/" + gcpTestCluster
	gcpTestWIFAud = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/flux/providers/kind"

	gcpTestControllerSA = "source-controller@flux-test-project.iam.gserviceaccount.com"
	gcpTestTenantSA     = "tenant-a@tenant-project.iam.gserviceaccount.com"
	gcpTestOtherSA      = "tenant-b@tenant-project.iam.gserviceaccount.com"
	gcpTestDelegateSA   = "delegate@flux-test-project.iam.gserviceaccount.com"

	gcpScopeCloudPlatform = "https://www.googleapis.com/auth/cloud-platform"
	gcpScopeEmail         = "https://www.googleapis.com/auth/userinfo.email"
)

// gcpClock is a settable clock for injecting into the fakes.
type gcpClock struct {
	// mu guards now.
	mu  sync.Mutex
	now time.Time
}

func newGCPClock() *gcpClock {
	// Real time, so the oauth2 libraries (which use time.Now for expiry)
	// see the fakes' tokens as fresh.
	return &gcpClock{now: time.Now().Truncate(time.Second)}
}

func (c *gcpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *gcpClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// gcpIAMService returns the real iamcredentials/v1 client calling iam with
// bearer token; an empty token sends no Authorization header.
func gcpIAMService(t *testing.T, iam *fakes.GCPIAMCredentials, token string) *iamcredentials.Service {
	t.Helper()
	opts := []option.ClientOption{option.WithEndpoint(iam.URL + "/")}
	if token == "" {
		opts = append(opts, option.WithoutAuthentication())
	} else {
		opts = append(opts, option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token})))
	}
	svc, err := iamcredentials.NewService(context.Background(), opts...)
	if err != nil {
		t.Fatalf("failed to create iamcredentials client: %v", err)
	}
	return svc
}

// gcpGenerate calls generateAccessToken for target with the real client.
func gcpGenerate(t *testing.T, iam *fakes.GCPIAMCredentials, bearer, target string,
	req *iamcredentials.GenerateAccessTokenRequest) (*iamcredentials.GenerateAccessTokenResponse, error) {
	t.Helper()
	return gcpIAMService(t, iam, bearer).Projects.ServiceAccounts.
		GenerateAccessToken("projects/-/serviceAccounts/"+target, req).Context(context.Background()).Do()
}

// gcpAPIErr is the part of Google's JSON error envelope the tests pin.
type gcpAPIErr struct {
	Code    int
	Status  string
	Reason  string
	Message string
}

// gcpDecodeAPIError extracts code, status, reason and message from a
// *googleapi.Error, reading the raw body for the status, which the Go type
// does not keep.
func gcpDecodeAPIError(t *testing.T, err error) gcpAPIErr {
	t.Helper()
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("want *googleapi.Error, got %T: %v", err, err)
	}
	var body struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
			Details []struct {
				Reason string `json:"reason"`
			} `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(gerr.Body), &body); err != nil {
		t.Fatalf("error body is not Google's JSON envelope: %v", err)
	}
	out := gcpAPIErr{Code: gerr.Code, Status: body.Error.Status, Message: body.Error.Message}
	if body.Error.Code != gerr.Code {
		t.Fatalf("envelope code %d != HTTP status %d", body.Error.Code, gerr.Code)
	}
	if len(body.Error.Details) > 0 {
		out.Reason = body.Error.Details[0].Reason
	}
	return out
}

// gcpMetadataToken fetches a token for the default account straight from m,
// with the given scopes; it needs no environment.
func gcpMetadataToken(t *testing.T, m *fakes.GCPMetadata, scopes string) string {
	t.Helper()
	u := m.URL + "/computeMetadata/v1/instance/service-accounts/default/token"
	if scopes != "" {
		u += "?scopes=" + scopes
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Metadata-Flavor", "Google")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("failed to get metadata token: %v", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("bad metadata token response: status %d, err %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

func gcpStartMetadata(t *testing.T, iam *fakes.GCPIAMCredentials) *fakes.GCPMetadata {
	t.Helper()
	m := fakes.StartGCPMetadata(fakes.GCPMetadataOptions{
		ProjectID:           gcpTestProject,
		ClusterLocation:     gcpTestLocation,
		ClusterName:         gcpTestCluster,
		ServiceAccountEmail: gcpTestControllerSA,
		IAM:                 iam,
	})
	t.Cleanup(m.Close)
	return m
}

func TestIAMCredentials_GenerateAccessToken(t *testing.T) {
	t.Parallel()

	const permissionDenied = "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."

	type fixture struct {
		iam   *fakes.GCPIAMCredentials
		clock *gcpClock
		meta  *fakes.GCPMetadata
	}
	tests := []struct {
		name string
		// setup returns the bearer token to send.
		setup    func(f fixture) string
		target   string
		project  string // "-" unless set
		req      iamcredentials.GenerateAccessTokenRequest
		wantErr  *gcpAPIErr
		wantLife time.Duration
	}{
		{
			name: "caller with tokenCreator gets a token for the target",
			setup: func(f fixture) string {
				f.iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
				tok, _ := f.iam.IssueToken(gcpTestControllerSA)
				return tok
			},
			target:   gcpTestTenantSA,
			req:      iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}, Lifetime: "3600s"},
			wantLife: time.Hour,
		},
		{
			name: "requested lifetime is honoured",
			setup: func(f fixture) string {
				f.iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
				tok, _ := f.iam.IssueToken(gcpTestControllerSA)
				return tok
			},
			target:   gcpTestTenantSA,
			req:      iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}, Lifetime: "600s"},
			wantLife: 10 * time.Minute,
		},
		{
			name: "missing lifetime defaults to one hour",
			setup: func(f fixture) string {
				f.iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
				tok, _ := f.iam.IssueToken(gcpTestControllerSA)
				return tok
			},
			target:   gcpTestTenantSA,
			req:      iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}},
			wantLife: time.Hour,
		},
		{
			name: "delegation chain with a grant at every hop",
			setup: func(f fixture) string {
				f.iam.AllowImpersonation(gcpTestControllerSA, gcpTestDelegateSA)
				f.iam.AllowImpersonation(gcpTestDelegateSA, gcpTestTenantSA)
				tok, _ := f.iam.IssueToken(gcpTestControllerSA)
				return tok
			},
			target: gcpTestTenantSA,
			req: iamcredentials.GenerateAccessTokenRequest{
				Scope:     []string{gcpScopeCloudPlatform},
				Delegates: []string{"projects/-/serviceAccounts/" + gcpTestDelegateSA},
			},
			wantLife: time.Hour,
		},
		{
			name: "metadata token of the controller is a valid bearer",
			setup: func(f fixture) string {
				f.iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
				return gcpMetadataToken(t, f.meta, "")
			},
			target:   gcpTestTenantSA,
			req:      iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}},
			wantLife: time.Hour,
		},
		{
			name:    "no bearer token",
			setup:   func(fixture) string { return "" },
			target:  gcpTestTenantSA,
			req:     iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}},
			wantErr: &gcpAPIErr{Code: 401, Status: "UNAUTHENTICATED", Reason: "CREDENTIALS_MISSING"},
		},
		{
			name:    "token the fake never issued",
			setup:   func(fixture) string { return "ya29.not-issued-by-the-fake" },
			target:  gcpTestTenantSA,
			req:     iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}},
			wantErr: &gcpAPIErr{Code: 401, Status: "UNAUTHENTICATED", Reason: "ACCESS_TOKEN_TYPE_UNSUPPORTED"},
		},
		{
			name: "expired token",
			setup: func(f fixture) string {
				f.iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
				tok, expiry := f.iam.IssueToken(gcpTestControllerSA)
				f.clock.Advance(expiry.Sub(f.clock.Now())) // exactly at expiry
				return tok
			},
			target:  gcpTestTenantSA,
			req:     iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}},
			wantErr: &gcpAPIErr{Code: 401, Status: "UNAUTHENTICATED", Reason: "ACCESS_TOKEN_EXPIRED"},
		},
		{
			name: "caller without tokenCreator on the target",
			setup: func(f fixture) string {
				f.iam.AllowImpersonation(gcpTestControllerSA, gcpTestOtherSA)
				tok, _ := f.iam.IssueToken(gcpTestControllerSA)
				return tok
			},
			target:  gcpTestTenantSA,
			req:     iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}},
			wantErr: &gcpAPIErr{Code: 403, Status: "PERMISSION_DENIED", Reason: "IAM_PERMISSION_DENIED", Message: permissionDenied},
		},
		{
			name: "grant is not transitive without delegates",
			setup: func(f fixture) string {
				f.iam.AllowImpersonation(gcpTestControllerSA, gcpTestDelegateSA)
				f.iam.AllowImpersonation(gcpTestDelegateSA, gcpTestTenantSA)
				tok, _ := f.iam.IssueToken(gcpTestControllerSA)
				return tok
			},
			target:  gcpTestTenantSA,
			req:     iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}},
			wantErr: &gcpAPIErr{Code: 403, Status: "PERMISSION_DENIED", Reason: "IAM_PERMISSION_DENIED", Message: permissionDenied},
		},
		{
			name: "delegation chain with a missing hop",
			setup: func(f fixture) string {
				f.iam.AllowImpersonation(gcpTestControllerSA, gcpTestDelegateSA)
				tok, _ := f.iam.IssueToken(gcpTestControllerSA)
				return tok
			},
			target: gcpTestTenantSA,
			req: iamcredentials.GenerateAccessTokenRequest{
				Scope:     []string{gcpScopeCloudPlatform},
				Delegates: []string{"projects/-/serviceAccounts/" + gcpTestDelegateSA},
			},
			wantErr: &gcpAPIErr{Code: 403, Status: "PERMISSION_DENIED", Reason: "IAM_PERMISSION_DENIED", Message: permissionDenied},
		},
		{
			name: "bearer token without cloud-platform scope",
			setup: func(f fixture) string {
				f.iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
				return gcpMetadataToken(t, f.meta, gcpScopeEmail)
			},
			target: gcpTestTenantSA,
			req:    iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}},
			wantErr: &gcpAPIErr{Code: 403, Status: "PERMISSION_DENIED", Reason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
				Message: "Request had insufficient authentication scopes."},
		},
		{
			name: "no scopes requested",
			setup: func(f fixture) string {
				f.iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
				tok, _ := f.iam.IssueToken(gcpTestControllerSA)
				return tok
			},
			target:  gcpTestTenantSA,
			req:     iamcredentials.GenerateAccessTokenRequest{},
			wantErr: &gcpAPIErr{Code: 400, Status: "INVALID_ARGUMENT", Message: "Scope required."},
		},
		{
			name: "lifetime above one hour",
			setup: func(f fixture) string {
				f.iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
				tok, _ := f.iam.IssueToken(gcpTestControllerSA)
				return tok
			},
			target:  gcpTestTenantSA,
			req:     iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}, Lifetime: "3601s"},
			wantErr: &gcpAPIErr{Code: 400, Status: "INVALID_ARGUMENT"},
		},
		{
			name: "lifetime not a duration",
			setup: func(f fixture) string {
				f.iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
				tok, _ := f.iam.IssueToken(gcpTestControllerSA)
				return tok
			},
			target:  gcpTestTenantSA,
			req:     iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}, Lifetime: "1h"},
			wantErr: &gcpAPIErr{Code: 400, Status: "INVALID_ARGUMENT"},
		},
		{
			name: "project instead of the '-' wildcard",
			setup: func(f fixture) string {
				f.iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
				tok, _ := f.iam.IssueToken(gcpTestControllerSA)
				return tok
			},
			target:  gcpTestTenantSA,
			project: "tenant-project",
			req:     iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}},
			wantErr: &gcpAPIErr{Code: 400, Status: "INVALID_ARGUMENT"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)

			clock := newGCPClock()
			iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{Now: clock.Now})
			t.Cleanup(iam.Close)
			f := fixture{iam: iam, clock: clock, meta: gcpStartMetadata(t, iam)}
			bearer := tt.setup(f)
			caller, _ := iam.WhoAmI(bearer)
			if tt.wantErr != nil && tt.wantErr.Code == 401 {
				caller = ""
			}

			project := tt.project
			if project == "" {
				project = "-"
			}
			resp, err := gcpIAMService(t, iam, bearer).Projects.ServiceAccounts.
				GenerateAccessToken("projects/"+project+"/serviceAccounts/"+tt.target, &tt.req).
				Context(context.Background()).Do()

			calls := iam.Calls()
			g.Expect(calls).To(HaveLen(1))
			g.Expect(iam.Count()).To(Equal(1))
			g.Expect(calls[0].Target).To(Equal(tt.target))
			g.Expect(calls[0].Caller).To(Equal(caller))
			g.Expect(calls[0].Scopes).To(Equal(tt.req.Scope))
			g.Expect(calls[0].Lifetime).To(Equal(tt.req.Lifetime))

			if tt.wantErr != nil {
				g.Expect(err).To(HaveOccurred())
				if bearer != "" {
					g.Expect(err.Error()).NotTo(ContainSubstring(bearer))
				}
				got := gcpDecodeAPIError(t, err)
				if tt.wantErr.Message == "" {
					got.Message = ""
				}
				g.Expect(got).To(Equal(*tt.wantErr))
				g.Expect(calls[0].Err).To(Equal(tt.wantErr.Status))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(calls[0].Err).To(BeEmpty())
			g.Expect(resp.AccessToken).NotTo(BeEmpty())
			g.Expect(resp.AccessToken).NotTo(Equal(bearer))
			expiry, err := time.Parse(time.RFC3339, resp.ExpireTime)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(expiry).To(BeTemporally("==", clock.Now().Add(tt.wantLife)))
			who, ok := iam.WhoAmI(resp.AccessToken)
			g.Expect(ok).To(BeTrue())
			g.Expect(who).To(Equal(tt.target))
		})
	}
}

func TestIAMCredentials_ImpersonatedTokenExpiresOnClock(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)

	clock := newGCPClock()
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{Now: clock.Now, TTL: 5 * time.Minute})
	t.Cleanup(iam.Close)
	iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
	iam.AllowImpersonation(gcpTestTenantSA, gcpTestOtherSA)

	src, srcExpiry := iam.IssueToken(gcpTestControllerSA)
	g.Expect(srcExpiry).To(Equal(clock.Now().Add(5 * time.Minute)))

	// TTL overrides the requested lifetime.
	resp, err := gcpGenerate(t, iam, src, gcpTestTenantSA,
		&iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}, Lifetime: "3600s"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.ExpireTime).To(Equal(clock.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339)))

	// The impersonated token is itself a bearer, until one second before
	// expiry...
	clock.Advance(5*time.Minute - time.Second)
	_, err = gcpGenerate(t, iam, resp.AccessToken, gcpTestOtherSA,
		&iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}})
	g.Expect(err).NotTo(HaveOccurred())

	// ...and not at expiry.
	clock.Advance(time.Second)
	_, err = gcpGenerate(t, iam, resp.AccessToken, gcpTestOtherSA,
		&iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}})
	g.Expect(gcpDecodeAPIError(t, err)).To(Equal(gcpAPIErr{
		Code: 401, Status: "UNAUTHENTICATED", Reason: "ACCESS_TOKEN_EXPIRED",
		Message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
	}))

	// Identity outlives expiry.
	who, ok := iam.WhoAmI(resp.AccessToken)
	g.Expect(ok).To(BeTrue())
	g.Expect(who).To(Equal(gcpTestTenantSA))
}

func TestIAMCredentials_IssueTokenAndWhoAmI(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)

	clock := newGCPClock()
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{Now: clock.Now})
	t.Cleanup(iam.Close)

	principal := fakes.FederatedPrincipal(gcpTestWIFAud, fakes.ServiceAccountSubject("ns", "sa"))
	a, expA := iam.IssueToken(gcpTestControllerSA)
	b, expB := iam.IssueToken(principal)
	g.Expect(a).NotTo(Equal(b))
	g.Expect(a).To(HavePrefix("ya29."))
	g.Expect(expA).To(Equal(clock.Now().Add(time.Hour)))
	g.Expect(expB).To(Equal(expA))

	who, ok := iam.WhoAmI(a)
	g.Expect(ok).To(BeTrue())
	g.Expect(who).To(Equal(gcpTestControllerSA))
	who, ok = iam.WhoAmI(b)
	g.Expect(ok).To(BeTrue())
	g.Expect(who).To(Equal(principal))
	_, ok = iam.WhoAmI("ya29.unknown")
	g.Expect(ok).To(BeFalse())
	g.Expect(iam.Count()).To(BeZero())
}

func TestIAMCredentials_RawProtocol(t *testing.T) {
	t.Parallel()

	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
	tok, _ := iam.IssueToken(gcpTestControllerSA)

	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantCode   int
		wantStatus string
	}{
		{"unknown field in body", http.MethodPost, "/v1/projects/-/serviceAccounts/" + gcpTestTenantSA + ":generateAccessToken",
			`{"scope":["` + gcpScopeCloudPlatform + `"],"lifetme":"60s"}`, 400, "INVALID_ARGUMENT"},
		{"body not JSON", http.MethodPost, "/v1/projects/-/serviceAccounts/" + gcpTestTenantSA + ":generateAccessToken",
			`scope=x`, 400, "INVALID_ARGUMENT"},
		{"GET", http.MethodGet, "/v1/projects/-/serviceAccounts/" + gcpTestTenantSA + ":generateAccessToken",
			``, 405, "INVALID_ARGUMENT"},
		{"other method of the API", http.MethodPost, "/v1/projects/-/serviceAccounts/" + gcpTestTenantSA + ":signJwt",
			`{}`, 404, "NOT_FOUND"},
		{"no service account", http.MethodPost, "/v1/projects/-/serviceAccounts/:generateAccessToken",
			`{}`, 404, "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			req, err := http.NewRequest(tt.method, iam.URL+tt.path, strings.NewReader(tt.body))
			g.Expect(err).NotTo(HaveOccurred())
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			g.Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			var body struct {
				Error struct {
					Code   int    `json:"code"`
					Status string `json:"status"`
				} `json:"error"`
			}
			g.Expect(json.NewDecoder(resp.Body).Decode(&body)).To(Succeed())
			g.Expect(resp.StatusCode).To(Equal(tt.wantCode))
			g.Expect(body.Error.Code).To(Equal(tt.wantCode))
			g.Expect(body.Error.Status).To(Equal(tt.wantStatus))
		})
	}
}

func TestIAMCredentials_LatencyYieldsToClient(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)

	// A latency no test could wait out: the request must end with the
	// client's context, and Close must not wait for the latency either.
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{Latency: time.Hour})
	defer iam.Close()
	tok, _ := iam.IssueToken(gcpTestControllerSA)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := gcpIAMService(t, iam, tok).Projects.ServiceAccounts.
		GenerateAccessToken("projects/-/serviceAccounts/"+gcpTestTenantSA,
			&iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}}).
		Context(ctx).Do()
	g.Expect(errors.Is(err, context.DeadlineExceeded)).To(BeTrue(), "got %v", err)
}

func TestIAMCredentials_Concurrent(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)

	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)

	const workers, perWorker = 16, 24
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			caller := fmt.Sprintf("caller-%d@p.iam.gserviceaccount.com", w)
			target := fmt.Sprintf("target-%d@p.iam.gserviceaccount.com", w)
			iam.AllowImpersonation(caller, target)
			tok, _ := iam.IssueToken(caller)
			svc := gcpIAMService(t, iam, tok)
			for i := range perWorker {
				// Odd requests go to a target the caller may not use.
				want := target
				if i%2 == 1 {
					want = fmt.Sprintf("target-%d@p.iam.gserviceaccount.com", (w+1)%workers)
				}
				resp, err := svc.Projects.ServiceAccounts.GenerateAccessToken("projects/-/serviceAccounts/"+want,
					&iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}}).Do()
				switch {
				case i%2 == 1 && err == nil:
					errs <- fmt.Errorf("worker %d: impersonating %s should have been refused", w, want)
				case i%2 == 0 && err != nil:
					errs <- fmt.Errorf("worker %d: %w", w, err)
				case i%2 == 0:
					if who, _ := iam.WhoAmI(resp.AccessToken); who != target {
						errs <- fmt.Errorf("worker %d: token belongs to %q", w, who)
					}
				}
				_ = iam.Calls()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	g.Expect(iam.Count()).To(Equal(workers * perWorker))
	denied := 0
	for _, c := range iam.Calls() {
		if c.Err == "PERMISSION_DENIED" {
			denied++
		}
	}
	g.Expect(denied).To(Equal(workers * perWorker / 2))
}

func BenchmarkIAMCredentials_GenerateAccessToken(b *testing.B) {
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	b.Cleanup(iam.Close)
	iam.AllowImpersonation(gcpTestControllerSA, gcpTestTenantSA)
	tok, _ := iam.IssueToken(gcpTestControllerSA)
	svc, err := iamcredentials.NewService(context.Background(),
		option.WithEndpoint(iam.URL+"/"),
		option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok})))
	if err != nil {
		b.Fatal(err)
	}
	req := &iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := svc.Projects.ServiceAccounts.GenerateAccessToken(
				"projects/-/serviceAccounts/"+gcpTestTenantSA, req).Do(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
