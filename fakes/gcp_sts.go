package fakes

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RFC 8693 values that Google STS requires of a token exchange.
const (
	gcpGrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	gcpTokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
	gcpTokenTypeJWT       = "urn:ietf:params:oauth:token-type:jwt"
	gcpTokenTypeIDToken   = "urn:ietf:params:oauth:token-type:id_token"
)

// Audience shapes Google STS accepts for Kubernetes service account tokens.
const (
	// gcpGKEAudiencePrefix starts "identitynamespace:<pool>:<provider>", what
	// upstream builds from the GKE metadata server.
	gcpGKEAudiencePrefix = "identitynamespace:"
	// gcpWIFAudiencePrefix starts
	// "//iam.googleapis.com/projects/<num>/locations/global/workloadIdentityPools/<pool>/providers/<prov>",
	// what upstream builds from the workload-identity-provider annotation.
	gcpWIFAudiencePrefix = "//iam.googleapis.com/"
)

// GCPSTSOptions configures StartGCPSTS.
type GCPSTSOptions struct {
	// Issuer verifies subject tokens: signature, expiry and audience.
	// Required.
	Issuer *Issuer
	// IAM learns every federated token, so it accepts them as bearer tokens
	// and WhoAmI names their principal. Required.
	IAM *GCPIAMCredentials
	// Latency delays every answer. Optional. Defaults to none.
	Latency time.Duration
	// TTL is the lifetime of federated tokens. Optional. Defaults to one
	// hour, as Google does.
	TTL time.Duration
	// Now is the clock that checks subject token expiry and stamps the
	// expiry of federated tokens. Optional. Defaults to the IAM's clock, so
	// one injected clock drives both fakes.
	Now func() time.Time
}

// GCPSTS is a fake of sts.googleapis.com on 127.0.0.1: POST /v1/token
// exchanges a Kubernetes service account token for a federated access token
// (RFC 8693), and POST /v1/introspect reports on tokens (RFC 7662).
//
// A token exchange must carry grant_type token-exchange,
// requested_token_type access_token and subject_token_type jwt or id_token
// (400 invalid_request or unsupported_grant_type otherwise); its audience must
// have been allowed with AllowAudience (400 invalid_target, as Google answers
// for an unknown pool or provider); and the subject token must verify with
// the Issuer for the JWT audience that audience implies (400 invalid_grant).
// The federated token belongs to FederatedPrincipal(audience, subject).
//
// Error descriptions never contain a token.
//
// GCPSTS is safe for concurrent use.
type GCPSTS struct {
	// URL is the base URL of the fake, e.g. "http://127.0.0.1:41235".
	URL string

	srv     *httptest.Server
	faults  *faultSet // its closed channel also ends Latency waits
	issuer  *Issuer
	iam     *GCPIAMCredentials
	latency time.Duration
	ttl     time.Duration
	now     func() time.Time

	exchanges atomic.Int64

	// mu guards audiences.
	mu        sync.RWMutex
	audiences map[string]struct{}
}

// StartGCPSTS starts the fake on 127.0.0.1. Close it when done. It panics
// when a required option is missing, as a test fixture cannot work without
// them.
func StartGCPSTS(opts GCPSTSOptions) *GCPSTS {
	if opts.Issuer == nil {
		panic("fakes: GCPSTSOptions.Issuer is required")
	}
	if opts.IAM == nil {
		panic("fakes: GCPSTSOptions.IAM is required")
	}
	s := &GCPSTS{
		issuer:    opts.Issuer,
		iam:       opts.IAM,
		latency:   opts.Latency,
		ttl:       opts.TTL,
		now:       opts.Now,
		audiences: make(map[string]struct{}),
		faults:    newFaultSet(),
	}
	if s.ttl <= 0 {
		s.ttl = time.Hour
	}
	if s.now == nil {
		s.now = opts.IAM.now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/token", s.serveToken)
	mux.HandleFunc("/v1/introspect", s.serveIntrospect)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.faults.attempt()
		mux.ServeHTTP(w, r)
	}))
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down. Requests waiting out Latency are answered
// with an error at once instead of holding Close up, and requests hung by an
// injected Hang are dropped.
func (s *GCPSTS) Close() {
	s.faults.close()
	s.srv.Close()
}

// InjectFault makes f apply to the requests that arrive from now on, after
// the faults injected before it: the first one that applies to a request
// wins. OnlyFor takes a URL path, "/v1/token" or "/v1/introspect". The bad
// successes and MalformedBody apply to token exchanges (/v1/token) only.
// InjectFault panics for the zero Fault, another path, or a fault that
// could never apply.
func (s *GCPSTS) InjectFault(f Fault) *InjectedFault {
	switch f.only {
	case "", "/v1/token":
	case "/v1/introspect":
		if f.needsCredentials() {
			panic("fakes: " + f.String() + " can never apply: /v1/introspect returns no credentials")
		}
	default:
		panic("fakes: GCPSTS.InjectFault: unknown operation '" + f.only + "': want \"/v1/token\" or \"/v1/introspect\"")
	}
	return s.faults.inject(f)
}

// Attempts returns how many HTTP requests reached the fake, whatever their
// path or outcome, those answered by an injected fault included.
func (s *GCPSTS) Attempts() int { return s.faults.count() }

// gcpSTSFaultReplies answers injected faults the way Google's front end
// fails sts.googleapis.com: with Google's JSON error envelope, not the
// OAuth error shape of the service's own refusals.
var gcpSTSFaultReplies = faultReplies{
	throttle: func(w http.ResponseWriter) {
		gcpWriteError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "RATE_LIMIT_EXCEEDED",
			"Quota exceeded for quota metric 'Token exchange requests' and limit 'Token exchange requests per minute' of service 'sts.googleapis.com'.")
	},
	serverError: func(w http.ResponseWriter, status int) {
		gcpWriteError(w, status, gcpErrorStatus(status), "", "The service encountered an error.")
	},
	malformed: func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		_, _ = io.WriteString(w, `{"access_token":"ya29.`)
	},
}

// AllowAudience makes the fake accept exchanges for audience, the STS
// audience of a workload identity provider in either shape upstream sends:
//
//   - "//iam.googleapis.com/projects/<num>/locations/global/workloadIdentityPools/<pool>/providers/<prov>"
//     (the gcp.auth.fluxcd.io/workload-identity-provider annotation): the
//     subject token's aud must be this same string, which is what upstream
//     asks the Kubernetes API for.
//   - "identitynamespace:<project>.svc.id.goog:https://container.googleapis.com/v1/projects/<p>/locations/<l>/clusters/<n>"
//     (GKE): the subject token's aud must be the pool,
//     "<project>.svc.id.goog", as on GKE.
func (s *GCPSTS) AllowAudience(audience string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audiences[audience] = struct{}{}
}

// Exchanges returns how many token exchanges succeeded, those whose reply an
// injected bad success altered included.
func (s *GCPSTS) Exchanges() int64 { return s.exchanges.Load() }

func (s *GCPSTS) allowed(audience string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.audiences[audience]
	return ok
}

// FederatedPrincipal returns the IAM principal that Google STS gives the
// federated token of a Kubernetes service account, so tests can grant it
// roles with GCPIAMCredentials.AllowImpersonation and recognise it in WhoAmI.
// subject is the token's sub, "system:serviceaccount:<ns>:<name>".
//
// The forms follow Google's principal identifiers:
//
//   - WIF audience ".../workloadIdentityPools/<pool>/providers/<prov>":
//     "principal://iam.googleapis.com/projects/<num>/locations/global/workloadIdentityPools/<pool>/subject/<subject>"
//     (the default google.subject=assertion.sub mapping).
//   - GKE audience "identitynamespace:<pool>:<provider>":
//     "principal://iam.googleapis.com/projects/-/locations/global/workloadIdentityPools/<pool>/subject/ns/<ns>/sa/<name>".
//     Google puts the project number where "-" is; the fake STS does not know
//     it, and the pool name already identifies the project.
//   - any other audience: "principal:" + audience + "/subject/" + subject.
func FederatedPrincipal(audience, subject string) string {
	if pool, _, ok := gcpSplitGKEAudience(audience); ok {
		mapped := subject
		if ns, name, ok := gcpSplitKubeSubject(subject); ok {
			mapped = "ns/" + ns + "/sa/" + name
		}
		return "principal://iam.googleapis.com/projects/-/locations/global/workloadIdentityPools/" +
			pool + "/subject/" + mapped
	}
	if rest, ok := strings.CutPrefix(audience, gcpWIFAudiencePrefix); ok {
		if i := strings.LastIndex(rest, "/providers/"); i > 0 {
			return "principal://iam.googleapis.com/" + rest[:i] + "/subject/" + subject
		}
	}
	return "principal:" + audience + "/subject/" + subject
}

// gcpSplitGKEAudience splits "identitynamespace:<pool>:<provider>"; the
// provider is a URL and holds colons, the pool does not.
func gcpSplitGKEAudience(audience string) (pool, provider string, ok bool) {
	rest, ok := strings.CutPrefix(audience, gcpGKEAudiencePrefix)
	if !ok {
		return "", "", false
	}
	pool, provider, ok = strings.Cut(rest, ":")
	if !ok || pool == "" || provider == "" {
		return "", "", false
	}
	return pool, provider, true
}

// gcpSplitKubeSubject splits "system:serviceaccount:<ns>:<name>".
func gcpSplitKubeSubject(subject string) (ns, name string, ok bool) {
	rest, ok := strings.CutPrefix(subject, "system:serviceaccount:")
	if !ok {
		return "", "", false
	}
	ns, name, ok = strings.Cut(rest, ":")
	if !ok || ns == "" || name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	return ns, name, true
}

// gcpSubjectAudience is the aud a subject token must carry for an STS
// audience: GKE tokens are minted for the pool, WIF tokens for the
// provider's audience itself.
func gcpSubjectAudience(audience string) string {
	if pool, _, ok := gcpSplitGKEAudience(audience); ok {
		return pool
	}
	return audience
}

func (s *GCPSTS) serveToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	formErr := r.ParseForm()
	if !gcpSleep(r, s.faults.closed, s.latency) {
		gcpWriteOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The service is shutting down.")
		return
	}
	fault := s.faults.take(r.URL.Path, true)
	if s.faults.answer(w, r, fault, gcpSTSFaultReplies) {
		return
	}
	if r.Method != http.MethodPost {
		gcpWriteOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "The token endpoint requires POST.")
		return
	}
	if formErr != nil {
		gcpWriteOAuthError(w, http.StatusBadRequest, "invalid_request", "The request body is not a valid form.")
		return
	}
	f := r.PostForm
	switch {
	case f.Get("grant_type") != gcpGrantTokenExchange:
		gcpWriteOAuthError(w, http.StatusBadRequest, "unsupported_grant_type",
			fmt.Sprintf("Invalid value for \"grant_type\"; must be %q.", gcpGrantTokenExchange))
		return
	case f.Get("requested_token_type") != gcpTokenTypeAccess:
		gcpWriteOAuthError(w, http.StatusBadRequest, "invalid_request",
			fmt.Sprintf("Invalid value for \"requested_token_type\"; must be %q.", gcpTokenTypeAccess))
		return
	case f.Get("subject_token_type") != gcpTokenTypeJWT && f.Get("subject_token_type") != gcpTokenTypeIDToken:
		gcpWriteOAuthError(w, http.StatusBadRequest, "invalid_request",
			fmt.Sprintf("Invalid value for \"subject_token_type\"; must be %q or %q.", gcpTokenTypeJWT, gcpTokenTypeIDToken))
		return
	case f.Get("subject_token") == "":
		gcpWriteOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter \"subject_token\".")
		return
	case f.Get("audience") == "":
		gcpWriteOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter \"audience\".")
		return
	}
	audience := f.Get("audience")
	if !s.allowed(audience) {
		gcpWriteOAuthError(w, http.StatusBadRequest, "invalid_target",
			"The target service indicated by the \"audience\" parameters is invalid. "+
				"This might either be because the pool or provider is disabled or deleted or because it doesn't exist.")
		return
	}
	// Google's STS checks expiry on its own clock, not the cluster's.
	claims, err := s.issuer.verifyAt(f.Get("subject_token"), gcpSubjectAudience(audience), s.now())
	if err != nil {
		// The Issuer's reason names what failed (audience, expiry,
		// signature) and, by its contract, never the token.
		gcpWriteOAuthError(w, http.StatusBadRequest, "invalid_grant",
			"The subject token could not be verified: "+err.Error())
		return
	}

	scopes := strings.Fields(f.Get("scope"))
	lifetime := fault.lifetime(s.ttl)
	expiry := s.now().Add(lifetime).Truncate(time.Second)
	token, _ := s.iam.register(FederatedPrincipal(audience, claims.Subject), scopes, expiry)
	s.exchanges.Add(1)
	reply := map[string]any{
		"access_token":      token,
		"issued_token_type": gcpTokenTypeAccess,
		"token_type":        "Bearer",
	}
	if fault.emptiesCredentials() {
		reply["access_token"] = ""
	}
	if expiresIn, ok := fault.reportExpiresIn(lifetime); ok {
		reply["expires_in"] = expiresIn
	}
	gcpWriteJSON(w, http.StatusOK, reply)
}

// serveIntrospect is a minimal RFC 7662 endpoint; upstream only sets
// TokenInfoURL for gcloud's benefit and the Go libraries never call it, but a
// URL handed to a library should answer.
func (s *GCPSTS) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	formErr := r.ParseForm()
	if s.faults.answer(w, r, s.faults.take(r.URL.Path, false), gcpSTSFaultReplies) {
		return
	}
	if r.Method != http.MethodPost {
		gcpWriteOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "The introspection endpoint requires POST.")
		return
	}
	if formErr != nil || r.PostForm.Get("token") == "" {
		gcpWriteOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter \"token\".")
		return
	}
	t, reason := s.iam.lookup(r.PostForm.Get("token"))
	if reason != "" {
		gcpWriteJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	gcpWriteJSON(w, http.StatusOK, map[string]any{
		"active":   true,
		"scope":    strings.Join(t.scopes, " "),
		"username": t.principal,
		"exp":      t.expiry.Unix(),
	})
}

// gcpWriteOAuthError writes the OAuth 2.0 error shape Google STS uses.
func gcpWriteOAuthError(w http.ResponseWriter, code int, errCode, description string) {
	gcpWriteJSON(w, code, map[string]string{"error": errCode, "error_description": description})
}
