package auth_test

import (
	"context"
	"testing"

	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/fakes"
)

// TestOneChainOneSetOfTokens: GetAccessToken, GetArtifactRegistryCredentials
// and GetRESTConfig of one chain share its cached source and target tokens,
// so the three cost the two STS calls of the first, plus the registry's
// own login.
func TestOneChainOneSetOfTokens(t *testing.T) {
	g := NewWithT(t)
	w := newAWSWorld(t)
	w.sts.AllowWebIdentity(sourceRole, "my-app", "my-app")
	w.sts.AllowAssumeRole(sourceRole, targetRole)
	ecr, provider := w.startECR(t, targetRole)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-object-irsa.yaml"))
	tc, err := auth.NewTokenCache(100)
	g.Expect(err).NotTo(HaveOccurred())
	opts := myAppOptions(kube, auth.WithSTSRegion(region),
		auth.WithTokenCache(tc, cache.InvolvedObject{Kind: "OCIRepository", Name: "app", Namespace: "my-app"}))
	ctx := context.Background()

	_, err = auth.GetAccessToken(ctx, provider, opts...)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = auth.GetArtifactRegistryCredentials(ctx, provider, "123456789012.dkr.ecr.us-east-1.amazonaws.com/app", opts...)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = auth.GetRESTConfig(ctx, provider, append(opts,
		auth.WithClusterResource("arn:aws:eks:us-east-1:222222222222:cluster/prod"),
		auth.WithClusterAddress("https://prod.eks.example:443"), auth.WithCAData("ca-pem"))...)
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(w.sts.Count("AssumeRoleWithWebIdentity")).To(Equal(1))
	g.Expect(w.sts.Count("AssumeRole")).To(Equal(1))
	g.Expect(ecr.Calls()).To(HaveLen(1))
}
