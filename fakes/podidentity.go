package fakes

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"time"
)

// awsPodIdentityPath is the path the real EKS Pod Identity agent serves
// credentials on (http://169.254.170.23/v1/credentials).
const awsPodIdentityPath = "/v1/credentials"

// PodIdentityAgent is a fake EKS Pod Identity agent: it hands credentials of
// one role, minted by a fake STS, to callers presenting the token from its
// token file, which is how the AWS SDK's container credential provider
// authenticates. Started with StartPodIdentityAgentWith, its sessions carry
// session tags, all transitive, as real Pod Identity sessions do: an
// AssumeRole called with them passes the tags on, which the target's trust
// must allow (AllowTagSession), and may not set those keys again.
//
// PodIdentityAgent is safe for concurrent use.
type PodIdentityAgent struct {
	// URL is the full credentials URL, for
	// AWS_CONTAINER_CREDENTIALS_FULL_URI.
	URL string

	server    *httptest.Server
	sts       *AWSSTS
	roleARN   string
	token     string
	tokenFile string
	// tags are the session tags of every session handed out, nil when
	// none; transitiveKeys are all their keys, sorted. Never modified.
	tags           map[string]string
	transitiveKeys []string
	requests       atomic.Int64
	faults         *faultSet
}

// awsPodIdentityResponse is the agent's JSON answer, as the SDK's
// endpointcreds client decodes it.
type awsPodIdentityResponse struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Token           string `json:"Token"`
	Expiration      string `json:"Expiration,omitempty"`
	AccountID       string `json:"AccountId"`
}

// awsPodIdentityError is the agent's JSON error, which the SDK surfaces as
// an EndpointError with this code and message.
type awsPodIdentityError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// PodIdentityAgentOptions configures StartPodIdentityAgentWith.
type PodIdentityAgentOptions struct {
	// SessionTags are the tags of every session the agent hands out, all
	// transitive. Optional: none without it. Real EKS Pod Identity sets
	// eks-cluster-arn, eks-cluster-name, kubernetes-namespace,
	// kubernetes-service-account, kubernetes-pod-name and
	// kubernetes-pod-uid. They must be tags STS would accept: at most 50,
	// keys and values of STS's lengths and characters, no key starting
	// with "aws:", no two keys equal ignoring case.
	SessionTags map[string]string
}

// StartPodIdentityAgent starts the agent on 127.0.0.1 serving credentials
// for roleARN from sts, without session tags. It writes a random
// authorization token to a temporary file (TokenFile); Close removes it.
func StartPodIdentityAgent(sts *AWSSTS, roleARN string) (*PodIdentityAgent, error) {
	return StartPodIdentityAgentWith(sts, roleARN, PodIdentityAgentOptions{})
}

// StartPodIdentityAgentWith is StartPodIdentityAgent with options: with
// SessionTags, every session it hands out carries them, all transitive.
func StartPodIdentityAgentWith(sts *AWSSTS, roleARN string, opts PodIdentityAgentOptions) (*PodIdentityAgent, error) {
	if sts == nil {
		return nil, fmt.Errorf("failed to start pod identity agent: an STS is required")
	}
	if _, _, ok := awsParseRoleARN(roleARN); !ok {
		return nil, fmt.Errorf("failed to start pod identity agent: invalid role ARN '%s'", roleARN)
	}
	tags, transitiveKeys, serr := awsTransitiveSessionTags(opts.SessionTags)
	if serr != nil {
		return nil, fmt.Errorf("failed to start pod identity agent: invalid session tags: %s", serr.message)
	}
	f, err := os.CreateTemp("", "fake-eks-pod-identity-token-*")
	if err != nil {
		return nil, fmt.Errorf("failed to create pod identity token file: %w", err)
	}
	token := rand.Text()
	// No trailing newline: the SDK sends the file content verbatim as the
	// Authorization header.
	_, werr := f.WriteString(token)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("failed to write pod identity token file: %w", errors.Join(werr, cerr))
	}

	a := &PodIdentityAgent{
		sts:            sts,
		roleARN:        roleARN,
		token:          token,
		tokenFile:      f.Name(),
		tags:           tags,
		transitiveKeys: transitiveKeys,
		faults:         newFaultSet(),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+awsPodIdentityPath, a.serveCredentials)
	a.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.faults.attempt()
		mux.ServeHTTP(w, r)
	}))
	a.URL = a.server.URL + awsPodIdentityPath
	return a, nil
}

// TokenFile returns the path of the file holding the authorization token,
// for AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.
func (a *PodIdentityAgent) TokenFile() string { return a.tokenFile }

// Requests returns how many credential requests were received, authorized
// or not, those answered by an injected fault included.
func (a *PodIdentityAgent) Requests() int64 { return a.requests.Load() }

// InjectFault makes f apply to the credential requests that arrive from now
// on, after the faults injected before it: the first one that applies to a
// request wins. The agent serves one operation, so OnlyFor, if used, must
// name its path, "/v1/credentials". InjectFault panics for the zero Fault or
// another operation.
func (a *PodIdentityAgent) InjectFault(f Fault) *InjectedFault {
	if f.only != "" && f.only != awsPodIdentityPath {
		panic("fakes: PodIdentityAgent.InjectFault: unknown operation '" + f.only + "': the agent serves " + awsPodIdentityPath)
	}
	return a.faults.inject(f)
}

// Attempts returns how many HTTP requests reached the agent, whatever their
// path or outcome, those answered by an injected fault included.
func (a *PodIdentityAgent) Attempts() int { return a.faults.count() }

// Close stops the agent and removes the token file. Requests hung by an
// injected Hang are dropped at once.
func (a *PodIdentityAgent) Close() {
	a.faults.close()
	a.server.Close()
	_ = os.Remove(a.tokenFile)
}

// awsPodIdentityFaultReplies answers injected faults as the agent fails: it
// reports errors in plain text (http.Error), 429 from its rate limiter.
var awsPodIdentityFaultReplies = faultReplies{
	throttle: func(w http.ResponseWriter) {
		http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
	},
	serverError: func(w http.ResponseWriter, status int) {
		http.Error(w, http.StatusText(status), status)
	},
	malformed: func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"AccessKeyId":"ASIA`)
	},
}

func (a *PodIdentityAgent) serveCredentials(w http.ResponseWriter, r *http.Request) {
	a.requests.Add(1)
	fault := a.faults.take(awsPodIdentityPath, true)
	if a.faults.answer(w, r, fault, awsPodIdentityFaultReplies) {
		return
	}
	got := r.Header.Get("Authorization")
	switch {
	case got == "":
		writePodIdentityJSON(w, http.StatusUnauthorized, awsPodIdentityError{"AccessDeniedException", "Authorization header is missing"})
		return
	case subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1:
		writePodIdentityJSON(w, http.StatusForbidden, awsPodIdentityError{"AccessDeniedException", "Authorization token is invalid"})
		return
	}
	creds := a.sts.issueSession(awsIssued{
		roleARN:        a.roleARN,
		sessionName:    awsIssuedSessionName,
		tags:           a.tags,
		transitiveKeys: a.transitiveKeys,
	}, fault.lifetime(a.sts.ttl))
	resp := awsPodIdentityResponse{
		AccessKeyID:     creds.AccessKeyID,
		SecretAccessKey: creds.SecretAccessKey,
		Token:           creds.SessionToken,
		AccountID:       creds.AccountID,
	}
	if fault.emptiesCredentials() {
		resp.AccessKeyID, resp.SecretAccessKey, resp.Token = "", "", ""
	}
	if exp, ok := fault.reportExpiry(creds.Expires); ok {
		resp.Expiration = exp.UTC().Format(time.RFC3339)
	}
	writePodIdentityJSON(w, http.StatusOK, resp)
}

func writePodIdentityJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
