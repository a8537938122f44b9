package gcp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

// Both fakes.GCPEnv and the upstream GKE metadata loaded once per process
// make these tests sequential. This file must be the first to reach the GKE
// metadata in this test binary: once upstream has loaded it, it never asks
// again.
const (
	gkeProject  = "flux-project"
	gkeLocation = "us-central1"
	gkeCluster  = "flux"
	gkePool     = "flux-project.svc.id.goog"
	controller  = "flux-controller@flux-project.iam.gserviceaccount.com"
)

// stallingMetadata is a metadata server that accepts requests and answers
// none until released; released, it answers 200 with no body.
type stallingMetadata struct {
	srv      *httptest.Server
	requests sync.Map // path → *atomic.Int64
	release  chan struct{}
	once     sync.Once
}

func startStallingMetadata(t *testing.T) *stallingMetadata {
	m := &stallingMetadata{release: make(chan struct{})}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := m.requests.LoadOrStore(strings.TrimPrefix(r.URL.Path, "/computeMetadata/v1/"), new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		w.Header().Set("Metadata-Flavor", "Google")
		select {
		case <-m.release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { m.Release(); m.srv.Close() })
	return m
}

func (m *stallingMetadata) Release() { m.once.Do(func() { close(m.release) }) }

func (m *stallingMetadata) Requests(path string) int64 {
	n, ok := m.requests.Load(path)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

// gkeMetadataTested is set by the first run of the test below in this
// process; a second one (go test -count=2) would find the metadata loaded.
var gkeMetadataTested atomic.Bool

func TestGKEMetadataCallsReturnAtTheDeadline(t *testing.T) {
	if gkeMetadataTested.Swap(true) {
		t.Skip("upstream loaded the GKE metadata in an earlier run in this process, and never loads it again")
	}
	g := NewWithT(t)
	leaks := []goleak.Option{goleak.IgnoreCurrent(),
		// The fake servers of this test, and idle keep-alive connections on
		// both sides: none of them is a call.
		goleak.IgnoreAnyFunction("net/http/httptest.(*Server).goServe.func1"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	}
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	issuer, err := fakes.NewIssuer("https://container.googleapis.com/v1/projects/flux-project/locations/us-central1/clusters/flux")
	g.Expect(err).NotTo(HaveOccurred())
	sts := fakes.StartGCPSTS(fakes.GCPSTSOptions{Issuer: issuer, IAM: iam})
	t.Cleanup(sts.Close)
	provider := gcp.Provider{Implementation: fakes.NewGCPImplementation(sts, iam)}
	working := fakes.StartGCPMetadata(fakes.GCPMetadataOptions{
		ProjectID: gkeProject, ClusterLocation: gkeLocation, ClusterName: gkeCluster,
		ServiceAccountEmail: controller, IAM: iam,
	})
	t.Cleanup(working.Close)
	stalled := startStallingMetadata(t)
	env := fakes.GCPEnv(t.TempDir(), working)
	env["GCE_METADATA_HOST"] = strings.TrimPrefix(stalled.srv.URL, "http://")
	for k, v := range env {
		t.Setenv(k, v)
	}
	sa := serviceAccount(nil) // no workload identity provider: GKE

	deadline := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 200*time.Millisecond)
	}
	const gaveUp = `^gave up on %s after (19\d|2\d\d)ms: context deadline exceeded$`
	t.Run("stalled", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			call    func(ctx context.Context) (any, error)
			wantErr string
			// wantLoads is how many reads of the project ID ever started.
			wantLoads int64
		}{
			{
				name:      "GetAudiences",
				call:      func(ctx context.Context) (any, error) { return provider.GetAudiences(ctx, sa) },
				wantErr:   "the GKE metadata server",
				wantLoads: 1,
			},
			{
				name: "NewTokenForServiceAccount",
				call: func(ctx context.Context) (any, error) {
					return provider.NewTokenForServiceAccount(ctx, "not used", sa)
				},
				wantErr:   "the GKE metadata server",
				wantLoads: 1, // the load already hanging is shared
			},
			{
				// The real libraries, which GCPEnv points at the fakes.
				name:    "NewControllerToken",
				call:    func(ctx context.Context) (any, error) { return gcp.Provider{}.NewControllerToken(ctx) },
				wantErr: "the controller's token from the GKE metadata server",
				// google.DefaultTokenSource reads the project ID too, once
				// for all callers.
				wantLoads: 2,
			},
			{
				// Not shared, bounded all the same; they queue behind the
				// read of the project ID that hangs.
				name:      "NewControllerToken of another implementation",
				call:      func(ctx context.Context) (any, error) { return provider.NewControllerToken(ctx) },
				wantErr:   "the controller's token from the GKE metadata server",
				wantLoads: 2,
			},
		} {
			t.Run(tt.name, func(t *testing.T) {
				g := NewWithT(t)
				// Several callers at once, as reconcilers are.
				var wg sync.WaitGroup
				for range 3 {
					wg.Go(func() {
						ctx, cancel := deadline()
						defer cancel()
						got, err := tt.call(ctx)
						g.Expect(got).To(BeNil())
						g.Expect(err).To(MatchError(MatchRegexp(strings.Replace(gaveUp, "%s", tt.wantErr, 1))))
						g.Expect(err).To(MatchError(context.DeadlineExceeded))
					})
				}
				wg.Wait()
				g.Expect(stalled.Requests("project/project-id")).To(Equal(tt.wantLoads))
			})
		}
	})

	// The abandoned calls end on their own once the server answers (here by
	// release; in a cluster by the metadata client's timeouts) and leave
	// nothing behind, and the failed load poisons nothing.
	stalled.Release()
	goleak.VerifyNone(t, leaks...)
	t.Setenv("GCE_METADATA_HOST", working.Host)

	t.Run("recovered", func(t *testing.T) {
		g := NewWithT(t)
		ctx, cancel := deadline()
		defer cancel()
		audiences, err := provider.GetAudiences(ctx, sa)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(audiences).To(Equal([]string{gkePool}))

		token, err := gcp.Provider{}.NewControllerToken(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(provider.ValidateToken(token, time.Now())).To(Succeed())
		who, _ := iam.WhoAmI(token.(*gcp.Token).AccessToken)
		g.Expect(who).To(Equal(controller))
	})
}

func TestGoogleSTSExchangeReturnsAtTheDeadline(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
	g.Expect(err).NotTo(HaveOccurred())
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	sts := fakes.StartGCPSTS(fakes.GCPSTSOptions{Issuer: issuer, IAM: iam, Latency: time.Minute})
	t.Cleanup(sts.Close)
	const wip = "projects/123456789012/locations/global/workloadIdentityPools/pool/providers/prov"
	sts.AllowAudience("//iam.googleapis.com/" + wip)
	sa := serviceAccount(map[string]string{gcp.WorkloadIdentityProviderAnnotation: wip})
	oidc, err := issuer.Sign(sa.Namespace, sa.Name, []string{"//iam.googleapis.com/" + wip}, time.Hour)
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()

	token, err := gcp.Provider{Implementation: fakes.NewGCPImplementation(sts, iam)}.NewTokenForServiceAccount(ctx, oidc, sa)

	g.Expect(token).To(BeNil())
	g.Expect(err).To(MatchError(MatchRegexp(
		`^gave up on the Google STS token exchange after (19\d|2\d\d)ms: context deadline exceeded$`)))
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
}
