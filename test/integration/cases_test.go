//go:build integration

package integration

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/fakes"
)

// lockdownModes runs a case with and without multi-tenancy lockdown.
var lockdownModes = []struct {
	name string
	opts []auth.Option
}{
	{"lockdown off", nil},
	{"lockdown on", []auth.Option{auth.WithDefaultServiceAccount("default")}},
}

// forMyApp is what a controller passes for an object in ns that names the
// ServiceAccount my-app, through the least-privileged controller client.
func forMyApp(ns string, extra ...auth.Option) []auth.Option {
	return append([]auth.Option{auth.WithClient(controller), auth.WithServiceAccountNamespace(ns),
		auth.WithServiceAccountName("my-app")}, extra...)
}

// The proposal's cases, each from its testdata manifest, applied through
// the real API server and read back by the controller with its minimal
// RBAC. The fake clouds check what the real ones do: AssumeRole is signed
// with the source's credentials, generateAccessToken carries the source's
// token, and web identity tokens, minted by the real TokenRequest API,
// verify with the API server's published keys.

// Case 1: EKS Pod Identity (controller) calls AssumeRole.
func TestAWSPodIdentityAssumeRole(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newAWSWorld(t)
	w.sts.AllowAssumeRole(controllerRole, targetRole)
	applyManifest(t, "aws-pod-identity.yaml", ns)

	token, err := auth.GetAccessToken(context.Background(), w.provider, forMyApp(ns, auth.WithSTSRegion(region))...)
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(w.agent.Requests()).To(Equal(int64(1)))
	g.Expect(w.sts.Calls()).To(Equal([]fakes.AWSSTSCall{{
		Action: "AssumeRole", RoleARN: targetRole, RoleSessionName: sessionName(ns),
		Caller: controllerRole, Region: region,
	}}))
	g.Expect(w.whoAmI(t, token)).To(Equal(targetSession(ns)))
}

// Case 2: controller IRSA, its token from the real TokenRequest API, calls
// AssumeRole.
func TestAWSControllerIRSAAssumeRole(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newAWSWorld(t)
	w.irsa(t)
	w.sts.AllowAssumeRole(controllerRole, targetRole)
	applyManifest(t, "aws-controller-irsa.yaml", ns)

	token, err := auth.GetAccessToken(context.Background(), w.provider, forMyApp(ns, auth.WithSTSRegion(region))...)
	g.Expect(err).NotTo(HaveOccurred())

	calls := w.sts.Calls()
	g.Expect(calls).To(HaveLen(2))
	g.Expect(calls[0].Action).To(Equal("AssumeRoleWithWebIdentity"))
	g.Expect(calls[0].RoleARN).To(Equal(controllerRole))
	g.Expect(calls[0].Caller).To(Equal("system:serviceaccount:flux-system:source-controller"))
	g.Expect(calls[0].Err).To(BeEmpty())
	g.Expect(calls[1]).To(Equal(fakes.AWSSTSCall{
		Action: "AssumeRole", RoleARN: targetRole, RoleSessionName: sessionName(ns),
		Caller: controllerRole, Region: region,
	}))
	g.Expect(w.agent.Requests()).To(BeZero())
	g.Expect(w.whoAmI(t, token)).To(Equal(targetSession(ns)))
}

// Case 3: object-level IRSA: the API server mints my-app's token, STS
// verifies it with the API server's keys, and the role it yields assumes
// the target.
func TestAWSObjectLevelIRSAAssumeRole(t *testing.T) {
	t.Parallel()
	for _, mode := range lockdownModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns := newNamespace(t)
			w := newAWSWorld(t)
			w.sts.AllowWebIdentity(sourceRole, ns, "my-app")
			w.sts.AllowAssumeRole(sourceRole, targetRole)
			w.sts.AllowAssumeRole(controllerRole, targetRole) // must not be used
			applyManifest(t, "aws-object-irsa.yaml", ns)

			token, err := auth.GetAccessToken(context.Background(), w.provider,
				forMyApp(ns, append(mode.opts, auth.WithSTSRegion(region))...)...)
			g.Expect(err).NotTo(HaveOccurred())

			g.Expect(w.agent.Requests()).To(BeZero())
			calls := w.sts.Calls()
			g.Expect(calls).To(HaveLen(2))
			g.Expect(calls[0].Action).To(Equal("AssumeRoleWithWebIdentity"))
			g.Expect(calls[0].RoleARN).To(Equal(sourceRole))
			g.Expect(calls[0].Caller).To(Equal("system:serviceaccount:" + ns + ":my-app"))
			g.Expect(calls[0].Err).To(BeEmpty())
			g.Expect(calls[1]).To(Equal(fakes.AWSSTSCall{
				Action: "AssumeRole", RoleARN: targetRole, RoleSessionName: sessionName(ns),
				Caller: sourceRole, Region: region,
			}))
			g.Expect(w.whoAmI(t, token)).To(Equal(targetSession(ns)))
		})
	}
}

// Case 4: GKE workload identity (controller) impersonates the target. Only
// the controller's token comes from the metadata server, per instance, so
// this case runs in parallel with the others.
func TestGCPControllerWIFImpersonate(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newGCPController(t)
	w.iam.AllowImpersonation(controllerGSA, targetGSA)
	applyManifest(t, "gcp-controller-wif.yaml", ns)

	token, err := auth.GetAccessToken(context.Background(), w.provider, forMyApp(ns)...)
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(w.iam.Calls()).To(Equal([]fakes.GCPIAMCall{{
		Target: targetGSA, Caller: controllerGSA, Scopes: []string{cloudPlatform}, Lifetime: "3600s",
	}}))
	g.Expect(w.whoAmI(t, token)).To(Equal(targetGSA))
	g.Expect(w.sts.Exchanges()).To(BeZero())
}

// Case 5: object-level workload identity: the API server mints my-app's
// token for the GKE pool, Google STS verifies it with the API server's keys,
// the federated identity impersonates source-sa, which impersonates the
// target.
func TestGCPObjectLevelWIFImpersonate(t *testing.T) {
	for _, mode := range lockdownModes {
		t.Run(mode.name, func(t *testing.T) {
			g := NewWithT(t)
			ns := newNamespace(t)
			principal := fakes.FederatedPrincipal(gkeAudience, "system:serviceaccount:"+ns+":my-app")
			w := newGCPWorld(t)
			w.iam.AllowImpersonation(principal, sourceGSA)
			w.iam.AllowImpersonation(sourceGSA, targetGSA)
			w.iam.AllowImpersonation(controllerGSA, targetGSA) // must not be used
			applyManifest(t, "gcp-object-wif.yaml", ns)

			token, err := auth.GetAccessToken(context.Background(), w.provider, forMyApp(ns, mode.opts...)...)
			g.Expect(err).NotTo(HaveOccurred())

			g.Expect(w.sts.Exchanges()).To(Equal(int64(1)))
			calls := w.iam.Calls()
			g.Expect(calls).To(HaveLen(2))
			g.Expect(calls[0].Target).To(Equal(sourceGSA), "upstream's own hop to iam.gke.io/gcp-service-account")
			g.Expect(calls[0].Caller).To(Equal(principal))
			g.Expect(calls[1]).To(Equal(fakes.GCPIAMCall{
				Target: targetGSA, Caller: sourceGSA, Scopes: []string{cloudPlatform}, Lifetime: "3600s",
			}))
			g.Expect(w.whoAmI(t, token)).To(Equal(targetGSA))
			g.Expect(w.metadata.Requests("instance/service-accounts/default/token")).To(BeZero())
		})
	}
}
