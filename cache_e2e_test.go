package auth_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	fluxauth "github.com/fluxcd/pkg/auth"
	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

// Ten tenants impersonate one target from the controller's identity: the
// controller's credentials are fetched once and shared, each tenant gets its
// own target token (its session name names it), and a second round is all
// hits.
func TestTokenCacheTwoLevels(t *testing.T) {
	g := NewWithT(t)
	w := newAWSWorld(t)
	agent := w.podIdentity(t)
	w.sts.AllowAssumeRole(controllerRole, targetRole)
	var sas []*corev1.ServiceAccount
	for i := range 10 {
		sas = append(sas, tenantSA(fmt.Sprintf("tenant-%d", i), "app",
			map[string]string{aws.AssumeRoleAnnotation: "roleARN: " + targetRole}))
	}
	kube := fakes.NewKubeClient(w.issuer, toObjects(sas)...)
	tc, err := auth.NewTokenCache(100)
	g.Expect(err).NotTo(HaveOccurred())

	get := func(ns string) fluxauth.Token {
		token, err := auth.GetAccessToken(context.Background(), w.provider, auth.WithClient(kube),
			auth.WithServiceAccountNamespace(ns), auth.WithServiceAccountName("app"), auth.WithSTSRegion(region),
			auth.WithTokenCache(tc, cache.InvolvedObject{}))
		g.Expect(err).NotTo(HaveOccurred())
		return token
	}
	for round := range 2 {
		for i := range 10 {
			ns := fmt.Sprintf("tenant-%d", i)
			token := get(ns)
			if round == 0 {
				g.Expect(w.whoAmI(t, token)).To(HaveSuffix("/target-account-role/" + ns + ".app.fluxcd.io"))
			}
		}
	}
	g.Expect(agent.Requests()).To(Equal(int64(1)), "one source exchange for all targets")
	g.Expect(w.sts.Count("AssumeRole")).To(Equal(10), "one AssumeRole per tenant, none on the second round")
	g.Expect(tc.Len()).To(Equal(11))
}

// Many Flux objects naming one ServiceAccount cost one exchange and one
// AssumeRole, and each lookup is recorded for its object like upstream.
func TestTokenCacheObjectEvents(t *testing.T) {
	g := NewWithT(t)
	w := newAWSWorld(t)
	w.podIdentity(t)
	w.sts.AllowWebIdentity(sourceRole, "my-app", "my-app")
	w.sts.AllowAssumeRole(sourceRole, targetRole)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-object-irsa.yaml"))
	reg := prometheus.NewPedanticRegistry()
	tc, err := auth.NewTokenCache(100, auth.CacheMetricsRegisterer(reg), auth.CacheMetricsPrefix("gotk_"))
	g.Expect(err).NotTo(HaveOccurred())

	for i := range 5 {
		obj := cache.InvolvedObject{Kind: "OCIRepository", Name: fmt.Sprintf("app-%d", i), Namespace: "my-app", Operation: "reconcile"}
		for range 2 {
			_, err := auth.GetAccessToken(context.Background(), w.provider,
				myAppOptions(kube, auth.WithSTSRegion(region), auth.WithTokenCache(tc, obj))...)
			g.Expect(err).NotTo(HaveOccurred())
		}
	}
	g.Expect(w.sts.Count("AssumeRoleWithWebIdentity")).To(Equal(1))
	g.Expect(w.sts.Count("AssumeRole")).To(Equal(1))
	g.Expect(kube.TokenRequests()).To(Equal(int64(1)))

	want := `# HELP gotk_cache_events_total Total number of cache retrieval events for a Gitops Toolkit resource reconciliation.
# TYPE gotk_cache_events_total counter
`
	for _, ev := range []string{"cache_hit", "cache_miss"} {
		for i := range 5 {
			n := 1
			if ev == "cache_hit" && i == 0 {
				n = 1
			}
			if ev == "cache_miss" && i > 0 {
				continue // the first object's miss filled the cache for the others
			}
			if ev == "cache_hit" && i > 0 {
				n = 2
			}
			want += fmt.Sprintf("gotk_cache_events_total{event_type=%q,kind=\"OCIRepository\",name=\"app-%d\",namespace=\"my-app\",operation=\"reconcile\"} %d\n", ev, i, n)
		}
	}
	g.Expect(testutil.GatherAndCompare(reg, strings.NewReader(want), "gotk_cache_events_total")).To(Succeed())
}

// The upstream cache keeps working for call sites that only swapped the import.
func TestUpstreamCacheStillWorks(t *testing.T) {
	g := NewWithT(t)
	w := newAWSWorld(t)
	agent := w.podIdentity(t)
	w.sts.AllowAssumeRole(controllerRole, targetRole)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-pod-identity.yaml"))
	upstream, err := cache.NewTokenCache(10)
	g.Expect(err).NotTo(HaveOccurred())

	for range 3 {
		_, err := auth.GetAccessToken(context.Background(), w.provider,
			myAppOptions(kube, auth.WithSTSRegion(region), auth.WithCache(*upstream, cache.InvolvedObject{}))...)
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(agent.Requests()).To(Equal(int64(1)))
	g.Expect(w.sts.Count("AssumeRole")).To(Equal(1))
}
