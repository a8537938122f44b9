package auth_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

// The three AWS cases of the proposal, each driven end to end from its
// testdata manifest: the fake STS proves the target was assumed with the
// right source credentials by verifying the SigV4 signature of AssumeRole
// against credentials it issued to the source.

func TestAWSPodIdentityAssumeRole(t *testing.T) {
	g := NewWithT(t)
	w := newAWSWorld(t)
	agent := w.podIdentity(t)
	w.sts.AllowAssumeRole(controllerRole, targetRole)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-pod-identity.yaml"))

	token, err := auth.GetAccessToken(context.Background(), w.provider,
		auth.WithClient(kube), auth.WithServiceAccountNamespace("my-app"),
		auth.WithServiceAccountName("my-app"), auth.WithSTSRegion(region))
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(agent.Requests()).To(Equal(int64(1)))
	g.Expect(kube.TokenRequests()).To(BeZero())
	g.Expect(w.sts.Calls()).To(Equal([]fakes.AWSSTSCall{{
		Action: "AssumeRole", RoleARN: targetRole, RoleSessionName: "my-app.my-app.fluxcd.io",
		Caller: controllerRole, Region: region,
	}}))
	g.Expect(w.whoAmI(t, token)).To(Equal("arn:aws:sts::222222222222:assumed-role/target-account-role/my-app.my-app.fluxcd.io"))
}

func TestAWSControllerIRSAAssumeRole(t *testing.T) {
	g := NewWithT(t)
	w := newAWSWorld(t)
	env, err := fakes.IRSAEnv(t.TempDir(), region, w.sts, w.issuer, controllerRole, "flux-system", "source-controller")
	g.Expect(err).NotTo(HaveOccurred())
	setEnv(t, env)
	w.sts.AllowWebIdentity(controllerRole, "flux-system", "source-controller")
	w.sts.AllowAssumeRole(controllerRole, targetRole)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-controller-irsa.yaml"))

	token, err := auth.GetAccessToken(context.Background(), w.provider,
		auth.WithClient(kube), auth.WithServiceAccountNamespace("my-app"),
		auth.WithServiceAccountName("my-app"), auth.WithSTSRegion(region))
	g.Expect(err).NotTo(HaveOccurred())

	calls := w.sts.Calls()
	g.Expect(calls).To(HaveLen(2))
	g.Expect(calls[0].Action).To(Equal("AssumeRoleWithWebIdentity"))
	g.Expect(calls[0].RoleARN).To(Equal(controllerRole))
	g.Expect(calls[0].Caller).To(Equal("system:serviceaccount:flux-system:source-controller"))
	g.Expect(calls[0].Err).To(BeEmpty())
	g.Expect(calls[1]).To(Equal(fakes.AWSSTSCall{
		Action: "AssumeRole", RoleARN: targetRole, RoleSessionName: "my-app.my-app.fluxcd.io",
		Caller: controllerRole, Region: region,
	}))
	g.Expect(kube.TokenRequests()).To(BeZero(), "the object's ServiceAccount must not be the source")
	g.Expect(w.whoAmI(t, token)).To(Equal("arn:aws:sts::222222222222:assumed-role/target-account-role/my-app.my-app.fluxcd.io"))
}

func TestAWSObjectLevelIRSAAssumeRole(t *testing.T) {
	for _, lockdown := range []bool{false, true} {
		t.Run(map[bool]string{false: "lockdown off", true: "lockdown on"}[lockdown], func(t *testing.T) {
			g := NewWithT(t)
			w := newAWSWorld(t)
			agent := w.podIdentity(t) // present, and must not be used
			w.sts.AllowWebIdentity(sourceRole, "my-app", "my-app")
			w.sts.AllowAssumeRole(sourceRole, targetRole)
			kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-object-irsa.yaml"))

			opts := []auth.Option{auth.WithClient(kube), auth.WithServiceAccountNamespace("my-app"),
				auth.WithServiceAccountName("my-app"), auth.WithSTSRegion(region)}
			if lockdown {
				opts = append(opts, auth.WithDefaultServiceAccount("default"))
			}
			token, err := auth.GetAccessToken(context.Background(), w.provider, opts...)
			g.Expect(err).NotTo(HaveOccurred())

			g.Expect(agent.Requests()).To(BeZero())
			g.Expect(kube.TokenRequests()).To(Equal(int64(1)))
			calls := w.sts.Calls()
			g.Expect(calls).To(HaveLen(2))
			g.Expect(calls[0].Action).To(Equal("AssumeRoleWithWebIdentity"))
			g.Expect(calls[0].RoleARN).To(Equal(sourceRole))
			g.Expect(calls[0].Caller).To(Equal("system:serviceaccount:my-app:my-app"))
			g.Expect(calls[1]).To(Equal(fakes.AWSSTSCall{
				Action: "AssumeRole", RoleARN: targetRole, RoleSessionName: "my-app.my-app.fluxcd.io",
				Caller: sourceRole, Region: region,
			}))
			g.Expect(w.whoAmI(t, token)).To(Equal("arn:aws:sts::222222222222:assumed-role/target-account-role/my-app.my-app.fluxcd.io"))
		})
	}
}

// Every hop made for a ServiceAccount is named the same way, within STS's
// 64 characters whatever the name: upstream's web identity session name
// ("<name>.<namespace>.<region>.fluxcd.io") was refused beyond them.
func TestAWSOneSessionNameOnEveryHop(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := newAWSWorld(t)
	name := strings.Repeat("a", 200) // Kubernetes allows 253
	w.sts.AllowWebIdentity(sourceRole, "my-app", name)
	w.sts.AllowAssumeRole(sourceRole, targetRole)
	account := loadServiceAccount(t, "aws-object-irsa.yaml")
	account.Name = name
	kube := fakes.NewKubeClient(w.issuer, account)

	_, err := auth.GetAccessToken(context.Background(), w.provider, auth.WithClient(kube),
		auth.WithServiceAccountNamespace("my-app"), auth.WithServiceAccountName(name), auth.WithSTSRegion(region))
	g.Expect(err).NotTo(HaveOccurred())
	calls := w.sts.Calls()
	g.Expect(calls).To(HaveLen(2))
	want := aws.RoleSessionName(client.ObjectKey{Namespace: "my-app", Name: name})
	g.Expect(want).To(MatchRegexp(`^my-app\.a+_[0-9a-f]{16}$`))
	g.Expect(calls[0].RoleSessionName).To(Equal(want), "AssumeRoleWithWebIdentity")
	g.Expect(calls[1].RoleSessionName).To(Equal(want), "AssumeRole")
}
