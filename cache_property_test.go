package auth_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	fluxauth "github.com/fluxcd/pkg/auth"
	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

// cachePropertySteps is how many random configurations each provider's run
// of TestCacheNeverChangesTheAnswer tries; the two together are the issue's
// 10,000 and more.
const cachePropertySteps = 6000

// propertyWorld is what the cache property needs of a provider's fakes.
type propertyWorld struct {
	provider auth.Provider
	issuer   *fakes.Issuer
	// annotations draws a ServiceAccount's annotations.
	annotations func(r *rand.Rand) map[string]string
	// options draws the caller's options, and describes them.
	options func(r *rand.Rand) ([]auth.Option, string)
	// who names the identity a token belongs to.
	who func(t *testing.T, token fluxauth.Token) string
}

// TestCacheNeverChangesTheAnswer is a randomized property: tenants edit
// their ServiceAccounts' annotations and objects call with other options,
// all through one shared cache, and every answer the cache gives (an
// identity, or a refusal) must be the one the same configuration gets
// without a cache. An input left out of a key shows up as an old identity
// served after an edit.
//
// The answer without a cache is computed once per distinct configuration:
// the fakes are deterministic, so that is the same as computing it for
// every step, only cheaper.
func TestCacheNeverChangesTheAnswer(t *testing.T) {
	t.Run("aws", func(t *testing.T) { checkCacheProperty(t, newAWSPropertyWorld(t), 1) })
	t.Run("gcp", func(t *testing.T) { checkCacheProperty(t, newGCPPropertyWorld(t), 2) })
}

func checkCacheProperty(t *testing.T, w propertyWorld, seed uint64) {
	g := NewWithT(t)
	r := rand.New(rand.NewPCG(seed, 0x1dc4a1))
	shared, err := auth.NewTokenCache(100_000)
	g.Expect(err).NotTo(HaveOccurred())

	type answer struct {
		who string
		err bool
	}
	ctx := context.Background()
	var objs []*corev1.ServiceAccount
	for _, ns := range []string{"team-a", "team-b"} {
		for _, name := range []string{"app", "web", "default"} {
			objs = append(objs, tenantSA(ns, name, nil))
		}
	}
	kube := &editedServiceAccounts{Client: fakes.NewKubeClient(w.issuer, toObjects(objs)...),
		annotations: map[client.ObjectKey]map[string]string{}}
	uncached := map[string]answer{}
	ask := func(opts []auth.Option) answer {
		token, err := auth.GetAccessToken(ctx, w.provider, opts...)
		if err != nil {
			return answer{err: true}
		}
		return answer{who: w.who(t, token)}
	}

	var successes, refusals int
	for step := range cachePropertySteps {
		ns := pick(r, "team-a", "team-b")
		name := pick(r, "", "app", "web")
		lockdown := r.IntN(2) == 0
		opts, desc := w.options(r)
		opts = append(opts, auth.WithServiceAccountNamespace(ns), auth.WithServiceAccountName(name))

		used := name
		if name == "" && lockdown {
			used = "default"
		}
		// The tenant edits the ServiceAccount the object uses.
		var annotations map[string]string
		if used != "" {
			annotations = w.annotations(r)
			kube.annotations[client.ObjectKey{Namespace: ns, Name: used}] = annotations
		}
		opts = append(opts, auth.WithClient(kube))
		if lockdown {
			opts = append(opts, auth.WithDefaultServiceAccount("default"))
		}
		config := fmt.Sprintf("ns=%s name=%s used=%s lockdown=%t %s annotations=%s",
			ns, name, used, lockdown, desc, describeAnnotations(annotations))

		want, ok := uncached[config]
		if !ok {
			want = ask(opts)
			uncached[config] = want
		}
		got := ask(append(opts, auth.WithTokenCache(shared, cache.InvolvedObject{})))
		if got != want {
			t.Fatalf("step %d: with the cache %+v, without %+v, for %s", step, got, want, config)
		}
		if got.err {
			refusals++
		} else {
			successes++
		}
	}
	t.Logf("%d steps, %d distinct configurations, %d identities, %d refusals, %d tokens cached",
		cachePropertySteps, len(uncached), successes, refusals, shared.Len())
	// The property says nothing unless the cache was hit often and both
	// outcomes occurred.
	g.Expect(len(uncached)).To(BeNumerically("<", cachePropertySteps/2))
	g.Expect(successes).To(BeNumerically(">", cachePropertySteps/4))
	g.Expect(refusals).To(BeNumerically(">", cachePropertySteps/20))
}

// editedServiceAccounts serves ServiceAccounts with the annotations a
// tenant last wrote. Updating the fake client's objects instead costs a
// REST mapper per update, most of this test's time.
type editedServiceAccounts struct {
	client.Client
	annotations map[client.ObjectKey]map[string]string // set between calls, never during one
}

func (e *editedServiceAccounts) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := e.Client.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	obj.SetAnnotations(maps.Clone(e.annotations[key]))
	return nil
}

// SubResource keeps the edited annotations on an object the fake writes
// back after a token request.
func (e *editedServiceAccounts) SubResource(name string) client.SubResourceClient {
	return editedSubResource{e.Client.SubResource(name), e}
}

type editedSubResource struct {
	client.SubResourceClient
	e *editedServiceAccounts
}

func (s editedSubResource) Create(ctx context.Context, obj, sub client.Object, opts ...client.SubResourceCreateOption) error {
	if err := s.SubResourceClient.Create(ctx, obj, sub, opts...); err != nil {
		return err
	}
	obj.SetAnnotations(maps.Clone(s.e.annotations[client.ObjectKeyFromObject(obj)]))
	return nil
}

func pick[T any](r *rand.Rand, choices ...T) T { return choices[r.IntN(len(choices))] }

func describeAnnotations(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s=%q;", k, m[k])
	}
	return b.String()
}

// useServiceAccount draws the optional field, unset included.
func useServiceAccountLine(r *rand.Rand) string {
	return pick(r, "", "\nuseServiceAccount: true", "\nuseServiceAccount: false")
}

func newAWSPropertyWorld(t *testing.T) propertyWorld {
	w := newAWSWorld(t)
	w.podIdentity(t)
	const (
		sourceA = "arn:aws:iam::111111111111:role/source-a"
		sourceB = "arn:aws:iam::111111111111:role/source-b"
		targetA = "arn:aws:iam::222222222222:role/target-a"
		targetB = "arn:aws:iam::333333333333:role/target-b"
	)
	for _, target := range []string{targetA, targetB} {
		for _, source := range []string{controllerRole, sourceA, sourceB} {
			w.sts.AllowAssumeRole(source, target)
		}
	}
	for _, ns := range []string{"team-a", "team-b"} {
		for _, name := range []string{"app", "web", "default"} {
			w.sts.AllowWebIdentity(sourceA, ns, name)
			// sourceB trusts only team-a: some chains are refused.
			if ns == "team-a" {
				w.sts.AllowWebIdentity(sourceB, ns, name)
			}
		}
	}
	return propertyWorld{
		provider: w.provider,
		issuer:   w.issuer,
		annotations: func(r *rand.Rand) map[string]string {
			m := map[string]string{}
			if role := pick(r, "", sourceA, sourceB); role != "" {
				m[aws.RoleARNAnnotation] = role
			}
			if target := pick(r, "", targetA, targetB); target != "" {
				m[aws.AssumeRoleAnnotation] = "roleARN: " + target + useServiceAccountLine(r)
			}
			return m
		},
		options: func(r *rand.Rand) ([]auth.Option, string) {
			reg := pick(r, "us-east-1", "eu-west-1")
			aud := pick(r, []string(nil), []string{"sts.amazonaws.com"})
			return []auth.Option{auth.WithSTSRegion(reg), auth.WithAudiences(aud...)},
				fmt.Sprintf("region=%s audiences=%q", reg, aud)
		},
		who: func(t *testing.T, token fluxauth.Token) string {
			creds, ok := token.(*aws.Credentials)
			if !ok {
				t.Fatalf("token is %T, want *aws.Credentials", token)
			}
			who, ok := w.sts.WhoAmI(*creds.AccessKeyId)
			if !ok {
				t.Fatal("the credentials were not issued by the fake STS")
			}
			return who
		},
	}
}

func newGCPPropertyWorld(t *testing.T) propertyWorld {
	w := newGCPWorld(t)
	const (
		wipA    = "projects/123/locations/global/workloadIdentityPools/pool/providers/a"
		wipB    = "projects/123/locations/global/workloadIdentityPools/pool/providers/b"
		sourceA = "source-a@source-project.iam.gserviceaccount.com"
		sourceB = "source-b@source-project.iam.gserviceaccount.com"
		targetA = "target-a@target-project.iam.gserviceaccount.com"
		targetB = "target-b@other-project.iam.gserviceaccount.com"
	)
	w.sts.AllowAudience("//iam.googleapis.com/" + wipA)
	w.sts.AllowAudience("//iam.googleapis.com/" + wipB)
	sources := []string{controllerGSA, sourceA, sourceB}
	for _, ns := range []string{"team-a", "team-b"} {
		for _, name := range []string{"app", "web", "default"} {
			subject := fakes.ServiceAccountSubject(ns, name)
			for _, aud := range []string{gkeAudience, "//iam.googleapis.com/" + wipA, "//iam.googleapis.com/" + wipB} {
				p := fakes.FederatedPrincipal(aud, subject)
				sources = append(sources, p)
				w.iam.AllowImpersonation(p, sourceA)
				// sourceB trusts only team-a: some chains are refused.
				if ns == "team-a" {
					w.iam.AllowImpersonation(p, sourceB)
				}
			}
		}
	}
	for _, s := range sources {
		w.iam.AllowImpersonation(s, targetA)
		w.iam.AllowImpersonation(s, targetB)
	}
	return propertyWorld{
		provider: w.provider,
		issuer:   w.issuer,
		annotations: func(r *rand.Rand) map[string]string {
			m := map[string]string{}
			if gsa := pick(r, "", sourceA, sourceB); gsa != "" {
				m[gcp.ServiceAccountAnnotation] = gsa
			}
			if wip := pick(r, "", wipA, wipB); wip != "" {
				m[gcp.WorkloadIdentityProviderAnnotation] = wip
			}
			if target := pick(r, "", targetA, targetB); target != "" {
				m[gcp.ImpersonateAnnotation] = "gcpServiceAccount: " + target + useServiceAccountLine(r)
			}
			return m
		},
		options: func(r *rand.Rand) ([]auth.Option, string) {
			// The audiences the caller sets are the Kubernetes token's;
			// the workload identity provider annotation still decides the
			// audience of the exchange.
			aud := pick(r, nil, []string{"//iam.googleapis.com/" + wipA}, []string{"//iam.googleapis.com/" + wipB})
			scopes := pick(r, nil, []string{cloudPlatform})
			return []auth.Option{auth.WithAudiences(aud...), auth.WithScopes(scopes...)},
				fmt.Sprintf("audiences=%q scopes=%q", aud, scopes)
		},
		who: func(t *testing.T, token fluxauth.Token) string { return w.whoAmI(t, token) },
	}
}
