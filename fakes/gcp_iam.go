package fakes

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// gcpCloudPlatformScope and gcpIAMScope are the OAuth scopes that let a
// bearer token call iamcredentials.googleapis.com; Google refuses any other
// token with ACCESS_TOKEN_SCOPE_INSUFFICIENT before looking at the request.
const (
	gcpCloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"
	gcpIAMScope           = "https://www.googleapis.com/auth/iam"
)

// gcpDefaultLifetime is what generateAccessToken grants when the request
// names no lifetime, and the longest it grants without the
// constraints/iam.allowServiceAccountCredentialLifetimeExtension org policy.
const gcpDefaultLifetime = time.Hour

// GCPIAMCredentialsOptions configures StartGCPIAMCredentials. The zero value is
// valid.
type GCPIAMCredentialsOptions struct {
	// Latency delays every generateAccessToken answer, so benchmarks and
	// cache tests see a realistic round trip. Optional. Defaults to none.
	Latency time.Duration
	// TTL, when set, is the lifetime of every token this fake mints, for
	// IssueToken and generateAccessToken alike, overriding the lifetime a
	// request asks for. Optional. Defaults to one hour for IssueToken and to
	// the requested lifetime for generateAccessToken.
	TTL time.Duration
	// MaxLifetime is the longest lifetime generateAccessToken accepts; longer
	// requests fail with INVALID_ARGUMENT as they do on Google. Optional.
	// Defaults to one hour (Google's limit without the lifetime-extension org
	// policy); set 12h to model that policy.
	MaxLifetime time.Duration
	// Now is the clock that stamps and checks token expiry. Optional.
	// Defaults to time.Now. Share it with GCPSTSOptions.Now (the default
	// there) so federated tokens expire on the same clock.
	Now func() time.Time
}

// GCPIAMCall is one generateAccessToken request as the fake saw it, recorded
// whether it succeeded or not. It holds no token.
type GCPIAMCall struct {
	// Target is the email of the service account whose token was asked for.
	Target string
	// Caller is the principal the bearer token belongs to, or "" when the
	// token was missing, unknown or expired.
	Caller string
	// Delegates are the emails of the delegation chain, in request order.
	Delegates []string
	// Scopes are the scopes asked for.
	Scopes []string
	// Lifetime is the lifetime asked for, verbatim (e.g. "3600s").
	Lifetime string
	// Err is "" on success, otherwise the Google status of the refusal:
	// "UNAUTHENTICATED", "PERMISSION_DENIED" or "INVALID_ARGUMENT". Requests
	// for other paths or methods are not generateAccessToken calls and are
	// not recorded.
	Err string
}

// IAMCredentials is a fake of iamcredentials.googleapis.com serving
// POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken on
// 127.0.0.1.
//
// It checks what Google checks: the bearer token is one this fake minted
// (IssueToken, the GCPSTS, the Metadata server or an earlier
// generateAccessToken) and has not expired (401 UNAUTHENTICATED); the token
// carries the cloud-platform or iam scope (403 PERMISSION_DENIED, reason
// ACCESS_TOKEN_SCOPE_INSUFFICIENT); the request names scopes and a lifetime
// within MaxLifetime (400 INVALID_ARGUMENT); and the caller holds
// roles/iam.serviceAccountTokenCreator on the target, through every delegate
// (403 PERMISSION_DENIED). A target nobody was granted on does not exist, and
// Google answers that with the same 403.
//
// Tokens are opaque random strings; they never appear in errors, logs or
// recorded calls.
//
// IAMCredentials is safe for concurrent use.
type GCPIAMCredentials struct {
	// URL is the base URL of the fake, e.g. "http://127.0.0.1:41234". The Go
	// client wants it with a trailing slash: option.WithEndpoint(URL + "/").
	URL string

	srv         *httptest.Server
	faults      *faultSet // its closed channel also ends Latency waits
	latency     time.Duration
	ttl         time.Duration
	maxLifetime time.Duration
	now         func() time.Time

	// mu guards tokens, grants, calls and pruneAt.
	mu     sync.Mutex
	tokens map[string]gcpToken
	grants map[gcpGrant]struct{}
	calls  []GCPIAMCall
	// pruneAt is the token count at which expired tokens are next dropped,
	// so benchmarks that mint millions of tokens do not grow without bound.
	pruneAt int
}

// gcpToken is what the fake remembers about an access token it minted.
type gcpToken struct {
	principal string
	scopes    []string
	expiry    time.Time
}

// gcpGrant is roles/iam.serviceAccountTokenCreator for principal on target.
type gcpGrant struct{ principal, target string }

// StartGCPIAMCredentials starts the fake on 127.0.0.1. Close it when done.
func StartGCPIAMCredentials(opts GCPIAMCredentialsOptions) *GCPIAMCredentials {
	c := &GCPIAMCredentials{
		latency:     opts.Latency,
		ttl:         opts.TTL,
		maxLifetime: opts.MaxLifetime,
		now:         opts.Now,
		faults:      newFaultSet(),
		tokens:      make(map[string]gcpToken),
		grants:      make(map[gcpGrant]struct{}),
		pruneAt:     1024,
	}
	if c.maxLifetime <= 0 {
		c.maxLifetime = gcpDefaultLifetime
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serveHTTP))
	c.URL = c.srv.URL
	return c
}

// Close shuts the server down. Requests waiting out Latency are answered
// with an error at once instead of holding Close up, and requests hung by an
// injected Hang are dropped.
func (c *GCPIAMCredentials) Close() {
	c.faults.close()
	c.srv.Close()
}

// InjectFault makes f apply to the requests that arrive from now on, after
// the faults injected before it: the first one that applies to a request
// wins. OnlyFor takes the URL path of one service account's
// generateAccessToken,
// "/v1/projects/-/serviceAccounts/<email>:generateAccessToken", so a fault
// can hit one target of a chain. InjectFault panics for the zero Fault or
// another path.
func (c *GCPIAMCredentials) InjectFault(f Fault) *InjectedFault {
	if _, _, ok := gcpParseSAPath(f.only); f.only != "" && !ok {
		panic("fakes: GCPIAMCredentials.InjectFault: unknown operation '" + f.only +
			"': want /v1/projects/-/serviceAccounts/<email>:generateAccessToken")
	}
	return c.faults.inject(f)
}

// Attempts returns how many HTTP requests reached the fake, whatever their
// path or outcome, those answered by an injected fault included.
func (c *GCPIAMCredentials) Attempts() int { return c.faults.count() }

// gcpIAMFaultReplies answers injected faults with Google's JSON error
// envelope, which the Go client decodes into *googleapi.Error.
var gcpIAMFaultReplies = faultReplies{
	throttle: func(w http.ResponseWriter) {
		gcpWriteError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "RATE_LIMIT_EXCEEDED",
			"Quota exceeded for quota metric 'Generate credentials requests' and limit 'Generate credentials requests per minute' of service 'iamcredentials.googleapis.com'.")
	},
	serverError: func(w http.ResponseWriter, status int) {
		gcpWriteError(w, status, gcpErrorStatus(status), "", "The service encountered an error.")
	},
	malformed: func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		_, _ = io.WriteString(w, `{"accessToken":"ya29.`)
	},
}

// IssueToken mints an access token that belongs to principal (a service
// account email or a federated principal, see FederatedPrincipal) with the
// cloud-platform scope, as if Google had issued it by other means. It
// returns the token and its expiry on the fake's clock.
func (c *GCPIAMCredentials) IssueToken(principal string) (token string, expiry time.Time) {
	return c.mint(principal, []string{gcpCloudPlatformScope}, c.lifetime(gcpDefaultLifetime))
}

// AllowImpersonation grants principal roles/iam.serviceAccountTokenCreator
// on the service account targetEmail. Grants are never revoked.
func (c *GCPIAMCredentials) AllowImpersonation(principal, targetEmail string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.grants[gcpGrant{principal: principal, target: targetEmail}] = struct{}{}
}

// Calls returns a copy of every generateAccessToken request, in arrival
// order.
func (c *GCPIAMCredentials) Calls() []GCPIAMCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]GCPIAMCall, len(c.calls))
	for i, call := range c.calls {
		call.Delegates = slices.Clone(call.Delegates)
		call.Scopes = slices.Clone(call.Scopes)
		out[i] = call
	}
	return out
}

// Count returns how many generateAccessToken requests arrived, refused ones
// included, those answered by an injected fault in place of the fake
// excepted (Attempts counts them).
func (c *GCPIAMCredentials) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

// WhoAmI returns the principal token belongs to. An expired token still
// answers: which identity a token is does not change when it expires.
func (c *GCPIAMCredentials) WhoAmI(token string) (principal string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tokens[token]
	return t.principal, ok
}

// lifetime applies the TTL override to the lifetime a caller asked for.
func (c *GCPIAMCredentials) lifetime(requested time.Duration) time.Duration {
	if c.ttl > 0 {
		return c.ttl
	}
	return requested
}

// mint creates and remembers a token for principal. Expiry is truncated to
// the second because generateAccessToken reports it in RFC 3339 seconds,
// and the token must expire exactly when its holder was told.
func (c *GCPIAMCredentials) mint(principal string, scopes []string, lifetime time.Duration) (string, time.Time) {
	return c.register(principal, scopes, c.now().Add(lifetime).Truncate(time.Second))
}

// register remembers a token minted elsewhere (the GCPSTS stamps expiry
// on its own clock) so generateAccessToken accepts it as a bearer.
func (c *GCPIAMCredentials) register(principal string, scopes []string, expiry time.Time) (string, time.Time) {
	token := gcpRandomToken()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.tokens) >= c.pruneAt {
		now := c.now()
		for k, t := range c.tokens {
			if !now.Before(t.expiry) {
				delete(c.tokens, k)
			}
		}
		c.pruneAt = 2*len(c.tokens) + 1024
	}
	c.tokens[token] = gcpToken{principal: principal, scopes: slices.Clone(scopes), expiry: expiry}
	return token, expiry
}

// lookup returns the token's record if it is known and unexpired, and
// otherwise the ErrorInfo reason Google gives for the 401.
func (c *GCPIAMCredentials) lookup(token string) (gcpToken, string) {
	if token == "" {
		return gcpToken{}, "CREDENTIALS_MISSING"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tokens[token]
	switch {
	case !ok:
		return gcpToken{}, "ACCESS_TOKEN_TYPE_UNSUPPORTED"
	case !c.now().Before(t.expiry):
		return gcpToken{}, "ACCESS_TOKEN_EXPIRED"
	}
	return t, ""
}

// mayImpersonate walks caller → delegates... → target and requires
// serviceAccountTokenCreator at every hop, as Google does for delegation.
func (c *GCPIAMCredentials) mayImpersonate(caller string, delegates []string, target string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	from := caller
	for _, hop := range append(slices.Clone(delegates), target) {
		if _, ok := c.grants[gcpGrant{principal: from, target: hop}]; !ok {
			return false
		}
		from = hop
	}
	return true
}

func (c *GCPIAMCredentials) record(call GCPIAMCall) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, call)
}

// gcpGenerateAccessTokenRequest is the body of generateAccessToken; unknown
// fields are refused as Google refuses them.
type gcpGenerateAccessTokenRequest struct {
	Delegates []string `json:"delegates"`
	Scope     []string `json:"scope"`
	Lifetime  string   `json:"lifetime"`
}

const (
	gcpSAPathPrefix   = "/v1/projects/"
	gcpGenerateSuffix = ":generateAccessToken"
)

func (c *GCPIAMCredentials) serveHTTP(w http.ResponseWriter, r *http.Request) {
	c.faults.attempt()
	body, readErr := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if !gcpSleep(r, c.faults.closed, c.latency) {
		gcpWriteError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "", "The service is currently unavailable.")
		return
	}
	project, email, ok := gcpParseSAPath(r.URL.Path)
	fault := c.faults.take(r.URL.Path, ok)
	if c.faults.answer(w, r, fault, gcpIAMFaultReplies) {
		return
	}
	if !ok {
		gcpWriteError(w, http.StatusNotFound, "NOT_FOUND", "", "The requested URL was not found on this server.")
		return
	}
	if r.Method != http.MethodPost {
		gcpWriteError(w, http.StatusMethodNotAllowed, "INVALID_ARGUMENT", "", "generateAccessToken requires POST.")
		return
	}

	call := GCPIAMCall{Target: email}
	fail := func(code int, status, reason, message string) {
		call.Err = status
		c.record(call)
		gcpWriteError(w, code, status, reason, message)
	}

	// The request is decoded before any check so that refused calls are
	// recorded in full; a decoding error is reported after authentication,
	// as Google does.
	var req gcpGenerateAccessTokenRequest
	err := readErr
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err = dec.Decode(&req)
	}
	call.Delegates = gcpDelegateEmails(req.Delegates)
	call.Scopes = slices.Clone(req.Scope)
	call.Lifetime = req.Lifetime

	src, reason := c.lookup(gcpBearer(r))
	if reason != "" {
		fail(http.StatusUnauthorized, "UNAUTHENTICATED", reason,
			"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
		return
	}
	call.Caller = src.principal

	if !slices.Contains(src.scopes, gcpCloudPlatformScope) && !slices.Contains(src.scopes, gcpIAMScope) {
		fail(http.StatusForbidden, "PERMISSION_DENIED", "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
			"Request had insufficient authentication scopes.")
		return
	}
	if err != nil {
		fail(http.StatusBadRequest, "INVALID_ARGUMENT", "", "Invalid JSON payload received.")
		return
	}
	if project != "-" {
		fail(http.StatusBadRequest, "INVALID_ARGUMENT", "",
			"The project in the resource name must be the wildcard '-': projects/-/serviceAccounts/{email}.")
		return
	}
	if len(req.Scope) == 0 {
		fail(http.StatusBadRequest, "INVALID_ARGUMENT", "", "Scope required.")
		return
	}
	lifetime, ok := gcpParseLifetime(req.Lifetime)
	if !ok || lifetime > c.maxLifetime {
		fail(http.StatusBadRequest, "INVALID_ARGUMENT", "", fmt.Sprintf(
			"The lifetime requested is not valid. Please provide a lifetime between 1s and %ds.",
			int64(c.maxLifetime/time.Second)))
		return
	}
	if !c.mayImpersonate(src.principal, call.Delegates, email) {
		fail(http.StatusForbidden, "PERMISSION_DENIED", "IAM_PERMISSION_DENIED",
			"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).")
		return
	}

	token, expiry := c.mint(email, req.Scope, fault.lifetime(c.lifetime(lifetime)))
	c.record(call)
	reply := map[string]string{"accessToken": token}
	if fault.emptiesCredentials() {
		reply["accessToken"] = ""
	}
	if exp, ok := fault.reportExpiry(expiry); ok {
		reply["expireTime"] = exp.UTC().Format(time.RFC3339)
	}
	gcpWriteJSON(w, http.StatusOK, reply)
}

// gcpParseSAPath splits "/v1/projects/{p}/serviceAccounts/{email}:generateAccessToken".
func gcpParseSAPath(path string) (project, email string, ok bool) {
	rest, ok := strings.CutPrefix(path, gcpSAPathPrefix)
	if !ok {
		return "", "", false
	}
	rest, ok = strings.CutSuffix(rest, gcpGenerateSuffix)
	if !ok {
		return "", "", false
	}
	project, email, ok = strings.Cut(rest, "/serviceAccounts/")
	if !ok || project == "" || email == "" || strings.Contains(email, "/") {
		return "", "", false
	}
	return project, email, true
}

// gcpDelegateEmails turns "projects/-/serviceAccounts/{email}" delegates into
// emails; Google accepts the full resource name only, so anything else is
// kept verbatim and will match no grant.
func gcpDelegateEmails(delegates []string) []string {
	if len(delegates) == 0 {
		return nil
	}
	out := make([]string, len(delegates))
	for i, d := range delegates {
		if email, ok := strings.CutPrefix(d, "projects/-/serviceAccounts/"); ok {
			out[i] = email
		} else {
			out[i] = d
		}
	}
	return out
}

// gcpParseLifetime parses a google.protobuf.Duration in its JSON form
// ("3600s", "1.5s"); empty means Google's default of one hour.
func gcpParseLifetime(s string) (time.Duration, bool) {
	if s == "" {
		return gcpDefaultLifetime, true
	}
	num, ok := strings.CutSuffix(s, "s")
	if !ok {
		return 0, false
	}
	secs, err := strconv.ParseFloat(num, 64)
	if err != nil || secs < 1 {
		return 0, false
	}
	return time.Duration(secs * float64(time.Second)), true
}

// gcpBearer returns the bearer token of r, or "".
func gcpBearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// gcpRandomToken returns an opaque access token shaped like Google's.
func gcpRandomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return "ya29.fake-" + base64.RawURLEncoding.EncodeToString(b)
}

// gcpSleep waits out the configured latency, giving up when the client does
// or the fake closes; it reports whether the handler should go on. The
// caller must have read the request body first: net/http notices a client
// hanging up (and cancels r.Context) only once the body is consumed.
func gcpSleep(r *http.Request, closed <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-closed:
	}
	return false
}

// gcpErrorStatus is the google.rpc status Google's front ends put in the
// JSON error envelope of a 5xx.
func gcpErrorStatus(code int) string {
	switch code {
	case http.StatusInternalServerError:
		return "INTERNAL"
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	return "UNKNOWN"
}

// gcpWriteError writes Google's JSON error envelope, which
// google.golang.org/api decodes into *googleapi.Error.
func gcpWriteError(w http.ResponseWriter, code int, status, reason, message string) {
	e := map[string]any{
		"code":    code,
		"message": message,
		"status":  status,
	}
	if reason != "" {
		e["details"] = []map[string]any{{
			"@type":  "type.googleapis.com/google.rpc.ErrorInfo",
			"reason": reason,
			"domain": "googleapis.com",
		}}
	}
	gcpWriteJSON(w, code, map[string]any{"error": e})
}

func gcpWriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client hung up; nothing to tell
}
