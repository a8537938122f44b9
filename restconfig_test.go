package auth_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
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
