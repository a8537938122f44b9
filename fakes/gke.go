package fakes

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// gkeClusterPattern is a GKE cluster name as clusters.get takes it.
var gkeClusterPattern = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/clusters/[^/]+$`)

// GKECall is one clusters.get request as the fake saw it, recorded whether
// it succeeded or not. It holds no token.
type GKECall struct {
	// Cluster is the cluster asked for: projects/<p>/locations/<l>/clusters/<c>.
	Cluster string
	// Caller is the principal the bearer token belongs to, or "" when the
	// token was missing, unknown or expired.
	Caller string
	// Err is "" on success, otherwise the Google status of the refusal:
	// "UNAUTHENTICATED" or "PERMISSION_DENIED".
	Err string
}

// GKE is a fake of the clusters.get method of the GKE API
// (container.googleapis.com, GET /v1/projects/{p}/locations/{l}/clusters/{c})
// on a loopback httptest server: set container.Service.BasePath to URL+"/",
// or use GCPImplementation.WithGKE. Each cluster added has a fake API server
// (KubeAPIServer) whose address and CA clusters.get returns, as
// endpoint and masterAuth.clusterCaCertificate.
//
// clusters.get checks what Google checks: the bearer token is one the fake
// IAMCredentials knows and has not expired (401 UNAUTHENTICATED), carries
// the cloud-platform scope (403 PERMISSION_DENIED, reason
// ACCESS_TOKEN_SCOPE_INSUFFICIENT), and its principal may get the cluster
// (403 PERMISSION_DENIED, for a cluster that does not exist as for one the
// principal was not given).
//
// The clusters' API servers take the same bearer tokens, as GKE does, and
// their username is the token's principal. Principals not given to
// AddCluster are Forbidden.
//
// GKE is safe for concurrent use.
type GKE struct {
	// URL is the base URL of the fake, e.g. "http://127.0.0.1:41234".
	URL string

	iam    *GCPIAMCredentials
	srv    *httptest.Server
	faults *faultSet

	// mu guards clusters and calls.
	mu       sync.Mutex
	clusters map[string]*gkeCluster
	calls    []GKECall
}

type gkeCluster struct {
	name       string
	principals []string
	api        *KubeAPIServer
}

// StartGKE starts a fake GKE API on 127.0.0.1 accepting the tokens of iam.
// Call Close when done.
func StartGKE(iam *GCPIAMCredentials) *GKE {
	g := &GKE{iam: iam, faults: newFaultSet(), clusters: map[string]*gkeCluster{}}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serveHTTP))
	g.URL = g.srv.URL
	return g
}

// Close shuts the fake and the API servers of its clusters down, blocking
// until outstanding requests finish. Requests hung by an injected Hang are
// dropped at once.
func (g *GKE) Close() {
	g.faults.close()
	g.srv.Close()
	g.mu.Lock()
	clusters := g.clusters
	g.mu.Unlock()
	for _, c := range clusters {
		c.api.close()
	}
}

// AddCluster creates the cluster name
// (projects/<project>/locations/<location>/clusters/<cluster>) and starts
// its API server. principals (service account emails or federated
// principals, as GCPIAMCredentials.WhoAmI names them) may get it and use its
// API. It panics for an invalid name or a cluster added before.
func (g *GKE) AddCluster(name string, principals ...string) *KubeAPIServer {
	if !gkeClusterPattern.MatchString(name) {
		panic("fakes: GKE.AddCluster: invalid cluster name '" + name + "'")
	}
	c := &gkeCluster{name: name, principals: slices.Clone(principals)}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.clusters[name]; ok {
		panic("fakes: GKE.AddCluster: cluster '" + name + "' exists")
	}
	c.api = startKubeAPIServer(func(_ *http.Request, token string) (kubeUserInfo, kubeVerdict) {
		t, reason := g.iam.lookup(token)
		if reason != "" {
			return kubeUserInfo{}, kubeUnauthorized
		}
		user := kubeUserInfo{Username: t.principal, Groups: []string{"system:authenticated"}}
		if !slices.Contains(c.principals, t.principal) {
			return user, kubeForbidden
		}
		return user, kubeAllowed
	})
	g.clusters[name] = c
	return c.api
}

// InjectFault makes f apply to the clusters.get requests that arrive from
// now on, after the faults injected before it: the first one that applies
// to a request wins. OnlyFor takes the URL path of one cluster,
// "/v1/projects/<p>/locations/<l>/clusters/<c>". The bad successes
// (ExpiredCredentials…) return no credentials here: InjectFault panics for
// them, for the zero Fault and for another path.
func (g *GKE) InjectFault(f Fault) *InjectedFault {
	if c, ok := strings.CutPrefix(f.only, "/v1/"); f.only != "" && (!ok || !gkeClusterPattern.MatchString(c)) {
		panic("fakes: GKE.InjectFault: unknown operation '" + f.only +
			"': want /v1/projects/<p>/locations/<l>/clusters/<c>")
	}
	if f.needsCredentials() && f.kind != faultMalformed {
		panic("fakes: " + f.String() + " can never apply: clusters.get returns no credentials")
	}
	return g.faults.inject(f)
}

// Attempts returns how many HTTP requests reached the fake, whatever their
// path or outcome, those answered by an injected fault included.
func (g *GKE) Attempts() int { return g.faults.count() }

// Calls returns a copy of every clusters.get request, in order. Requests
// answered by an injected fault in place of the fake are not recorded;
// Attempts counts them.
func (g *GKE) Calls() []GKECall {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]GKECall(nil), g.calls...)
}

func (g *GKE) record(c GKECall) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, c)
}

// cluster returns the cluster name if principal may get it.
func (g *GKE) cluster(name, principal string) (*gkeCluster, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.clusters[name]
	if !ok || !slices.Contains(c.principals, principal) {
		return nil, false
	}
	return c, true
}

// gkeFaultReplies answers injected faults with Google's JSON error envelope.
var gkeFaultReplies = faultReplies{
	throttle: func(w http.ResponseWriter) {
		gcpWriteError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "RATE_LIMIT_EXCEEDED",
			"Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service 'container.googleapis.com'.")
	},
	serverError: func(w http.ResponseWriter, status int) {
		gcpWriteError(w, status, gcpErrorStatus(status), "", "The service encountered an error.")
	},
	malformed: func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		_, _ = io.WriteString(w, `{"name":"`)
	},
}

func (g *GKE) serveHTTP(w http.ResponseWriter, r *http.Request) {
	g.faults.attempt()
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	fault := g.faults.take(r.URL.Path, true)
	if g.faults.answer(w, r, fault, gkeFaultReplies) {
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok || !gkeClusterPattern.MatchString(name) {
		gcpWriteError(w, http.StatusNotFound, "NOT_FOUND", "", "The requested URL was not found on this server.")
		return
	}
	if r.Method != http.MethodGet {
		gcpWriteError(w, http.StatusMethodNotAllowed, "INVALID_ARGUMENT", "", "clusters.get requires GET.")
		return
	}

	call := GKECall{Cluster: name}
	fail := func(code int, status, reason, message string) {
		call.Err = status
		g.record(call)
		gcpWriteError(w, code, status, reason, message)
	}
	t, reason := g.iam.lookup(gcpBearer(r))
	if reason != "" {
		fail(http.StatusUnauthorized, "UNAUTHENTICATED", reason,
			"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
		return
	}
	call.Caller = t.principal
	if !slices.Contains(t.scopes, gcpCloudPlatformScope) {
		fail(http.StatusForbidden, "PERMISSION_DENIED", "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
			"Request had insufficient authentication scopes.")
		return
	}
	c, ok := g.cluster(name, t.principal)
	if !ok {
		fail(http.StatusForbidden, "PERMISSION_DENIED", "",
			`Required "container.clusters.get" permission(s) for "`+name+`".`)
		return
	}
	g.record(call)

	u, _ := url.Parse(c.api.URL) // ours: always valid
	gcpWriteJSON(w, http.StatusOK, map[string]any{
		"name":     name[strings.LastIndex(name, "/")+1:],
		"selfLink": "https://container.googleapis.com/v1/" + name,
		// GKE gives the address without a scheme.
		"endpoint": u.Host,
		"status":   "RUNNING",
		"masterAuth": map[string]string{
			"clusterCaCertificate": base64.StdEncoding.EncodeToString(c.api.CAData),
		},
	})
}
