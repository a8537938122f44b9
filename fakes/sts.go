package fakes

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	signerv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// STS API version of the Query protocol; real STS refuses other versions.
const awsSTSVersion = "2011-06-15"

// awsSTSAudience is the audience EKS IRSA tokens carry and the only
// one the fake STS accepts, like an IAM OIDC provider registered with the
// client ID sts.amazonaws.com.
const awsSTSAudience = "sts.amazonaws.com"

// awsIssuedSessionName is the role session name of credentials minted by
// IssueCredentials, which have no AssumeRole request to take one from.
const awsIssuedSessionName = "fakes-issued"

// awsSTSMaxBody bounds request bodies; real STS requests are a few KiB.
const awsSTSMaxBody = 1 << 20

// AWSSTSOptions configures StartAWSSTS.
type AWSSTSOptions struct {
	// Issuer verifies the tokens of AssumeRoleWithWebIdentity. Required for
	// web identity: without it every such call fails with
	// InvalidIdentityToken, as when no IAM OIDC provider is registered.
	Issuer *Issuer
	// Latency is how long each STS call sleeps before it is handled,
	// returning early when the client goes away. Optional. Defaults to none.
	Latency time.Duration
	// TTL is the lifetime of issued credentials. Optional. Defaults to one
	// hour. A DurationSeconds request parameter may shorten it, never
	// lengthen it, so tests can use lifetimes below STS's 15-minute minimum.
	TTL time.Duration
	// Now is the clock for the expiry of issued credentials and of web
	// identity tokens. Optional. Defaults to time.Now. The SigV4 request
	// time (X-Amz-Date) is not checked against it, because the SDK signs
	// with the wall clock, so Now may run far from wall time.
	Now func() time.Time
}

// STS is a fake AWS Security Token Service serving the Query protocol on a
// loopback httptest server. It implements AssumeRoleWithWebIdentity,
// AssumeRole and GetCallerIdentity, checking what real STS checks, with its
// error codes and wording:
//
//   - the web identity token: signature, issuer, audience, expiry, and its
//     subject against the role's trust (AllowWebIdentity), which never
//     allows sts:SetSourceIdentity: a token with a source identity claim
//     is refused (AccessDenied);
//   - the SigV4 signature of AssumeRole and GetCallerIdentity against the
//     credentials the fake issued, and their expiry;
//   - the declared constraints of the parameters (ValidationError):
//     RoleArn, RoleSessionName, DurationSeconds (900 to 43200), ExternalId,
//     Policy, PolicyArns (at most 10), Tags (at most 50, keys and values of
//     STS's lengths and characters), TransitiveTagKeys and SourceIdentity
//     (2 to 64 of [\w+=,.@-], so never starting with "aws:");
//   - DurationSeconds against the session limit: one hour for AssumeRole,
//     which is always role chaining here, the role's MaxSessionDuration
//     (SetMaxSessionDuration) for web identity (ValidationError);
//   - session policies: Policy must be a policy document and PolicyArns
//     must name policies defined with DefineManagedPolicy
//     (MalformedPolicyDocument);
//   - session tags (InvalidParameterValue): no key starting with "aws:",
//     no two keys equal ignoring case, transitive keys among the requested
//     tags, and no requested key overriding a transitive tag inherited
//     from the calling session; at most 50 tags, inherited and requested
//     together (PackedPolicyTooLarge, a count standing in for STS's packed
//     size);
//   - source identity: one inherited from the calling session cannot be
//     changed (AccessDenied);
//   - authorization of AssumeRole (AccessDenied): the target's trust in
//     the caller's role (AllowAssumeRole) with its conditions on
//     ExternalId (RequireExternalID), request tags (RequireRequestTag) and
//     source identity (RequireSourceIdentity), sts:TagSession in that
//     trust (AllowTagSession) when the request passes tags or the caller
//     has transitive ones, sts:SetSourceIdentity (AllowSetSourceIdentity)
//     when the session gets a source identity, sent or inherited, and the
//     calling session's own session policies, which must allow
//     sts:AssumeRole, sts:TagSession when the request passes tags, and
//     sts:SetSourceIdentity when the session gets a source identity, on
//     the target.
//
// Sessions carry what AssumeRole gave them: their tags, inherited
// transitive ones included (SessionTags), their source identity, sent or
// inherited (SessionSourceIdentity), and their session policies, which
// restrict what the fake ECR and EKS let them do. GetCallerIdentity is
// never subject to session policies, as on AWS.
//
// STS is safe for concurrent use.
type AWSSTS struct {
	// URL is the base endpoint, for sts.Options.BaseEndpoint or
	// AWS_ENDPOINT_URL_STS.
	URL string

	server  *httptest.Server
	issuer  *Issuer
	latency time.Duration
	ttl     time.Duration
	now     func() time.Time
	signer  *signerv4.Signer
	faults  *faultSet

	// mu guards creds, webIdentityTrust, assumeRoleTrust, managedPolicies
	// and maxSessionDuration.
	mu sync.RWMutex
	// creds maps an access key ID to what was issued with it.
	creds map[string]awsIssued
	// webIdentityTrust maps a role ARN to the token subjects it trusts.
	webIdentityTrust map[string]map[string]bool
	// assumeRoleTrust maps a target role ARN to the source role ARNs it
	// trusts, each to the statements of the trust policy naming it.
	assumeRoleTrust map[string]map[string][]awsTrust
	// managedPolicies maps the ARN of a managed policy to its document.
	managedPolicies map[string]*awsPolicy
	// maxSessionDuration maps a role ARN to its MaxSessionDuration, when
	// set.
	maxSessionDuration map[string]time.Duration

	// callsMu guards calls.
	callsMu sync.Mutex
	calls   []AWSSTSCall
}

// awsIssued is what the fake remembers about issued credentials to
// authenticate requests signed with them.
type awsIssued struct {
	roleARN         string
	sessionName     string
	secretAccessKey string
	sessionToken    string
	expires         time.Time
	// tags are the session tags, inherited transitive ones included; nil
	// when none. Never modified once issued.
	tags map[string]string
	// transitiveKeys are the keys of tags passed on to the sessions this
	// one assumes, sorted.
	transitiveKeys []string
	// policies are the session policies; none when the session was not
	// given any.
	policies []*awsPolicy
	// sourceIdentity is the session's source identity, set by the
	// AssumeRole that created it or inherited from the session that
	// called it; "" when none.
	sourceIdentity string
}

// AWSSTSCall is one call received by the fake STS. The session parameters,
// from ExternalID to SourceIdentity, are recorded as sent for AssumeRole and
// AssumeRoleWithWebIdentity, refused calls included.
type AWSSTSCall struct {
	Action            string            // "AssumeRole" | "AssumeRoleWithWebIdentity" | "GetCallerIdentity"
	RoleARN           string            // target role requested
	RoleSessionName   string            // as sent
	Caller            string            // AssumeRole: role ARN owning the credentials that signed the request; web identity: JWT subject
	Region            string            // from the SigV4 credential scope (signed calls); empty for web identity
	Err               string            // AWS error code when refused, "" on success
	ExternalID        string            // ExternalId as sent
	DurationSeconds   int               // 0 when not sent
	Tags              map[string]string // Tags.member.N as sent (nil when none)
	TransitiveTagKeys []string          // as sent, in order
	PolicyARNs        []string          // PolicyArns.member.N.arn, in order
	Policy            string            // as sent
	SourceIdentity    string            // AssumeRole: SourceIdentity as sent; web identity: the token's https://aws.amazon.com/source_identity claim
	SessionTags       map[string]string // on success: the issued session's effective tags, inherited transitive ones included (nil when none)
}

// StartAWSSTS starts a fake STS on 127.0.0.1. Call Close when done.
func StartAWSSTS(opts AWSSTSOptions) *AWSSTS {
	s := &AWSSTS{
		issuer:             opts.Issuer,
		latency:            opts.Latency,
		ttl:                opts.TTL,
		now:                opts.Now,
		signer:             signerv4.NewSigner(),
		faults:             newFaultSet(),
		creds:              map[string]awsIssued{},
		webIdentityTrust:   map[string]map[string]bool{},
		assumeRoleTrust:    map[string]map[string][]awsTrust{},
		managedPolicies:    map[string]*awsPolicy{},
		maxSessionDuration: map[string]time.Duration{},
	}
	if s.ttl <= 0 {
		s.ttl = time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.server = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.server.URL
	return s
}

// Close shuts the server down, blocking until outstanding requests finish.
// Requests hung by an injected Hang are dropped at once.
func (s *AWSSTS) Close() {
	s.faults.close()
	s.server.Close()
}

// InjectFault makes f apply to the requests that arrive from now on, after
// the faults injected before it: the first one that applies to a request
// wins. OnlyFor takes an Action: "AssumeRole", "AssumeRoleWithWebIdentity"
// or "GetCallerIdentity". The bad successes and MalformedBody apply to
// AssumeRole and AssumeRoleWithWebIdentity only, whose replies carry
// credentials. InjectFault panics for the zero Fault, an unknown Action, or
// a fault that could never apply.
func (s *AWSSTS) InjectFault(f Fault) *InjectedFault {
	switch f.only {
	case "", "AssumeRole", "AssumeRoleWithWebIdentity":
	case "GetCallerIdentity":
		if f.needsCredentials() {
			panic("fakes: " + f.String() + " can never apply: GetCallerIdentity returns no credentials")
		}
	default:
		panic("fakes: AWSSTS.InjectFault: unknown Action '" + f.only + "'")
	}
	return s.faults.inject(f)
}

// Attempts returns how many HTTP requests reached the fake, whatever their
// action or outcome, those answered by an injected fault included.
func (s *AWSSTS) Attempts() int { return s.faults.count() }

// AllowWebIdentity lets tokens of the service account namespace/name assume
// roleARN through AssumeRoleWithWebIdentity, like an IAM trust policy with a
// sub condition.
func (s *AWSSTS) AllowWebIdentity(roleARN, namespace, serviceAccount string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	awsAddTrust(s.webIdentityTrust, roleARN, ServiceAccountSubject(namespace, serviceAccount))
}

// AllowAssumeRole lets credentials of sourceRoleARN assume targetRoleARN
// through AssumeRole, like a statement of the target's trust policy naming
// the source role; opts add conditions (RequireExternalID,
// RequireRequestTag, RequireSourceIdentity) or actions (AllowTagSession,
// AllowSetSourceIdentity) to the statement. Calling it again for the same roles
// adds another statement: a request is allowed when any statement allows
// it, as IAM evaluates trust policies.
func (s *AWSSTS) AllowAssumeRole(sourceRoleARN, targetRoleARN string, opts ...TrustOption) {
	var t awsTrust
	for _, opt := range opts {
		opt(&t)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.assumeRoleTrust[targetRoleARN] == nil {
		s.assumeRoleTrust[targetRoleARN] = map[string][]awsTrust{}
	}
	s.assumeRoleTrust[targetRoleARN][sourceRoleARN] = append(s.assumeRoleTrust[targetRoleARN][sourceRoleARN], t)
}

func awsAddTrust(m map[string]map[string]bool, role, principal string) {
	if m[role] == nil {
		m[role] = map[string]bool{}
	}
	m[role][principal] = true
}

// IssueCredentials mints credentials for roleARN that the fake accepts on
// signed calls until they expire after TTL. The Pod Identity agent uses it;
// tests use it to stand in for any other source of role credentials. Their
// role session name is "fakes-issued", which AccessDenied messages show.
//
// Issued credentials are remembered for the life of the STS.
func (s *AWSSTS) IssueCredentials(roleARN string) aws.Credentials {
	return s.issue(roleARN, awsIssuedSessionName, s.ttl)
}

func (s *AWSSTS) issue(roleARN, sessionName string, ttl time.Duration) aws.Credentials {
	return s.issueSession(awsIssued{roleARN: roleARN, sessionName: sessionName}, ttl)
}

// issueSession mints credentials for the session described by issued
// (role, name, tags and policies), valid for ttl.
func (s *AWSSTS) issueSession(issued awsIssued, ttl time.Duration) aws.Credentials {
	// STS reports expiry with second precision; keep the recorded expiry
	// identical to the reported one so clients and fake agree.
	expires := s.now().Add(ttl).UTC().Truncate(time.Second)
	issued.secretAccessKey = awsRandom(awsBase64Alphabet, 40)
	issued.sessionToken = awsRandom(awsBase64Alphabet, 356)
	issued.expires = expires
	roleARN := issued.roleARN
	s.mu.Lock()
	var akid string
	for {
		akid = "ASIA" + awsRandom(awsBase32Alphabet, 16)
		if _, taken := s.creds[akid]; !taken {
			break
		}
	}
	s.creds[akid] = issued
	s.mu.Unlock()

	account, _, _ := awsParseRoleARN(roleARN)
	return aws.Credentials{
		AccessKeyID:     akid,
		SecretAccessKey: issued.secretAccessKey,
		SessionToken:    issued.sessionToken,
		Source:          "fakes.AWSSTS",
		CanExpire:       true,
		Expires:         expires,
		AccountID:       account,
	}
}

// Calls returns a copy of every call received, in order. Calls abandoned by
// the client during Latency and calls answered by an injected fault in place
// of the fake are not recorded; Attempts counts them.
func (s *AWSSTS) Calls() []AWSSTSCall {
	s.callsMu.Lock()
	defer s.callsMu.Unlock()
	return append([]AWSSTSCall(nil), s.calls...)
}

// Count returns how many calls of action were received, successful or not,
// as Calls records them.
func (s *AWSSTS) Count(action string) int {
	s.callsMu.Lock()
	defer s.callsMu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Action == action {
			n++
		}
	}
	return n
}

func (s *AWSSTS) record(c AWSSTSCall) {
	s.callsMu.Lock()
	defer s.callsMu.Unlock()
	s.calls = append(s.calls, c)
}

func (s *AWSSTS) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.faults.attempt()
	body, err := io.ReadAll(io.LimitReader(r.Body, awsSTSMaxBody+1))
	if err != nil {
		return // the client went away
	}
	// Sleep only once the body is consumed: net/http notices a client
	// hanging up (and cancels r.Context) only after that.
	if s.latency > 0 {
		t := time.NewTimer(s.latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	requestID := awsRequestID()

	params := r.URL.Query()
	var formErr error
	if r.Method == http.MethodPost && len(body) <= awsSTSMaxBody {
		var form url.Values
		form, formErr = url.ParseQuery(string(body))
		for k, v := range form {
			params[k] = v
		}
	}
	call := AWSSTSCall{Action: params.Get("Action")}
	// Throttling and failures come before STS looks at the request.
	fault := s.faults.take(call.Action, awsCredentialAction(call.Action))
	if fault.answersInPlace() {
		s.faults.answer(w, r, fault, s.faultReplies(requestID, call.Action))
		return
	}

	if len(body) > awsSTSMaxBody {
		writeAWSError(w, requestID, &awsError{http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "Request body is too large."})
		return
	}
	if formErr != nil {
		writeAWSError(w, requestID, &awsError{http.StatusBadRequest, "MalformedQueryString", "The request body is not form-encoded."})
		return
	}

	var resp any
	var serr *awsError
	switch {
	case call.Action == "":
		serr = &awsError{http.StatusBadRequest, "MissingAction", "Missing Action"}
	case params.Get("Version") != awsSTSVersion:
		serr = &awsError{http.StatusBadRequest, "InvalidAction",
			"Could not find operation " + call.Action + " for version " + params.Get("Version")}
	case call.Action == "AssumeRoleWithWebIdentity":
		resp, serr = s.assumeRoleWithWebIdentity(params, requestID, fault, &call)
	case call.Action == "AssumeRole":
		resp, serr = s.assumeRole(r, body, params, requestID, fault, &call)
	case call.Action == "GetCallerIdentity":
		resp, serr = s.getCallerIdentity(r, body, requestID, &call)
	default:
		serr = &awsError{http.StatusBadRequest, "InvalidAction",
			"Could not find operation " + call.Action + " for version " + awsSTSVersion}
	}
	if serr != nil {
		call.Err = serr.code
	}
	s.record(call)

	if serr != nil {
		writeAWSError(w, requestID, serr)
		return
	}
	writeAWSXML(w, http.StatusOK, requestID, resp)
}

// awsCredentialAction reports whether action returns credentials.
func awsCredentialAction(action string) bool {
	return action == "AssumeRole" || action == "AssumeRoleWithWebIdentity"
}

// faultReplies answers injected faults the way STS fails: Throttling is a
// 400 (the SDK retries it by code), 5xx carry STS's common error codes, and
// a malformed reply is the start of the action's XML, cut off before any
// credential.
func (s *AWSSTS) faultReplies(requestID, action string) faultReplies {
	return faultReplies{
		throttle: func(w http.ResponseWriter) {
			writeAWSError(w, requestID, &awsError{http.StatusBadRequest, "Throttling", "Rate exceeded"})
		},
		serverError: func(w http.ResponseWriter, status int) {
			e := &awsError{status, "InternalFailure", "The request processing has failed because of an unknown error, exception or failure."}
			if status == http.StatusServiceUnavailable {
				e = &awsError{status, "ServiceUnavailable", "The request has failed due to a temporary failure of the server."}
			}
			writeAWSError(w, requestID, e)
		},
		malformed: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/xml")
			w.Header().Set("X-Amzn-Requestid", requestID)
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, xml.Header+`<`+action+`Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/">`+
				`<`+action+`Result><Credentials><AccessKeyId>ASIA`)
		},
	}
}

// awsError is an STS error response. Messages follow real STS wording and
// never hold secrets: no tokens, secret keys or session tokens.
type awsError struct {
	status  int
	code    string
	message string
}

type awsErrorResponse struct {
	XMLName   xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

func writeAWSError(w http.ResponseWriter, requestID string, e *awsError) {
	typ := "Sender"
	if e.status >= 500 {
		typ = "Receiver"
	}
	writeAWSXML(w, e.status, requestID, awsErrorResponse{Type: typ, Code: e.code, Message: e.message, RequestID: requestID})
}

func writeAWSXML(w http.ResponseWriter, status int, requestID string, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		// Only our own fixed response types are marshalled; failing here is
		// a bug in the fake, reported the way STS reports internal errors.
		status = http.StatusInternalServerError
		b = []byte(`<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>fake STS failed to encode its response</Message></Error></ErrorResponse>`)
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}

// Alphabets whose sizes divide 256, so that a random byte modulo the size is
// unbiased.
const (
	awsBase32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	awsBase64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

func awsRandom(alphabet string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// awsRequestID returns a UUID-shaped request ID like those of real STS.
func awsRequestID() string {
	h := []byte(awsRandom("0123456789abcdef", 32))
	return string(h[0:8]) + "-" + string(h[8:12]) + "-" + string(h[12:16]) + "-" + string(h[16:20]) + "-" + string(h[20:32])
}

// awsRoleID returns a stable, real-looking role ID ("AROA…") for roleARN:
// real role IDs are fixed per role and appear in AssumedRoleId.
func awsRoleID(roleARN string) string {
	sum := sha256.Sum256([]byte(roleARN))
	return "AROA" + base32.StdEncoding.EncodeToString(sum[:])[:17]
}
