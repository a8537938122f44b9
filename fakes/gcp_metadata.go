package fakes

import (
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

const gcpMetadataPrefix = "/computeMetadata/v1/"

// GCPMetadataOptions configures StartGCPMetadata.
type GCPMetadataOptions struct {
	// ProjectID is served at project/project-id. Required.
	ProjectID string
	// ClusterLocation is served at instance/attributes/cluster-location.
	// Required.
	ClusterLocation string
	// ClusterName is served at instance/attributes/cluster-name. Required.
	ClusterName string
	// ServiceAccountEmail is the controller's Google service account, the
	// node's "default" account. Required.
	ServiceAccountEmail string
	// IAM mints the default account's tokens, so IAMCredentials accepts them
	// as bearer tokens and WhoAmI names ServiceAccountEmail. Required.
	IAM *GCPIAMCredentials
	// ProjectNumber is served at project/numeric-project-id. Optional.
	// Defaults to a stable 12-digit number derived from ProjectID.
	ProjectNumber string
}

// Metadata is a fake GCE/GKE metadata server on 127.0.0.1, enough for
// cloud.google.com/go/compute/metadata, google.DefaultTokenSource and the
// GKE metadata that fluxcd/pkg/auth/gcp reads.
//
// Like Google's, it refuses requests under /computeMetadata/v1/ that lack
// "Metadata-Flavor: Google" or carry X-Forwarded-For (403), answers every
// request with "Metadata-Flavor: Google", and serves the root "/" without
// the header because that is how the metadata client detects GCE. It serves:
//
//	project/project-id, project/numeric-project-id
//	instance/attributes/cluster-location, instance/attributes/cluster-name
//	instance/service-accounts/{default,<email>}/email
//	instance/service-accounts/{default,<email>}/scopes
//	instance/service-accounts/{default,<email>}/token[?scopes=a,b]
//	instance/service-accounts/{default,<email>}/?recursive=true
//	universe/universe_domain
//
// and 404 for anything else, which the client reports as NotDefinedError.
// Tokens carry the requested scopes, or cloud-platform when none are asked
// for.
//
// The Google libraries keep process-wide state that outlives any one
// Metadata, so a test binary must plan for it:
//
//   - metadata.OnGCE is decided once per process (sync.Once). Set
//     GCE_METADATA_HOST (see GCPEnv) before anything first asks, or every
//     later google.DefaultTokenSource in the process reports "not on GCE".
//   - metadata.ProjectID caches the first project ID it reads, and
//     fluxcd/pkg/auth/gcp caches project, location and cluster name in a
//     package variable after its first successful load. Use the same
//     ProjectID, ClusterLocation and ClusterName for every Metadata in one
//     test binary.
//   - GCE_METADATA_HOST itself is read on every request, so separate
//     servers per test work for everything else.
//
// Metadata is safe for concurrent use.
type GCPMetadata struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:41236".
	URL string
	// Host is the server's host:port, the form GCE_METADATA_HOST takes.
	Host string

	srv    *httptest.Server
	opts   GCPMetadataOptions
	email  string
	faults *faultSet

	// mu guards requests.
	mu       sync.Mutex
	requests map[string]int64
}

// StartGCPMetadata starts the fake on 127.0.0.1. Close it when done. It panics
// when a required option is missing, as a test fixture cannot work without
// them.
func StartGCPMetadata(opts GCPMetadataOptions) *GCPMetadata {
	for name, v := range map[string]string{
		"ProjectID":           opts.ProjectID,
		"ClusterLocation":     opts.ClusterLocation,
		"ClusterName":         opts.ClusterName,
		"ServiceAccountEmail": opts.ServiceAccountEmail,
	} {
		if v == "" {
			panic("fakes: GCPMetadataOptions." + name + " is required")
		}
	}
	if opts.IAM == nil {
		panic("fakes: GCPMetadataOptions.IAM is required")
	}
	if opts.ProjectNumber == "" {
		h := fnv.New64a()
		_, _ = h.Write([]byte(opts.ProjectID)) // hash writes never fail
		opts.ProjectNumber = fmt.Sprintf("%d", 100000000000+h.Sum64()%900000000000)
	}
	m := &GCPMetadata{opts: opts, email: opts.ServiceAccountEmail, requests: make(map[string]int64), faults: newFaultSet()}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serveHTTP))
	m.URL = m.srv.URL
	m.Host = strings.TrimPrefix(m.srv.URL, "http://")
	return m
}

// Close shuts the server down and waits for in-flight requests. Requests
// hung by an injected Hang are dropped at once.
func (m *GCPMetadata) Close() {
	m.faults.close()
	m.srv.Close()
}

// InjectFault makes f apply to the requests that arrive from now on, after
// the faults injected before it: the first one that applies to a request
// wins. OnlyFor takes a URL path: "/" or one under /computeMetadata/v1/,
// e.g. "/computeMetadata/v1/instance/service-accounts/default/token". The
// bad successes and MalformedBody apply to the token paths only
// (instance/service-accounts/{default,<email>}/token). InjectFault panics
// for the zero Fault, another path, or a fault that could never apply.
func (m *GCPMetadata) InjectFault(f Fault) *InjectedFault {
	if f.only != "" {
		if f.only != "/" && !strings.HasPrefix(f.only, gcpMetadataPrefix) {
			panic("fakes: GCPMetadata.InjectFault: unknown operation '" + f.only + "': want \"/\" or a path under " + gcpMetadataPrefix)
		}
		if f.needsCredentials() && !m.tokenPath(f.only) {
			panic("fakes: " + f.String() + " can never apply: only token paths return credentials")
		}
	}
	return m.faults.inject(f)
}

// Attempts returns how many HTTP requests reached the server, whatever their
// path or outcome, those answered by an injected fault included.
func (m *GCPMetadata) Attempts() int { return m.faults.count() }

// tokenPath reports whether the URL path asks for an access token of the
// node's account.
func (m *GCPMetadata) tokenPath(urlPath string) bool {
	path, ok := strings.CutPrefix(urlPath, gcpMetadataPrefix+"instance/service-accounts/")
	if !ok {
		return false
	}
	account, leaf, _ := strings.Cut(path, "/")
	return (account == "default" || account == m.email) && leaf == "token"
}

// gcpMetadataFaultReplies answers injected faults the way the metadata
// server fails: in plain text.
var gcpMetadataFaultReplies = faultReplies{
	throttle: func(w http.ResponseWriter) {
		http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
	},
	serverError: func(w http.ResponseWriter, status int) {
		http.Error(w, http.StatusText(status), status)
	},
	malformed: func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"ya29.`)
	},
}

// Requests returns how many requests arrived for path, given relative to
// /computeMetadata/v1/ and without its query (e.g.
// "instance/service-accounts/default/token"); "/" counts the GCE detection
// pings to the root. Refused requests and those answered by an injected
// fault count too.
func (m *GCPMetadata) Requests(path string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requests[path]
}

func (m *GCPMetadata) count(path string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[path]++
}

func (m *GCPMetadata) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Metadata-Flavor", "Google")
	w.Header().Set("Server", "Metadata Server for VM")
	m.faults.attempt()
	path, ok := strings.CutPrefix(r.URL.Path, gcpMetadataPrefix)
	switch {
	case r.URL.Path == "/":
		m.count("/")
	case ok:
		m.count(path)
	}
	fault := m.faults.take(r.URL.Path, m.tokenPath(r.URL.Path))
	if m.faults.answer(w, r, fault, gcpMetadataFaultReplies) {
		return
	}
	if r.URL.Path == "/" {
		m.text(w, "computeMetadata/\n")
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Metadata-Flavor") != "Google" || r.Header.Get("X-Forwarded-For") != "" {
		http.Error(w, "Missing required header \"Metadata-Flavor\": \"Google\"", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "Method not allowed", http.StatusMethodNotAllowed)
		return
	}

	switch path {
	case "project/project-id":
		m.text(w, m.opts.ProjectID)
		return
	case "project/numeric-project-id":
		m.text(w, m.opts.ProjectNumber)
		return
	case "instance/attributes/cluster-location":
		m.text(w, m.opts.ClusterLocation)
		return
	case "instance/attributes/cluster-name":
		m.text(w, m.opts.ClusterName)
		return
	case "universe/universe_domain":
		m.text(w, "googleapis.com")
		return
	case "instance/service-accounts/":
		m.text(w, "default/\n"+m.email+"/\n")
		return
	}

	if rest, ok := strings.CutPrefix(path, "instance/service-accounts/"); ok {
		account, leaf, _ := strings.Cut(rest, "/")
		if account == "default" || account == m.email {
			m.serveAccount(w, r, leaf, fault)
			return
		}
	}
	http.NotFound(w, r)
}

// serveAccount answers instance/service-accounts/<account>/<leaf> for the
// one account this node has; fault is an injected bad success, if any.
func (m *GCPMetadata) serveAccount(w http.ResponseWriter, r *http.Request, leaf string, fault Fault) {
	switch leaf {
	case "email":
		m.text(w, m.email)
	case "scopes":
		m.text(w, gcpCloudPlatformScope+"\n")
	case "token":
		scopes := []string{gcpCloudPlatformScope}
		if s := r.URL.Query().Get("scopes"); s != "" {
			scopes = strings.Split(s, ",")
		}
		token, expiry := m.opts.IAM.mint(m.email, scopes, fault.lifetime(m.opts.IAM.lifetime(gcpDefaultLifetime)))
		reply := map[string]any{"access_token": token, "token_type": "Bearer"}
		if fault.emptiesCredentials() {
			reply["access_token"] = ""
		}
		if expiresIn, ok := fault.reportExpiresIn(expiry.Sub(m.opts.IAM.now())); ok {
			reply["expires_in"] = expiresIn
		}
		gcpWriteJSON(w, http.StatusOK, reply)
	case "":
		if r.URL.Query().Get("recursive") != "true" {
			m.text(w, "aliases\nemail\nidentity\nscopes\ntoken\n")
			return
		}
		gcpWriteJSON(w, http.StatusOK, map[string]any{
			"aliases": []string{"default"},
			"email":   m.email,
			"scopes":  []string{gcpCloudPlatformScope},
		})
	default:
		http.NotFound(w, r)
	}
}

func (m *GCPMetadata) text(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "application/text")
	_, _ = w.Write([]byte(s)) // the client hung up; nothing to tell
}
