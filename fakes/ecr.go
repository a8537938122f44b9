package fakes

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Operations of the fake ECR, named by their IAM actions: the Operation of
// an ECRCall and what ECR.InjectFault's OnlyFor takes.
const (
	ECRGetAuthorizationToken       = "ecr:GetAuthorizationToken"
	ECRPublicGetAuthorizationToken = "ecr-public:GetAuthorizationToken"
)

// The X-Amz-Target of the two operations, and the SigV4 signing names of
// their services.
var ecrOperations = map[string]struct{ op, service string }{
	"AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken": {ECRGetAuthorizationToken, "ecr"},
	"SpencerFrontendService.GetAuthorizationToken":               {ECRPublicGetAuthorizationToken, "ecr-public"},
}

// ecrPublicBearerTokenAction is the IAM action ECR Public's
// GetAuthorizationToken also needs the caller to be allowed.
const ecrPublicBearerTokenAction = "sts:GetServiceBearerToken"

// ecrDefaultTTL is the lifetime of real ECR authorization tokens.
const ecrDefaultTTL = 12 * time.Hour

// ecrUsername is the user name of every ECR login.
const ecrUsername = "AWS"

// ECROptions configures StartECR. The zero value is valid.
type ECROptions struct {
	// TTL is the lifetime of authorization tokens. Optional. Defaults to
	// 12 hours, as on ECR.
	TTL time.Duration
	// Now is the clock that stamps token expiry. Optional. Defaults to
	// time.Now.
	Now func() time.Time
}

// ECRCall is one GetAuthorizationToken request as the fake saw it, recorded
// whether it succeeded or not. It holds no token.
type ECRCall struct {
	// Operation is ECRGetAuthorizationToken or ECRPublicGetAuthorizationToken.
	Operation string
	// Caller is the role ARN of the credentials that signed the request,
	// or "" when the fake STS did not issue them.
	Caller string
	// Region is the region of the SigV4 credential scope, once parsed.
	Region string
	// Err is the AWS error code when refused, "" on success.
	Err string
}

// ECR is a fake of the GetAuthorizationToken operation of Amazon ECR and of
// Amazon ECR Public, serving both services' awsJson1_1 protocol on one
// loopback httptest server, told apart by X-Amz-Target: point
// ecr.Options.BaseEndpoint and ecrpublic.Options.BaseEndpoint at URL, or
// use AWSImplementation.WithECR.
//
// It checks what ECR checks: the request is SigV4-signed for the service
// ("ecr" or "ecr-public") with credentials the fake STS issued and that
// have not expired (UnrecognizedClientException, InvalidSignatureException,
// ExpiredTokenException…), the caller's role is allowed the operation
// (Allow, AllowPublic; otherwise AccessDeniedException), and so is the
// caller's session by its session policies, if AssumeRole gave it any
// (for ECR Public, sts:GetServiceBearerToken as well; otherwise
// AccessDeniedException "... because no session policy allows the
// <action> action"). The token it returns is base64 of "AWS:<password>"
// with an expiry, like ECR's; WhoAmI tells whose a password is, so a test
// can check that a registry login belongs to the identity it expects.
//
// ECR is safe for concurrent use.
type ECR struct {
	// URL is the base endpoint of both services.
	URL string

	sts    *AWSSTS
	srv    *httptest.Server
	faults *faultSet
	ttl    time.Duration
	now    func() time.Time

	// mu guards grants, logins and calls.
	mu sync.Mutex
	// grants maps an operation to the role ARNs allowed it.
	grants map[string]map[string]bool
	// logins maps a password to the assumed-role ARN it was issued to.
	logins map[string]string
	calls  []ECRCall
}

// StartECR starts a fake ECR on 127.0.0.1 accepting credentials issued by
// sts. Call Close when done.
func StartECR(sts *AWSSTS, opts ECROptions) *ECR {
	e := &ECR{
		sts:    sts,
		faults: newFaultSet(),
		ttl:    opts.TTL,
		now:    opts.Now,
		grants: map[string]map[string]bool{},
		logins: map[string]string{},
	}
	if e.ttl <= 0 {
		e.ttl = ecrDefaultTTL
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serveHTTP))
	e.URL = e.srv.URL
	return e
}

// Close shuts the server down, blocking until outstanding requests finish.
// Requests hung by an injected Hang are dropped at once.
func (e *ECR) Close() {
	e.faults.close()
	e.srv.Close()
}

// Allow lets credentials of roleARN call ECR's GetAuthorizationToken, like
// an IAM policy allowing ecr:GetAuthorizationToken on "*".
func (e *ECR) Allow(roleARN string) { e.grant(ECRGetAuthorizationToken, roleARN) }

// AllowPublic lets credentials of roleARN call ECR Public's
// GetAuthorizationToken, like an IAM policy allowing
// ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken.
func (e *ECR) AllowPublic(roleARN string) { e.grant(ECRPublicGetAuthorizationToken, roleARN) }

func (e *ECR) grant(op, roleARN string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	awsAddTrust(e.grants, op, roleARN)
}

// InjectFault makes f apply to the requests that arrive from now on, after
// the faults injected before it: the first one that applies to a request
// wins. OnlyFor takes ECRGetAuthorizationToken or
// ECRPublicGetAuthorizationToken. The bad successes alter the
// authorization token: ExpiredCredentials mints one already expired,
// MissingExpiry leaves expiresAt out, EmptyCredentials sends an empty
// authorizationToken and ClockSkew shifts expiresAt. InjectFault panics for
// the zero Fault or another operation.
func (e *ECR) InjectFault(f Fault) *InjectedFault {
	switch f.only {
	case "", ECRGetAuthorizationToken, ECRPublicGetAuthorizationToken:
	default:
		panic("fakes: ECR.InjectFault: unknown operation '" + f.only + "'")
	}
	return e.faults.inject(f)
}

// Attempts returns how many HTTP requests reached the fake, whatever their
// operation or outcome, those answered by an injected fault included.
func (e *ECR) Attempts() int { return e.faults.count() }

// Calls returns a copy of every GetAuthorizationToken request, in order.
// Requests answered by an injected fault in place of the fake are not
// recorded; Attempts counts them.
func (e *ECR) Calls() []ECRCall {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]ECRCall(nil), e.calls...)
}

// WhoAmI returns the assumed-role ARN
// (arn:aws:sts::<account>:assumed-role/<role>/<session>) of the caller a
// registry password was issued to, or false when the fake did not issue
// it. An expired password still answers.
func (e *ECR) WhoAmI(password string) (arn string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	arn, ok = e.logins[password]
	return arn, ok
}

func (e *ECR) record(c ECRCall) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, c)
}

func (e *ECR) allowed(op, roleARN string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.grants[op][roleARN]
}

type ecrAuthorizationData struct {
	AuthorizationToken string   `json:"authorizationToken"`
	ExpiresAt          *float64 `json:"expiresAt,omitempty"`
	ProxyEndpoint      string   `json:"proxyEndpoint,omitempty"`
}

func (e *ECR) serveHTTP(w http.ResponseWriter, r *http.Request) {
	e.faults.attempt()
	body, readErr := io.ReadAll(io.LimitReader(r.Body, awsSTSMaxBody))
	requestID := awsRequestID()
	target := ecrOperations[r.Header.Get("X-Amz-Target")]
	fault := e.faults.take(target.op, true)
	if e.faults.answer(w, r, fault, ecrFaultReplies(requestID)) {
		return
	}
	fail := func(err *awsError) { writeAWSJSONError(w, awsJSON11ContentType, requestID, err) }
	if target.op == "" || r.Method != http.MethodPost || r.URL.Path != "/" {
		fail(&awsError{http.StatusBadRequest, "UnknownOperationException", "Unknown operation"})
		return
	}

	call := ECRCall{Operation: target.op}
	refuse := func(serr *awsError) {
		call.Err = serr.code
		e.record(call)
		fail(serr)
	}
	caller, region, serr := e.sts.authenticateFor(r, body, target.service)
	call.Region = region
	if caller != nil {
		call.Caller = caller.roleARN
	}
	if serr != nil {
		refuse(awsJSONAuthError(serr))
		return
	}
	var input map[string]any
	if readErr != nil || json.Unmarshal(body, &input) != nil {
		refuse(&awsError{http.StatusBadRequest, "SerializationException", "Start of structure or map found where not expected."})
		return
	}
	user := awsAssumedRoleUser(caller.roleARN, caller.sessionName).Arn
	if !e.allowed(target.op, caller.roleARN) {
		refuse(&awsError{http.StatusBadRequest, "AccessDeniedException", "User: " + user +
			" is not authorized to perform: " + target.op + " on resource: * because no identity-based policy allows the " +
			target.op + " action"})
		return
	}
	// The session policies of the caller, if any, must allow the operation
	// too, and for ECR Public the sts:GetServiceBearerToken it makes on the
	// caller's behalf, which AllowPublic stands for in identity policies.
	actions := []string{target.op}
	if target.op == ECRPublicGetAuthorizationToken {
		actions = append(actions, ecrPublicBearerTokenAction)
	}
	for _, action := range actions {
		if why := caller.sessionPolicyRefusal(action, "*"); why != "" {
			refuse(&awsError{http.StatusBadRequest, "AccessDeniedException", "User: " + user +
				" is not authorized to perform: " + action + " on resource: *" + why})
			return
		}
	}

	password := awsRandom(awsBase64Alphabet, 64)
	expires := e.now().Add(fault.lifetime(e.ttl)).UTC().Truncate(time.Second)
	e.mu.Lock()
	e.logins[password] = user
	e.mu.Unlock()
	e.record(call)

	data := ecrAuthorizationData{
		AuthorizationToken: base64.StdEncoding.EncodeToString([]byte(ecrUsername + ":" + password)),
	}
	if fault.emptiesCredentials() {
		data.AuthorizationToken = ""
	}
	if t, ok := fault.reportExpiry(expires); ok {
		secs := float64(t.Unix())
		data.ExpiresAt = &secs
	}
	if target.op == ECRPublicGetAuthorizationToken {
		writeAWSJSON(w, awsJSON11ContentType, http.StatusOK, requestID, map[string]any{"authorizationData": data})
		return
	}
	account, _, _ := awsParseRoleARN(caller.roleARN)
	data.ProxyEndpoint = "https://" + account + ".dkr.ecr." + region + ".amazonaws.com"
	writeAWSJSON(w, awsJSON11ContentType, http.StatusOK, requestID, map[string]any{"authorizationData": []ecrAuthorizationData{data}})
}

// ecrFaultReplies answers injected faults as ECR fails: ThrottlingException,
// which the SDK retries by code, ServerException for 5xx, and JSON cut off
// before the token.
func ecrFaultReplies(requestID string) faultReplies {
	return faultReplies{
		throttle: func(w http.ResponseWriter) {
			writeAWSJSONError(w, awsJSON11ContentType, requestID, &awsError{http.StatusBadRequest, "ThrottlingException", "Rate exceeded"})
		},
		serverError: func(w http.ResponseWriter, status int) {
			writeAWSJSONError(w, awsJSON11ContentType, requestID, &awsError{status, "ServerException", "An internal error occurred."})
		},
		malformed: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", awsJSON11ContentType)
			w.Header().Set("X-Amzn-Requestid", requestID)
			_, _ = io.WriteString(w, `{"authorizationData":[{"authorizationToken":"QVdTOg`)
		},
	}
}
