package fakes

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

// kubeSelfSubjectReviewPath is the one API a KubeAPIServer serves: what
// `kubectl auth whoami` calls to ask whose a token is.
const kubeSelfSubjectReviewPath = "/apis/authentication.k8s.io/v1/selfsubjectreviews"

// kubeMaxBody bounds request bodies; a SelfSubjectReview is a few bytes.
const kubeMaxBody = 1 << 20

// KubeAPIServer is the API server endpoint of a fake managed cluster, made by
// EKS.AddCluster or GKE.AddCluster: an HTTPS server on 127.0.0.1 whose
// self-signed certificate is the CA the cloud API returns for the cluster.
// It authenticates bearer tokens the way the cluster's cloud does and serves
// one API, the SelfSubjectReview of `kubectl auth whoami`
// (POST /apis/authentication.k8s.io/v1/selfsubjectreviews), which answers
// whose the token is, so a test can build a client from a REST config and
// see which identity the cluster takes it for.
//
// Like the kube-apiserver, it reads JSON, YAML and protobuf, which client-go
// sends by default, and answers in the first of those the client accepts.
// Refusals are Kubernetes Status documents in JSON: 401 Unauthorized for a token
// the cloud does not vouch for (and, on EKS, for an identity with no access
// entry, which EKS cannot map to a user), 403 Forbidden for a GKE identity
// without access to the cluster.
//
// KubeAPIServer is safe for concurrent use. Its cloud fake closes it.
type KubeAPIServer struct {
	// URL is the server's base URL, "https://127.0.0.1:<port>".
	URL string
	// CAData is the PEM certificate clients must trust, the CA data of the
	// cluster as EKS DescribeCluster and GKE clusters.get return it.
	CAData []byte

	srv          *httptest.Server
	authenticate kubeAuthenticator

	// mu guards requests.
	mu       sync.Mutex
	requests []KubeAPIRequest
}

// KubeAPIRequest is one request a KubeAPIServer received. It holds no token.
type KubeAPIRequest struct {
	// Method and Path are the request's, e.g. "POST" and
	// "/apis/authentication.k8s.io/v1/selfsubjectreviews".
	Method string
	Path   string
	// User is the username the bearer token belongs to, when the cloud
	// vouched for the token, even if the request was then refused for lack
	// of access; "" otherwise.
	User string
	// Code is the HTTP status of the answer.
	Code int
}

// Short names for the authenticators of the clouds' fakes.
type (
	kubeUserInfo   = authnv1.UserInfo
	kubeExtraValue = authnv1.ExtraValue
)

// kubeAuthenticator returns whose token is, when the cloud vouches for it,
// and what the cluster makes of that user.
type kubeAuthenticator func(r *http.Request, token string) (kubeUserInfo, kubeVerdict)

type kubeVerdict int

const (
	// kubeUnauthorized: 401, the token proves no user of the cluster.
	kubeUnauthorized kubeVerdict = iota
	// kubeForbidden: 403, a known user without access.
	kubeForbidden
	kubeAllowed
)

func startKubeAPIServer(authenticate kubeAuthenticator) *KubeAPIServer {
	k := &KubeAPIServer{authenticate: authenticate}
	k.srv = httptest.NewTLSServer(http.HandlerFunc(k.serveHTTP))
	k.URL = k.srv.URL
	k.CAData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.srv.Certificate().Raw})
	return k
}

// close shuts the server down, blocking until outstanding requests finish.
func (k *KubeAPIServer) close() { k.srv.Close() }

// Requests returns a copy of every request received, in order.
func (k *KubeAPIServer) Requests() []KubeAPIRequest {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]KubeAPIRequest(nil), k.requests...)
}

func (k *KubeAPIServer) record(req KubeAPIRequest) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.requests = append(k.requests, req)
}

func (k *KubeAPIServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, readErr := io.ReadAll(io.LimitReader(r.Body, kubeMaxBody))
	req := KubeAPIRequest{Method: r.Method, Path: r.URL.Path}
	reply := func(code int, v any) {
		req.Code = code
		k.record(req)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v) // the client hung up; nothing to tell
	}

	// The kube-apiserver authenticates before it routes.
	token := gcpBearer(r)
	if token == "" {
		reply(http.StatusUnauthorized, kubeStatus(http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized"))
		return
	}
	user, verdict := k.authenticate(r, token)
	req.User = user.Username
	if verdict == kubeUnauthorized {
		reply(http.StatusUnauthorized, kubeStatus(http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized"))
		return
	}

	if r.URL.Path != kubeSelfSubjectReviewPath {
		reply(http.StatusNotFound, kubeStatus(http.StatusNotFound, metav1.StatusReasonNotFound,
			"the server could not find the requested resource"))
		return
	}
	if r.Method != http.MethodPost {
		reply(http.StatusMethodNotAllowed, kubeStatus(http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed,
			fmt.Sprintf("the server does not allow this method on the requested resource (%s selfsubjectreviews.authentication.k8s.io)", r.Method)))
		return
	}
	if verdict == kubeForbidden {
		s := kubeStatus(http.StatusForbidden, metav1.StatusReasonForbidden, fmt.Sprintf(
			`selfsubjectreviews.authentication.k8s.io is forbidden: User "%s" cannot create resource "selfsubjectreviews" in API group "authentication.k8s.io" at the cluster scope`,
			user.Username))
		s.Details = &metav1.StatusDetails{Group: "authentication.k8s.io", Kind: "selfsubjectreviews"}
		reply(http.StatusForbidden, s)
		return
	}
	var review authnv1.SelfSubjectReview
	decoder, ok := kubeSerializer(r.Header.Get("Content-Type"))
	if !ok {
		reply(http.StatusUnsupportedMediaType, kubeStatus(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
			fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s", kubeMediaTypes)))
		return
	}
	gvk := authnv1.SchemeGroupVersion.WithKind("SelfSubjectReview")
	if _, got, err := decoder.Decode(body, &gvk, &review); readErr != nil || err != nil || *got != gvk {
		reply(http.StatusBadRequest, kubeStatus(http.StatusBadRequest, metav1.StatusReasonBadRequest,
			"the body of the request was in an unknown format"))
		return
	}
	encoder, mediaType, ok := kubeNegotiate(r.Header.Get("Accept"))
	if !ok {
		reply(http.StatusNotAcceptable, kubeStatus(http.StatusNotAcceptable, metav1.StatusReasonNotAcceptable,
			fmt.Sprintf("only the following media types are accepted: %s", kubeMediaTypes)))
		return
	}
	review.Status.UserInfo = user
	b, err := runtime.Encode(kubeCodecs.EncoderForVersion(encoder, authnv1.SchemeGroupVersion), &review)
	if err != nil {
		reply(http.StatusInternalServerError, kubeStatus(http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error()))
		return
	}
	req.Code = http.StatusCreated
	k.record(req)
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(b)
}

// kubeCodecs serialize the API the fake serves as the kube-apiserver does:
// JSON, YAML and protobuf, which client-go sends by default for built-in
// types.
var kubeCodecs = func() serializer.CodecFactory {
	s := runtime.NewScheme()
	utilruntime.Must(authnv1.AddToScheme(s))
	return serializer.NewCodecFactory(s)
}()

const kubeMediaTypes = "application/json, application/yaml, application/vnd.kubernetes.protobuf"

// kubeSerializer returns the serializer of a Content-Type.
func kubeSerializer(contentType string) (runtime.Serializer, bool) {
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, false
	}
	info, ok := runtime.SerializerInfoForMediaType(kubeCodecs.SupportedMediaTypes(), mediaType)
	return info.Serializer, ok
}

// kubeNegotiate picks the first media type of an Accept header that the
// fake can write, JSON for none or a wildcard.
func kubeNegotiate(accept string) (runtime.Serializer, string, bool) {
	if strings.TrimSpace(accept) == "" {
		accept = runtime.ContentTypeJSON
	}
	for part := range strings.SplitSeq(accept, ",") {
		mediaType, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if mediaType == "*/*" || mediaType == "application/*" {
			mediaType = runtime.ContentTypeJSON
		}
		if s, ok := kubeSerializer(mediaType); ok {
			return s, mediaType, true
		}
	}
	return nil, "", false
}

func kubeStatus(code int32, reason metav1.StatusReason, message string) *metav1.Status {
	return &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  message,
		Reason:   reason,
		Code:     code,
	}
}
