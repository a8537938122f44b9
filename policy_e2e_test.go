package auth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

// testPolicy lets namespace my-app reach the target role from either source,
// and team-* namespaces only roles named after them.
const testPolicy = `rules:
  - namespaces: [my-app]
    targets: ["arn:aws:iam::222222222222:role/target-account-role", "target-sa@target-project.iam.gserviceaccount.com"]
  - namespaces: ["team-*"]
    sources: [serviceAccount]
    targets: ["arn:aws:iam::222222222222:role/{namespace}-*"]
`

// A policy refuses in Plan, before any cloud call, what no rule allows,
// and the refusal says what the operator would have to add; what it allows
// runs as without a policy.
func TestPolicyInPlan(t *testing.T) {
	policy := mustPolicy(t, testPolicy)
	controllerLevel := map[string]string{aws.AssumeRoleAnnotation: "roleARN: arn:aws:iam::222222222222:role/team-b-deploy"}

	t.Run("allowed", func(t *testing.T) {
		g := NewWithT(t)
		w := newAWSWorld(t)
		w.podIdentity(t)
		w.sts.AllowAssumeRole(controllerRole, targetRole)
		kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-pod-identity.yaml"))
		token, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube,
			auth.WithSTSRegion(region), auth.WithImpersonationPolicy(policy))...)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(w.whoAmI(t, token)).To(Equal(targetSession))
	})

	t.Run("denied", func(t *testing.T) {
		g := NewWithT(t)
		w := newAWSWorld(t)
		w.podIdentity(t)
		w.sts.AllowAssumeRole(controllerRole, "arn:aws:iam::222222222222:role/team-b-deploy")
		reg := prometheus.NewRegistry()
		tc, err := auth.NewTokenCache(10, auth.CacheMetricsRegisterer(reg), auth.CacheMetricsPrefix("gotk_"))
		g.Expect(err).NotTo(HaveOccurred())
		sa := sa("app", controllerLevel)
		sa.Namespace = "team-b"
		kube := fakes.NewKubeClient(w.issuer, sa)
		opts := []auth.Option{auth.WithClient(kube), auth.WithServiceAccountNamespace("team-b"),
			auth.WithServiceAccountName("app"), auth.WithSTSRegion(region), auth.WithImpersonationPolicy(policy),
			auth.WithTokenCache(tc, cache.InvolvedObject{Kind: "Bucket", Name: "b", Namespace: "team-b"})}

		_, err = auth.GetAccessToken(context.Background(), w.provider, opts...)
		g.Expect(err).To(MatchError(auth.ErrPolicyDenied))
		g.Expect(err).To(MatchError("impersonation denied by the impersonation policy: service account 'team-b/app' " +
			"may not impersonate 'arn:aws:iam::222222222222:role/team-b-deploy' from the controller identity: no rule " +
			"of the policy allows namespace 'team-b' to. the operator would have to add a rule with namespaces " +
			"['team-b'], sources [controller] and a target matching 'arn:aws:iam::222222222222:role/team-b-deploy'"))
		g.Expect(w.sts.Attempts()).To(BeZero(), "refused before any cloud call")
		g.Expect(testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP gotk_policy_denials_total Total number of impersonations refused by the impersonation policy, by namespace of the object.
# TYPE gotk_policy_denials_total counter
gotk_policy_denials_total{namespace="team-b"} 1
`), "gotk_policy_denials_total")).To(Succeed())

		// The ServiceAccount as the source is allowed by the second rule.
		sa.Annotations["eks.amazonaws.com/role-arn"] = sourceRole
		kube = fakes.NewKubeClient(w.issuer, sa)
		c, err := auth.Plan(context.Background(), w.provider, auth.WithClient(kube), auth.WithServiceAccountNamespace("team-b"),
			auth.WithServiceAccountName("app"), auth.WithSTSRegion(region), auth.WithImpersonationPolicy(policy),
			auth.WithDefaultServiceAccount("default"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.Source.Kind).To(Equal(auth.SourceServiceAccount))
	})

	t.Run("GCP", func(t *testing.T) {
		g := NewWithT(t)
		issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
		g.Expect(err).NotTo(HaveOccurred())
		for target, allowed := range map[string]bool{
			"target-sa@target-project.iam.gserviceaccount.com": true,
			"target-sa@other-project.iam.gserviceaccount.com":  false,
			"admin-sa@target-project.iam.gserviceaccount.com":  false,
		} {
			kube := fakes.NewKubeClient(issuer, sa("my-app", map[string]string{gcp.ImpersonateAnnotation: "gcpServiceAccount: " + target}))
			_, err := auth.Plan(context.Background(), gcp.Provider{}, myAppOptions(kube, auth.WithImpersonationPolicy(policy))...)
			if allowed {
				g.Expect(err).NotTo(HaveOccurred(), target)
			} else {
				g.Expect(err).To(MatchError(auth.ErrPolicyDenied), target)
			}
		}
	})

	t.Run("no impersonation is not the policy's business", func(t *testing.T) {
		g := NewWithT(t)
		w := newAWSWorld(t)
		s := sa("app", map[string]string{"eks.amazonaws.com/role-arn": sourceRole})
		s.Namespace = "elsewhere"
		c, err := auth.Plan(context.Background(), w.provider, auth.WithClient(fakes.NewKubeClient(w.issuer, s)),
			auth.WithServiceAccountNamespace("elsewhere"), auth.WithServiceAccountName("app"),
			auth.WithSTSRegion(region), auth.WithImpersonationPolicy(policy))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.Impersonation).To(BeNil())
	})
}
