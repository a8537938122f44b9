package auth_test

import (
	"context"
	"testing"

	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/fakes"
)

func TestAWSGetRESTConfigImpersonates(t *testing.T) {
	g := NewWithT(t)
	w, opts := podIdentityCase(t)
	w.sts.AllowAssumeRole(controllerRole, targetRole)

	conf, err := auth.GetRESTConfig(context.Background(), w.provider, append(opts,
		auth.WithClusterResource("arn:aws:eks:eu-west-1:222222222222:cluster/prod"),
		auth.WithClusterAddress("https://prod.eks.example:443"),
		auth.WithCAData("ca-pem"))...)
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(conf.Host).To(Equal("https://prod.eks.example:443"))
	g.Expect(string(conf.CAData)).To(Equal("ca-pem"))
	g.Expect(conf.BearerToken).To(HavePrefix("k8s-aws-v1."))
	calls := w.sts.Calls()
	g.Expect(calls).To(HaveLen(1))
	g.Expect(calls[0].Action).To(Equal("AssumeRole"))
	g.Expect(calls[0].RoleARN).To(Equal(targetRole))
	g.Expect(calls[0].Region).To(Equal("eu-west-1"), "the cluster's region, as upstream derives it")
}

// TestRESTConfigReusesTheAccessToken: GetAccessToken and GetRESTConfig of
// one chain share its cached tokens; the CA data and the cluster only key
// the REST config itself. Before, the CA data keyed the tokens too and the
// REST config cost a second source exchange and AssumeRole (2 calls → 4).
func TestRESTConfigReusesTheAccessToken(t *testing.T) {
	g := NewWithT(t)
	w := newAWSWorld(t)
	w.sts.AllowWebIdentity(sourceRole, "my-app", "my-app")
	w.sts.AllowAssumeRole(sourceRole, targetRole)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-object-irsa.yaml"))
	tc, err := auth.NewTokenCache(100)
	g.Expect(err).NotTo(HaveOccurred())
	opts := []auth.Option{auth.WithClient(kube), auth.WithServiceAccountNamespace("my-app"),
		auth.WithServiceAccountName("my-app"), auth.WithSTSRegion("eu-west-1"),
		auth.WithTokenCache(tc, cache.InvolvedObject{Kind: "Kustomization", Name: "app", Namespace: "my-app"})}

	_, err = auth.GetAccessToken(context.Background(), w.provider, opts...)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(w.sts.Calls()).To(HaveLen(2))

	for _, ca := range []string{"ca-pem", "other-ca-pem"} {
		conf, err := auth.GetRESTConfig(context.Background(), w.provider, append(opts,
			auth.WithClusterResource("arn:aws:eks:eu-west-1:222222222222:cluster/prod"),
			auth.WithClusterAddress("https://prod.eks.example:443"),
			auth.WithCAData(ca))...)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(conf.CAData)).To(Equal(ca), "the REST config is keyed by its CA data")
	}
	g.Expect(w.sts.Calls()).To(HaveLen(2), "the REST configs reuse the source and target tokens")
}
