package auth_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/internal/inspect"
)

// attributionPolicy lets my-app and team-* reach the target role and asks
// sessions to name the tenant.
const attributionPolicy = `rules:
  - namespaces: [my-app, "team-*"]
    targets: ["arn:aws:iam::222222222222:role/target-account-role"]
aws:
  tenantSessionTags: true
  sourceIdentity: true
`

// podIdentityTags are the transitive session tags EKS Pod Identity puts on
// the controller's session: they name the controller.
var podIdentityTags = map[string]string{
	"kubernetes-namespace":       "flux-system",
	"kubernetes-service-account": "source-controller",
	"eks-cluster-name":           "flux",
}

// taggedController is an AWS world whose controller runs on EKS Pod
// Identity with its session tags, and a provider using it.
func taggedController(t *testing.T, trust ...fakes.TrustOption) (*awsWorld, aws.Provider) {
	t.Helper()
	w := newAWSWorld(t)
	agent, err := fakes.StartPodIdentityAgentWith(w.sts, controllerRole, fakes.PodIdentityAgentOptions{SessionTags: podIdentityTags})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Close)
	w.sts.AllowAssumeRole(controllerRole, targetRole, trust...)
	return w, aws.Provider{Implementation: w.sts.ImplementationAs(agent.Credentials())}
}

// With the policy's aws section, the session says which tenant made it, a
// trust policy can pin the role to one namespace, and with the controller
// on Pod Identity the session carries both sets of tags.
func TestTenantAttributedSessions(t *testing.T) {
	t.Parallel()
	policy := mustPolicy(t, attributionPolicy)
	pinned := []fakes.TrustOption{fakes.AllowTagSession(), fakes.AllowSetSourceIdentity(),
		fakes.RequireRequestTag("flux-tenant-namespace", "my-app"), fakes.RequireSourceIdentity("my-app.*")}
	get := func(provider aws.Provider, kube *fakes.KubeClient, namespace string) (*aws.Credentials, error) {
		token, err := auth.GetAccessToken(context.Background(), provider, auth.WithClient(kube),
			auth.WithServiceAccountNamespace(namespace), auth.WithServiceAccountName("my-app"),
			auth.WithSTSRegion(region), auth.WithImpersonationPolicy(policy))
		if err != nil {
			return nil, err
		}
		return token.(*aws.Credentials), nil
	}

	t.Run("the tenant the role is pinned to", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		w, provider := taggedController(t, pinned...)
		kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-pod-identity.yaml"))
		creds, err := get(provider, kube, "my-app")
		g.Expect(err).NotTo(HaveOccurred())

		calls := w.sts.Calls()
		g.Expect(calls).To(HaveLen(1))
		g.Expect(calls[0].Tags).To(Equal(map[string]string{"flux-tenant-namespace": "my-app", "flux-tenant-service-account": "my-app"}))
		g.Expect(calls[0].TransitiveTagKeys).To(Equal([]string{"flux-tenant-namespace", "flux-tenant-service-account"}))
		g.Expect(calls[0].SourceIdentity).To(Equal("my-app.my-app"))

		id := awssdk.ToString(creds.AccessKeyId)
		tags, transitive, ok := w.sts.SessionTags(id)
		g.Expect(ok).To(BeTrue())
		g.Expect(tags).To(Equal(map[string]string{
			"kubernetes-namespace": "flux-system", "kubernetes-service-account": "source-controller", "eks-cluster-name": "flux",
			"flux-tenant-namespace": "my-app", "flux-tenant-service-account": "my-app",
		}), "kubernetes-* name the controller, flux-tenant-* the tenant")
		g.Expect(transitive).To(ContainElements("kubernetes-namespace", "flux-tenant-namespace", "flux-tenant-service-account"))
		source, ok := w.sts.SessionSourceIdentity(id)
		g.Expect(ok).To(BeTrue())
		g.Expect(source).To(Equal("my-app.my-app"))
	})

	t.Run("another tenant is refused by the role's trust policy", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		w, provider := taggedController(t, pinned...)
		other := loadServiceAccount(t, "aws-pod-identity.yaml")
		other.Namespace = "team-b"
		_, err := get(provider, fakes.NewKubeClient(w.issuer, other), "team-b")
		g.Expect(err).To(MatchError(ContainSubstring("is not authorized to perform: sts:AssumeRole on resource: " + targetRole)))
		calls := w.sts.Calls()
		g.Expect(calls).To(HaveLen(1))
		g.Expect(calls[0].Tags).To(HaveKeyWithValue("flux-tenant-namespace", "team-b"))
		g.Expect(calls[0].SourceIdentity).To(Equal("team-b.my-app"))
	})

	for _, tt := range []struct {
		name  string
		trust []fakes.TrustOption
		want  string
	}{
		{"without sts:TagSession", []fakes.TrustOption{fakes.AllowSetSourceIdentity()},
			"is not authorized to perform: sts:TagSession on resource: " + targetRole + ". the impersonation policy adds tenant " +
				"session tags: the trust policy of '" + targetRole + "' must allow sts:TagSession by the source role, and the " +
				"source role's policy must allow sts:TagSession on it"},
		{"without sts:SetSourceIdentity", []fakes.TrustOption{fakes.AllowTagSession()},
			"is not authorized to perform: sts:SetSourceIdentity on resource: " + targetRole + ". the impersonation policy sets " +
				"a SourceIdentity: the trust policy of '" + targetRole + "' must allow sts:SetSourceIdentity by the source role, " +
				"and the source role's policy must allow sts:SetSourceIdentity on it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w, provider := taggedController(t, tt.trust...)
			kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-pod-identity.yaml"))
			_, err := get(provider, kube, "my-app")
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}

	t.Run("the annotation's tags and the tenant's stay within 50", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		w, provider := taggedController(t, pinned...)
		var tags []string
		for i := range 49 {
			tags = append(tags, fmt.Sprintf("t%02d: v", i))
		}
		kube := fakes.NewKubeClient(w.issuer, sa("my-app", map[string]string{
			aws.AssumeRoleAnnotation: "roleARN: " + targetRole + "\nsessionTags: {" + strings.Join(tags, ", ") + "}",
		}))
		_, err := get(provider, kube, "my-app")
		g.Expect(err).To(MatchError("invalid aws.auth.fluxcd.io/assume-role annotation on service account 'my-app/my-app': " +
			"sessionTags has 49 tags, and the impersonation policy adds flux-tenant-namespace and flux-tenant-service-account: " +
			"STS takes at most 50 in all. remove 1"))
		g.Expect(w.sts.Attempts()).To(BeZero())
	})
}

// What the policy adds to a session is part of the target's cache key:
// with and without attribution, the same ServiceAccount gets two tokens.
func TestCacheKeyAttribution(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	attributed := planFor(t, tenantSA("team-a", "app", objectLevel), auth.WithImpersonationPolicy(mustPolicy(t, `rules:
  - namespaces: [team-a]
    targets: ["arn:aws:iam::*:role/*"]
aws: {tenantSessionTags: true, sourceIdentity: true}
`)))
	plain := planFor(t, tenantSA("team-a", "app", objectLevel))
	aud := []string{"sts.amazonaws.com"}
	g.Expect(inspect.TargetKeyInputs(attributed)).To(Equal([]inspect.KeyInput{
		{Name: "serviceAccountNamespace", Value: "team-a"},
		{Name: "serviceAccountName", Value: "app"},
		{Name: "target", Value: targetRole},
		{Name: "tenantSessionTags keys", Value: []string{"flux-tenant-namespace", "flux-tenant-service-account"}},
		{Name: "tenantSessionTags", Value: []string{"team-a", "app"}},
		{Name: "sourceIdentity", Value: "team-a.app"},
		{Name: "policy tenantSessionTags", Value: "true"},
		{Name: "policy sourceIdentity", Value: "true"},
		{Name: "annotation " + aws.AssumeRoleAnnotation, Value: objectLevel[aws.AssumeRoleAnnotation]},
	}))
	g.Expect(attributed.SourceKey(aud)).To(Equal(plain.SourceKey(aud)), "the source is the same")
	g.Expect(attributed.TargetKey(aud)).NotTo(Equal(plain.TargetKey(aud)))
}
