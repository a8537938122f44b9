package auth_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	fluxauth "github.com/fluxcd/pkg/auth"
	awsauth "github.com/fluxcd/pkg/auth/aws"
	"github.com/fluxcd/pkg/cache"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

// The benchmarks pit our GetAccessToken and TokenCache against upstream
// fluxcd/pkg/auth v0.56.0 GetAccessToken with fluxcd/pkg/cache's TokenCache,
// on the same fakes: one Kubernetes token issuer, one Kubernetes API
// (benchKube) and fake STS servers the real AWS SDK talks to over loopback
// HTTP.

// benchCacheCapacity holds every key of every benchmark, so no run measures
// evictions.
const benchCacheCapacity = 4096

// benchRole returns the ARN of a role of the benchmarks' AWS account.
func benchRole(name string, i int) string {
	return fmt.Sprintf("arn:aws:iam::111111111111:role/%s-%03d", name, i)
}

func benchNamespace(i int) string { return fmt.Sprintf("tenant-%03d", i) }

func newBenchIssuer(tb testing.TB) *fakes.Issuer {
	tb.Helper()
	issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
	if err != nil {
		tb.Fatal(err)
	}
	return issuer
}

func startBenchSTS(tb testing.TB, issuer *fakes.Issuer, latency time.Duration) *fakes.AWSSTS {
	tb.Helper()
	s := fakes.StartAWSSTS(fakes.AWSSTSOptions{Issuer: issuer, Latency: latency})
	tb.Cleanup(s.Close)
	return s
}

// irsaWorld is n tenants doing object-level IRSA without impersonation, the
// path upstream can do too: ServiceAccount "app" in benchNamespace(i) is
// annotated with its own role benchRole("irsa", i), which trusts it.
type irsaWorld struct {
	kube *benchKube
	// sts answers after the benchmark's latency; warm trusts the same
	// tenants and answers at once, to warm up the process untimed.
	sts, warm *fakes.AWSSTS
}

func newIRSAWorld(tb testing.TB, n int, latency time.Duration) *irsaWorld {
	tb.Helper()
	issuer := newBenchIssuer(tb)
	w := &irsaWorld{sts: startBenchSTS(tb, issuer, latency), warm: startBenchSTS(tb, issuer, 0)}
	sas := make([]*corev1.ServiceAccount, n)
	for i := range n {
		ns := benchNamespace(i)
		sas[i] = tenantSA(ns, "app", map[string]string{"eks.amazonaws.com/role-arn": benchRole("irsa", i)})
		w.sts.AllowWebIdentity(benchRole("irsa", i), ns, "app")
		w.warm.AllowWebIdentity(benchRole("irsa", i), ns, "app")
	}
	w.kube = newBenchKube(issuer, sas...)
	return w
}

// benchKube is the Kubernetes API as a controller sees it: ServiceAccount
// reads come from memory with a deep copy, like the manager's informer-backed
// client, and everything else (TokenRequests) goes to the fake API server.
// Reading through the fake client instead would cost a JSON round trip per
// Get, several times what either library spends on a warm hit.
type benchKube struct {
	*fakes.KubeClient
	serviceAccounts map[client.ObjectKey]*corev1.ServiceAccount
}

func newBenchKube(issuer *fakes.Issuer, sas ...*corev1.ServiceAccount) *benchKube {
	k := &benchKube{serviceAccounts: map[client.ObjectKey]*corev1.ServiceAccount{}}
	objs := make([]client.Object, len(sas))
	for i, sa := range sas {
		k.serviceAccounts[client.ObjectKeyFromObject(sa)] = sa.DeepCopy()
		objs[i] = sa
	}
	k.KubeClient = fakes.NewKubeClient(issuer, objs...)
	return k
}

// Get implements client.Reader.
func (k *benchKube) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	sa, ok := obj.(*corev1.ServiceAccount)
	if !ok {
		return k.KubeClient.Get(ctx, key, obj, opts...)
	}
	stored, found := k.serviceAccounts[key]
	if !found {
		return apierrors.NewNotFound(corev1.Resource("serviceaccounts"), key.Name)
	}
	stored.DeepCopyInto(sa)
	return nil
}

// tokenGetter gets a token for ServiceAccount name in namespace ns on behalf
// of obj, as a controller reconciling obj would.
type tokenGetter func(ctx context.Context, ns, name string, obj cache.InvolvedObject) (fluxauth.Token, error)

// getterFactory binds an AWS SDK implementation (i.e. a fake STS) to a cache.
type getterFactory func(impl aws.Implementation) tokenGetter

// contender is one implementation of GetAccessToken with its cache.
type contender struct {
	name string
	// newCache returns a factory of getters that share one new, empty cache.
	newCache func(tb testing.TB, kube client.Client) getterFactory
}

var oursContender = contender{name: "ours", newCache: func(tb testing.TB, kube client.Client) getterFactory {
	tc, err := auth.NewTokenCache(benchCacheCapacity)
	if err != nil {
		tb.Fatal(err)
	}
	return func(impl aws.Implementation) tokenGetter {
		p := aws.Provider{Implementation: impl}
		return func(ctx context.Context, ns, name string, obj cache.InvolvedObject) (fluxauth.Token, error) {
			return auth.GetAccessToken(ctx, p, auth.WithClient(kube), auth.WithServiceAccountNamespace(ns),
				auth.WithServiceAccountName(name), auth.WithSTSRegion(region), auth.WithTokenCache(tc, obj))
		}
	}
}}

var upstreamContender = contender{name: "upstream", newCache: func(tb testing.TB, kube client.Client) getterFactory {
	tc, err := cache.NewTokenCache(benchCacheCapacity)
	if err != nil {
		tb.Fatal(err)
	}
	return func(impl aws.Implementation) tokenGetter {
		p := awsauth.Provider{Implementation: impl}
		return func(ctx context.Context, ns, name string, obj cache.InvolvedObject) (fluxauth.Token, error) {
			return fluxauth.GetAccessToken(ctx, p, fluxauth.WithClient(kube), fluxauth.WithServiceAccountNamespace(ns),
				fluxauth.WithServiceAccountName(name), fluxauth.WithSTSRegion(region), fluxauth.WithCache(*tc, obj))
		}
	}
}}

var benchContenders = []contender{oursContender, upstreamContender}

// signalingImpl tells started about every AssumeRoleWithWebIdentity just
// before the request leaves for STS, so a benchmark knows a miss is in
// flight without sleeping: by then upstream's cache holds its lock, and ours
// has a flight running for the key.
type signalingImpl struct {
	*fakes.AWSImplementation
	started chan<- struct{}
}

func (i signalingImpl) AssumeRoleWithWebIdentity(ctx context.Context, params *sts.AssumeRoleWithWebIdentityInput,
	options sts.Options) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	select {
	case i.started <- struct{}{}:
	default:
	}
	return i.AWSImplementation.AssumeRoleWithWebIdentity(ctx, params, options)
}

// percentile returns the q-quantile (0 < q <= 1) of sorted by nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func sortedCopy(d []time.Duration) []time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s
}

// summary prints one line for the README. It goes to stdout, next to the
// benchmark lines, only when benchmarks run.
func summary(format string, args ...any) {
	fmt.Printf("summary: "+format+"\n", args...)
}

// ratio formats a/b, or "n/a" when a run was filtered out.
func ratio(a, b float64) string {
	switch r := a / b; {
	case a == 0 || b == 0:
		return "n/a"
	case r >= 100:
		return fmt.Sprintf("%.0f×", r)
	default:
		return fmt.Sprintf("%.1f×", r)
	}
}

func benchObject(ns string, i int) cache.InvolvedObject {
	return cache.InvolvedObject{Kind: "Bucket", Name: fmt.Sprintf("bucket-%d", i), Namespace: ns, Operation: "reconcile"}
}

// human prints a duration with three significant figures at most.
func human(d time.Duration) string {
	switch {
	case d <= 0:
		return "n/a"
	case d < time.Millisecond:
		return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}
