package fakes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/auth/gcp"
	. "github.com/onsi/gomega"
	"golang.org/x/oauth2/google/externalaccount"
	iamcredentials "google.golang.org/api/iamcredentials/v1"

	"github.com/identitychain/auth/fakes"
)

// gcpFederation is a Kubernetes issuer, Google STS and IAM Credentials
// sharing one clock, plus the implementation that points upstream at them.
type gcpFederation struct {
	clock  *gcpClock
	issuer *fakes.Issuer
	iam    *fakes.GCPIAMCredentials
	sts    *fakes.GCPSTS
	impl   *fakes.GCPImplementation
}

func gcpStartFederation(t *testing.T, stsOpts fakes.GCPSTSOptions) *gcpFederation {
	t.Helper()
	clock := newGCPClock()
	issuer, err := fakes.NewIssuer("https://container.googleapis.com/v1/projects/" + gcpTestProject +
		"/locations/" + gcpTestLocation + "/clusters/" + gcpTestCluster)
	if err != nil {
		t.Fatalf("failed to create issuer: %v", err)
	}
	issuer.SetClock(clock.Now)
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{Now: clock.Now})
	t.Cleanup(iam.Close)
	stsOpts.Issuer, stsOpts.IAM = issuer, iam
	sts := fakes.StartGCPSTS(stsOpts)
	t.Cleanup(sts.Close)
	sts.AllowAudience(gcpTestGKEAud)
	sts.AllowAudience(gcpTestWIFAud)
	return &gcpFederation{clock: clock, issuer: issuer, iam: iam, sts: sts, impl: fakes.NewGCPImplementation(sts, iam)}
}

// sign issues a Kubernetes token for ns/name with the JWT audience that the
// STS audience implies (the pool on GKE).
func (f *gcpFederation) sign(t *testing.T, ns, name, jwtAudience string) string {
	t.Helper()
	tok, err := f.issuer.Sign(ns, name, []string{jwtAudience}, time.Hour)
	if err != nil {
		t.Fatalf("failed to sign token: %v", err)
	}
	return tok
}

// gcpUpstreamConfig is the externalaccount.Config exactly as
// fluxcd/pkg/auth/gcp builds it.
func gcpUpstreamConfig(audience, subjectToken, impersonate string) externalaccount.Config {
	conf := externalaccount.Config{
		UniverseDomain:       "googleapis.com",
		Audience:             audience,
		SubjectTokenType:     "urn:ietf:params:oauth:token-type:jwt",
		TokenURL:             "https://sts.googleapis.com/v1/token",
		SubjectTokenSupplier: gcp.StaticTokenSupplier(subjectToken),
		Scopes:               []string{gcpScopeCloudPlatform, gcpScopeEmail},
	}
	if impersonate != "" {
		conf.ServiceAccountImpersonationURL = fmt.Sprintf(
			"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/%s:generateAccessToken", impersonate)
	} else {
		conf.TokenInfoURL = "https://sts.googleapis.com/v1/introspect"
	}
	return conf
}

func TestGoogleSTS_ExchangeWithRealLibrary(t *testing.T) {
	t.Parallel()

	subject := fakes.ServiceAccountSubject("apps", "podinfo")
	tests := []struct {
		name        string
		audience    string
		jwtAudience string
		impersonate string
		setup       func(f *gcpFederation)
		// tokenFor is the principal the returned token must belong to.
		tokenFor string
		wantErr  []string
		wantIAM  *fakes.GCPIAMCall
	}{
		{
			name:        "GKE pool, direct access",
			audience:    gcpTestGKEAud,
			jwtAudience: gcpTestPool,
			tokenFor:    "principal://iam.googleapis.com/projects/-/locations/global/workloadIdentityPools/" + gcpTestPool + "/subject/ns/apps/sa/podinfo",
		},
		{
			name:        "WIF provider, direct access",
			audience:    gcpTestWIFAud,
			jwtAudience: gcpTestWIFAud,
			tokenFor:    "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/flux/subject/" + subject,
		},
		{
			name:        "GKE pool, impersonation allowed",
			audience:    gcpTestGKEAud,
			jwtAudience: gcpTestPool,
			impersonate: gcpTestTenantSA,
			setup: func(f *gcpFederation) {
				f.iam.AllowImpersonation(fakes.FederatedPrincipal(gcpTestGKEAud, subject), gcpTestTenantSA)
			},
			tokenFor: gcpTestTenantSA,
			wantIAM: &fakes.GCPIAMCall{
				Target:   gcpTestTenantSA,
				Caller:   fakes.FederatedPrincipal(gcpTestGKEAud, subject),
				Scopes:   []string{gcpScopeCloudPlatform, gcpScopeEmail},
				Lifetime: "3600s",
			},
		},
		{
			name:        "WIF provider, impersonation allowed",
			audience:    gcpTestWIFAud,
			jwtAudience: gcpTestWIFAud,
			impersonate: gcpTestTenantSA,
			setup: func(f *gcpFederation) {
				f.iam.AllowImpersonation(fakes.FederatedPrincipal(gcpTestWIFAud, subject), gcpTestTenantSA)
			},
			tokenFor: gcpTestTenantSA,
			wantIAM: &fakes.GCPIAMCall{
				Target:   gcpTestTenantSA,
				Caller:   fakes.FederatedPrincipal(gcpTestWIFAud, subject),
				Scopes:   []string{gcpScopeCloudPlatform, gcpScopeEmail},
				Lifetime: "3600s",
			},
		},
		{
			name:        "impersonation of a service account the principal has no grant on",
			audience:    gcpTestGKEAud,
			jwtAudience: gcpTestPool,
			impersonate: gcpTestTenantSA,
			setup: func(f *gcpFederation) {
				// The grant is for another Kubernetes service account.
				f.iam.AllowImpersonation(fakes.FederatedPrincipal(gcpTestGKEAud,
					fakes.ServiceAccountSubject("apps", "other")), gcpTestTenantSA)
			},
			wantErr: []string{"status code 403", `"status":"PERMISSION_DENIED"`},
			wantIAM: &fakes.GCPIAMCall{
				Target:   gcpTestTenantSA,
				Caller:   fakes.FederatedPrincipal(gcpTestGKEAud, subject),
				Scopes:   []string{gcpScopeCloudPlatform, gcpScopeEmail},
				Lifetime: "3600s",
				Err:      "PERMISSION_DENIED",
			},
		},
		{
			name:        "audience the STS does not know",
			audience:    strings.Replace(gcpTestWIFAud, "providers/kind", "providers/other", 1),
			jwtAudience: strings.Replace(gcpTestWIFAud, "providers/kind", "providers/other", 1),
			wantErr:     []string{"status code 400", `"error":"invalid_target"`},
		},
		{
			name:        "GKE subject token minted for the STS audience instead of the pool",
			audience:    gcpTestGKEAud,
			jwtAudience: gcpTestGKEAud,
			wantErr:     []string{"status code 400", `"error":"invalid_grant"`, "audience does not match"},
		},
		{
			name:        "WIF subject token minted for another provider",
			audience:    gcpTestWIFAud,
			jwtAudience: gcpTestPool,
			wantErr:     []string{"status code 400", `"error":"invalid_grant"`, "audience does not match"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)

			f := gcpStartFederation(t, fakes.GCPSTSOptions{})
			if tt.setup != nil {
				tt.setup(f)
			}
			subjectToken := f.sign(t, "apps", "podinfo", tt.jwtAudience)

			ts, err := f.impl.NewTokenSource(context.Background(), gcpUpstreamConfig(tt.audience, subjectToken, tt.impersonate))
			g.Expect(err).NotTo(HaveOccurred())
			tok, err := ts.Token()

			if tt.wantIAM != nil {
				g.Expect(f.iam.Calls()).To(Equal([]fakes.GCPIAMCall{*tt.wantIAM}))
			} else {
				g.Expect(f.iam.Count()).To(BeZero())
			}
			if tt.wantErr != nil {
				g.Expect(err).To(HaveOccurred())
				for _, want := range tt.wantErr {
					g.Expect(err.Error()).To(ContainSubstring(want))
				}
				g.Expect(err.Error()).NotTo(ContainSubstring(subjectToken))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(f.sts.Exchanges()).To(BeEquivalentTo(1))
			g.Expect(tok.TokenType).To(Equal("Bearer"))
			g.Expect(tok.Expiry).To(BeTemporally("~", time.Now().Add(time.Hour), time.Minute))
			who, ok := f.iam.WhoAmI(tok.AccessToken)
			g.Expect(ok).To(BeTrue())
			g.Expect(who).To(Equal(tt.tokenFor))
		})
	}
}

func TestGoogleSTS_SubjectTokenExpiryOnSTSClock(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)

	f := gcpStartFederation(t, fakes.GCPSTSOptions{})
	subjectToken, err := f.issuer.Sign("apps", "podinfo", []string{gcpTestPool}, 10*time.Minute)
	g.Expect(err).NotTo(HaveOccurred())

	// The exchange works through exp (go-jose's inclusive bound, no leeway)
	// and fails one second later.
	f.clock.Advance(10 * time.Minute)
	ts, err := f.impl.NewTokenSource(context.Background(), gcpUpstreamConfig(gcpTestGKEAud, subjectToken, ""))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = ts.Token()
	g.Expect(err).NotTo(HaveOccurred())

	f.clock.Advance(time.Second)
	ts, err = f.impl.NewTokenSource(context.Background(), gcpUpstreamConfig(gcpTestGKEAud, subjectToken, ""))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = ts.Token()
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).To(ContainSubstring(`"error":"invalid_grant"`))
	g.Expect(err.Error()).To(ContainSubstring("expired"))
	g.Expect(f.sts.Exchanges()).To(BeEquivalentTo(1))
}

func TestGoogleSTS_FederatedTokenExpiresOnIAMClock(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)

	f := gcpStartFederation(t, fakes.GCPSTSOptions{TTL: 10 * time.Minute})
	subject := fakes.ServiceAccountSubject("apps", "podinfo")
	f.iam.AllowImpersonation(fakes.FederatedPrincipal(gcpTestGKEAud, subject), gcpTestTenantSA)

	ts, err := f.impl.NewTokenSource(context.Background(),
		gcpUpstreamConfig(gcpTestGKEAud, f.sign(t, "apps", "podinfo", gcpTestPool), ""))
	g.Expect(err).NotTo(HaveOccurred())
	fed, err := ts.Token()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fed.Expiry).To(BeTemporally("~", time.Now().Add(10*time.Minute), time.Minute))

	_, err = gcpGenerate(t, f.iam, fed.AccessToken, gcpTestTenantSA,
		&iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}})
	g.Expect(err).NotTo(HaveOccurred())

	f.clock.Advance(10 * time.Minute)
	_, err = gcpGenerate(t, f.iam, fed.AccessToken, gcpTestTenantSA,
		&iamcredentials.GenerateAccessTokenRequest{Scope: []string{gcpScopeCloudPlatform}})
	g.Expect(gcpDecodeAPIError(t, err).Reason).To(Equal("ACCESS_TOKEN_EXPIRED"))
}

func TestGoogleSTS_RawProtocol(t *testing.T) {
	t.Parallel()

	f := gcpStartFederation(t, fakes.GCPSTSOptions{})
	subjectToken := f.sign(t, "apps", "podinfo", gcpTestPool)
	valid := func() url.Values {
		return url.Values{
			"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
			"subject_token_type":   {"urn:ietf:params:oauth:token-type:jwt"},
			"subject_token":        {subjectToken},
			"audience":             {gcpTestGKEAud},
			"scope":                {gcpScopeCloudPlatform},
		}
	}
	tests := []struct {
		name      string
		method    string
		edit      func(v url.Values)
		wantCode  int
		wantError string
	}{
		{name: "valid exchange", method: http.MethodPost, wantCode: 200},
		{name: "id_token subject type", method: http.MethodPost, wantCode: 200,
			edit: func(v url.Values) { v.Set("subject_token_type", "urn:ietf:params:oauth:token-type:id_token") }},
		{name: "GET", method: http.MethodGet, wantCode: 405, wantError: "invalid_request"},
		{name: "client credentials grant", method: http.MethodPost, wantCode: 400, wantError: "unsupported_grant_type",
			edit: func(v url.Values) { v.Set("grant_type", "client_credentials") }},
		{name: "refresh token requested", method: http.MethodPost, wantCode: 400, wantError: "invalid_request",
			edit: func(v url.Values) { v.Set("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token") }},
		{name: "SAML subject type", method: http.MethodPost, wantCode: 400, wantError: "invalid_request",
			edit: func(v url.Values) { v.Set("subject_token_type", "urn:ietf:params:oauth:token-type:saml2") }},
		{name: "no subject token", method: http.MethodPost, wantCode: 400, wantError: "invalid_request",
			edit: func(v url.Values) { v.Del("subject_token") }},
		{name: "no audience", method: http.MethodPost, wantCode: 400, wantError: "invalid_request",
			edit: func(v url.Values) { v.Del("audience") }},
		{name: "unknown audience", method: http.MethodPost, wantCode: 400, wantError: "invalid_target",
			edit: func(v url.Values) { v.Set("audience", "identitynamespace:other.svc.id.goog:https://x") }},
		{name: "subject token not a JWT", method: http.MethodPost, wantCode: 400, wantError: "invalid_grant",
			edit: func(v url.Values) { v.Set("subject_token", "not-a-jwt") }},
		{name: "subject token from another issuer", method: http.MethodPost, wantCode: 400, wantError: "invalid_grant",
			edit: func(v url.Values) {
				other, _ := fakes.NewIssuer("https://kubernetes.default.svc")
				tok, _ := other.Sign("apps", "podinfo", []string{gcpTestPool}, time.Hour)
				v.Set("subject_token", tok)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			form := valid()
			if tt.edit != nil {
				tt.edit(form)
			}
			req, err := http.NewRequest(tt.method, f.sts.URL+"/v1/token", strings.NewReader(form.Encode()))
			g.Expect(err).NotTo(HaveOccurred())
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			g.Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			var body map[string]any
			g.Expect(json.NewDecoder(resp.Body).Decode(&body)).To(Succeed())
			g.Expect(resp.StatusCode).To(Equal(tt.wantCode))
			if tt.wantError != "" {
				g.Expect(body).To(HaveKeyWithValue("error", tt.wantError))
				g.Expect(body["error_description"]).NotTo(BeEmpty())
				if st := form.Get("subject_token"); st != "" {
					g.Expect(body["error_description"]).NotTo(ContainSubstring(st))
				}
				return
			}
			g.Expect(body).To(HaveKeyWithValue("issued_token_type", "urn:ietf:params:oauth:token-type:access_token"))
			g.Expect(body).To(HaveKeyWithValue("token_type", "Bearer"))
			g.Expect(body).To(HaveKeyWithValue("expires_in", BeNumerically("==", 3600)))
			g.Expect(body).To(HaveKeyWithValue("access_token", HavePrefix("ya29.")))
		})
	}
}

func TestGoogleSTS_Introspect(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)

	f := gcpStartFederation(t, fakes.GCPSTSOptions{})
	tok, expiry := f.iam.IssueToken(gcpTestControllerSA)
	introspect := func(token string) map[string]any {
		resp, err := http.PostForm(f.sts.URL+"/v1/introspect", url.Values{"token": {token}})
		g.Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
		var body map[string]any
		g.Expect(json.NewDecoder(resp.Body).Decode(&body)).To(Succeed())
		return body
	}
	g.Expect(introspect(tok)).To(Equal(map[string]any{
		"active": true, "scope": gcpScopeCloudPlatform, "username": gcpTestControllerSA, "exp": float64(expiry.Unix()),
	}))
	g.Expect(introspect("ya29.unknown")).To(Equal(map[string]any{"active": false}))
	f.clock.Advance(time.Hour)
	g.Expect(introspect(tok)).To(Equal(map[string]any{"active": false}))
}

func TestFederatedPrincipal(t *testing.T) {
	t.Parallel()
	subject := fakes.ServiceAccountSubject("flux-system", "source-controller")
	tests := []struct {
		name     string
		audience string
		subject  string
		want     string
	}{
		{
			name:     "GKE identity namespace",
			audience: gcpTestGKEAud,
			subject:  subject,
			want:     "principal://iam.googleapis.com/projects/-/locations/global/workloadIdentityPools/flux-test-project.svc.id.goog/subject/ns/flux-system/sa/source-controller",
		},
		{
			name:     "GKE identity namespace, subject not a service account",
			audience: gcpTestGKEAud,
			subject:  "alice",
			want:     "principal://iam.googleapis.com/projects/-/locations/global/workloadIdentityPools/flux-test-project.svc.id.goog/subject/alice",
		},
		{
			name:     "workload identity provider",
			audience: gcpTestWIFAud,
			subject:  subject,
			want:     "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/flux/subject/system:serviceaccount:flux-system:source-controller",
		},
		{
			name:     "anything else",
			audience: "https://example.com",
			subject:  subject,
			want:     "principal:https://example.com/subject/system:serviceaccount:flux-system:source-controller",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			g.Expect(fakes.FederatedPrincipal(tt.audience, tt.subject)).To(Equal(tt.want))
		})
	}
}

func TestGoogleSTS_Concurrent(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)

	f := gcpStartFederation(t, fakes.GCPSTSOptions{})
	const workers, perWorker = 16, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("sa-%d", w)
			f.sts.AllowAudience(gcpTestGKEAud) // concurrent writes to the audience set
			want := fakes.FederatedPrincipal(gcpTestGKEAud, fakes.ServiceAccountSubject("apps", name))
			for range perWorker {
				ts, err := f.impl.NewTokenSource(context.Background(),
					gcpUpstreamConfig(gcpTestGKEAud, f.sign(t, "apps", name, gcpTestPool), ""))
				if err != nil {
					errs <- err
					continue
				}
				tok, err := ts.Token()
				if err != nil {
					errs <- err
					continue
				}
				if who, _ := f.iam.WhoAmI(tok.AccessToken); who != want {
					errs <- fmt.Errorf("token of %s belongs to %q", name, who)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	g.Expect(f.sts.Exchanges()).To(BeEquivalentTo(workers * perWorker))
}
