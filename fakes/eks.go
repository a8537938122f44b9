package fakes

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

const awsRestJSONContentType = "application/json"

// eksDescribeClusterAction is the IAM action of DescribeCluster.
const eksDescribeClusterAction = "eks:DescribeCluster"

// eksAuthTimeout bounds the API servers' calls to the fake STS.
const eksAuthTimeout = 10 * time.Second

// eksClusterARNPattern is an EKS cluster ARN: region, account, name.
var eksClusterARNPattern = regexp.MustCompile(`^arn:aws[\w-]*:eks:([a-z]{2}(?:-[a-z]+)+-\d+):(\d{12}):cluster/([0-9A-Za-z][A-Za-z0-9\-_]{0,99})$`)

// EKSCall is one DescribeCluster request as the fake saw it, recorded
// whether it succeeded or not.
type EKSCall struct {
	// Name is the cluster name asked for.
	Name string
	// Caller is the role ARN of the credentials that signed the request,
	// or "" when the fake STS did not issue them.
	Caller string
	// Region is the region of the SigV4 credential scope, once parsed.
	Region string
	// Err is the AWS error code when refused, "" on success.
	Err string
}

// EKS is a fake of the DescribeCluster operation of Amazon EKS, serving its
// restJson1 protocol (GET /clusters/{name}) on a loopback httptest server:
// point eks.Options.BaseEndpoint at URL, or use AWSImplementation.WithEKS.
// Each cluster added has a fake API server (KubeAPIServer) whose URL and CA
// DescribeCluster returns.
//
// DescribeCluster checks what EKS checks: the request is SigV4-signed for
// "eks" with credentials the fake STS issued (UnrecognizedClientException,
// InvalidSignatureException, ExpiredTokenException…), and the caller's role
// may describe the cluster named, in the caller's own account and the
// region of the signature, as IAM resolves the cluster ARN
// (AccessDeniedException otherwise, for a cluster that does not exist as
// for one the role was not given), and the caller's session policies, if
// AssumeRole gave it any, allow eks:DescribeCluster on the cluster
// (AccessDeniedException "... because no session policy allows the
// eks:DescribeCluster action"). The bearer tokens below are not subject to
// session policies: GetCallerIdentity never is.
//
// The clusters' API servers authenticate the bearer tokens of EKS
// ("k8s-aws-v1." and a presigned STS GetCallerIdentity URL) as EKS does:
// they call the presigned URL at the fake STS, with the cluster's name in
// the x-k8s-aws-id header that the signature must cover, and take the
// identity STS answers with. Only roles given to AddCluster have an access
// entry; other identities are Unauthorized. The username is the
// assumed-role ARN (arn:aws:sts::<account>:assumed-role/<role>/<session>),
// the default of EKS access entries.
//
// EKS is safe for concurrent use.
type EKS struct {
	// URL is the base endpoint.
	URL string

	sts    *AWSSTS
	srv    *httptest.Server
	faults *faultSet
	// client calls the fake STS for the API servers' authenticators.
	client *http.Client

	// mu guards clusters and calls.
	mu       sync.Mutex
	clusters map[string]*eksCluster // by ARN
	calls    []EKSCall
}

type eksCluster struct {
	arn, name string
	// roles holds the canonical ARNs of the roles allowed the cluster.
	roles map[string]bool
	api   *KubeAPIServer
}

// StartEKS starts a fake EKS on 127.0.0.1 accepting credentials issued by
// sts. Call Close when done.
func StartEKS(sts *AWSSTS) *EKS {
	e := &EKS{
		sts:      sts,
		faults:   newFaultSet(),
		client:   &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: eksAuthTimeout},
		clusters: map[string]*eksCluster{},
	}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serveHTTP))
	e.URL = e.srv.URL
	return e
}

// Close shuts the fake and the API servers of its clusters down, blocking
// until outstanding requests finish. Requests hung by an injected Hang are
// dropped at once.
func (e *EKS) Close() {
	e.faults.close()
	e.srv.Close()
	e.mu.Lock()
	clusters := e.clusters
	e.mu.Unlock()
	for _, c := range clusters {
		c.api.close()
	}
	e.client.CloseIdleConnections()
}

// AddCluster creates the cluster clusterARN
// (arn:aws:eks:<region>:<account>:cluster/<name>) and starts its API
// server. roleARNs may describe it and have an access entry on it. It
// panics for an invalid ARN or a cluster added before.
func (e *EKS) AddCluster(clusterARN string, roleARNs ...string) *KubeAPIServer {
	m := eksClusterARNPattern.FindStringSubmatch(clusterARN)
	if m == nil {
		panic("fakes: EKS.AddCluster: invalid cluster ARN '" + clusterARN + "'")
	}
	c := &eksCluster{arn: clusterARN, name: m[3], roles: map[string]bool{}}
	for _, r := range roleARNs {
		c.roles[awsCanonicalRoleARN(r)] = true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.clusters[clusterARN]; ok {
		panic("fakes: EKS.AddCluster: cluster '" + clusterARN + "' exists")
	}
	c.api = startKubeAPIServer(func(r *http.Request, token string) (user kubeUserInfo, v kubeVerdict) {
		return e.authenticateToken(r, c, token)
	})
	e.clusters[clusterARN] = c
	return c.api
}

// InjectFault makes f apply to the DescribeCluster requests that arrive
// from now on, after the faults injected before it: the first one that
// applies to a request wins. OnlyFor takes the URL path of one cluster,
// "/clusters/<name>". The bad successes (ExpiredCredentials…) return no
// credentials here: InjectFault panics for them, for the zero Fault and
// for another path.
func (e *EKS) InjectFault(f Fault) *InjectedFault {
	if f.only != "" && !strings.HasPrefix(f.only, "/clusters/") {
		panic("fakes: EKS.InjectFault: unknown operation '" + f.only + "': want /clusters/<name>")
	}
	if f.needsCredentials() && f.kind != faultMalformed {
		panic("fakes: " + f.String() + " can never apply: DescribeCluster returns no credentials")
	}
	return e.faults.inject(f)
}

// Attempts returns how many HTTP requests reached the fake, whatever their
// path or outcome, those answered by an injected fault included.
func (e *EKS) Attempts() int { return e.faults.count() }

// Calls returns a copy of every DescribeCluster request, in order.
// Requests answered by an injected fault in place of the fake are not
// recorded; Attempts counts them.
func (e *EKS) Calls() []EKSCall {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]EKSCall(nil), e.calls...)
}

func (e *EKS) record(c EKSCall) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, c)
}

// cluster returns the cluster clusterARN if roleARN may use it.
func (e *EKS) cluster(clusterARN, roleARN string) (*eksCluster, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.clusters[clusterARN]
	if !ok || !c.roles[awsCanonicalRoleARN(roleARN)] {
		return nil, false
	}
	return c, true
}

type eksDescribeClusterOutput struct {
	Cluster eksClusterJSON `json:"cluster"`
}

type eksClusterJSON struct {
	Name                 string `json:"name"`
	Arn                  string `json:"arn"`
	Endpoint             string `json:"endpoint"`
	Status               string `json:"status"`
	CertificateAuthority struct {
		Data string `json:"data"`
	} `json:"certificateAuthority"`
}

func (e *EKS) serveHTTP(w http.ResponseWriter, r *http.Request) {
	e.faults.attempt()
	body, _ := io.ReadAll(io.LimitReader(r.Body, awsSTSMaxBody))
	requestID := awsRequestID()
	name, routed := strings.CutPrefix(r.URL.Path, "/clusters/")
	routed = routed && name != "" && !strings.Contains(name, "/")
	fault := e.faults.take(r.URL.Path, true)
	if e.faults.answer(w, r, fault, eksFaultReplies(requestID)) {
		return
	}
	fail := func(err *awsError) { writeAWSJSONError(w, awsRestJSONContentType, requestID, err) }
	if !routed || r.Method != http.MethodGet {
		fail(&awsError{http.StatusNotFound, "UnknownOperationException", "Unknown operation"})
		return
	}

	call := EKSCall{Name: name}
	refuse := func(serr *awsError) {
		call.Err = serr.code
		e.record(call)
		fail(serr)
	}
	caller, region, serr := e.sts.authenticateFor(r, body, "eks")
	call.Region = region
	if caller != nil {
		call.Caller = caller.roleARN
	}
	if serr != nil {
		refuse(awsJSONAuthError(serr))
		return
	}
	account, _, _ := awsParseRoleARN(caller.roleARN)
	clusterARN := "arn:aws:eks:" + region + ":" + account + ":cluster/" + name
	c, ok := e.cluster(clusterARN, caller.roleARN)
	if !ok {
		refuse(&awsError{http.StatusForbidden, "AccessDeniedException", "User: " +
			awsAssumedRoleUser(caller.roleARN, caller.sessionName).Arn +
			" is not authorized to perform: eks:DescribeCluster on resource: " + clusterARN})
		return
	}
	if why := caller.sessionPolicyRefusal(eksDescribeClusterAction, clusterARN); why != "" {
		refuse(&awsError{http.StatusForbidden, "AccessDeniedException", "User: " +
			awsAssumedRoleUser(caller.roleARN, caller.sessionName).Arn +
			" is not authorized to perform: " + eksDescribeClusterAction + " on resource: " + clusterARN + why})
		return
	}
	e.record(call)

	var out eksDescribeClusterOutput
	out.Cluster = eksClusterJSON{Name: c.name, Arn: c.arn, Endpoint: c.api.URL, Status: "ACTIVE"}
	out.Cluster.CertificateAuthority.Data = base64.StdEncoding.EncodeToString(c.api.CAData)
	writeAWSJSON(w, awsRestJSONContentType, http.StatusOK, requestID, out)
}

// eksFaultReplies answers injected faults as EKS fails: ThrottlingException,
// which the SDK retries by code, ServerException or
// ServiceUnavailableException for 5xx, and JSON cut off.
func eksFaultReplies(requestID string) faultReplies {
	return faultReplies{
		throttle: func(w http.ResponseWriter) {
			writeAWSJSONError(w, awsRestJSONContentType, requestID, &awsError{http.StatusTooManyRequests, "ThrottlingException", "Rate exceeded"})
		},
		serverError: func(w http.ResponseWriter, status int) {
			e := &awsError{status, "ServerException", "An internal error occurred."}
			if status == http.StatusServiceUnavailable {
				e = &awsError{status, "ServiceUnavailableException", "The service is unavailable."}
			}
			writeAWSJSONError(w, awsRestJSONContentType, requestID, e)
		},
		malformed: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", awsRestJSONContentType)
			w.Header().Set("X-Amzn-Requestid", requestID)
			_, _ = io.WriteString(w, `{"cluster":{"name":"`)
		},
	}
}

// eksTokenPrefix starts every EKS bearer token.
const eksTokenPrefix = "k8s-aws-v1."

// authenticateToken checks an EKS bearer token for cluster c as the EKS
// authenticator does: it must be a presigned GetCallerIdentity URL of the
// fake STS (no other URL is ever called) signed over the x-k8s-aws-id
// header, which carries the cluster's name; STS's answer to it names the
// user.
func (e *EKS) authenticateToken(r *http.Request, c *eksCluster, token string) (kubeUserInfo, kubeVerdict) {
	raw, ok := strings.CutPrefix(token, eksTokenPrefix)
	if !ok {
		return kubeUserInfo{}, kubeUnauthorized
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return kubeUserInfo{}, kubeUnauthorized
	}
	u, err := url.Parse(string(b))
	if err != nil || u.Scheme+"://"+u.Host != e.sts.URL || u.Path != "/" {
		return kubeUserInfo{}, kubeUnauthorized
	}
	q := u.Query()
	if q.Get("Action") != "GetCallerIdentity" || q.Get("X-Amz-Expires") == "" ||
		!strings.Contains(";"+q.Get("X-Amz-SignedHeaders")+";", ";x-k8s-aws-id;") {
		return kubeUserInfo{}, kubeUnauthorized
	}

	// Closing the fake ends the call, as it would drop the connection.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-e.faults.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return kubeUserInfo{}, kubeUnauthorized
	}
	req.Header.Set("x-k8s-aws-id", c.name)
	resp, err := e.client.Do(req)
	if err != nil {
		return kubeUserInfo{}, kubeUnauthorized
	}
	defer resp.Body.Close()
	var id awsGetCallerIdentityResponse
	if resp.StatusCode != http.StatusOK || xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&id) != nil {
		return kubeUserInfo{}, kubeUnauthorized
	}

	canonical := awsCanonicalRoleARN(id.Arn)
	user := kubeUserInfo{
		Username: id.Arn,
		UID:      "aws-iam-authenticator:" + id.Account + ":" + id.UserID,
		Groups:   []string{"system:authenticated"},
		Extra: map[string]kubeExtraValue{
			"arn":          {id.Arn},
			"canonicalArn": {canonical},
			"accessKeyId":  {strings.SplitN(q.Get("X-Amz-Credential"), "/", 2)[0]},
		},
	}
	if _, session, ok := strings.Cut(id.UserID, ":"); ok {
		user.Extra["sessionName"] = kubeExtraValue{session}
	}
	if !c.roles[canonical] {
		// EKS maps an IAM identity to a user only through its access entry.
		return user, kubeUnauthorized
	}
	return user, kubeAllowed
}
