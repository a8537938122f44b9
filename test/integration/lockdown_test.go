//go:build integration

package integration

import (
	"context"
	"strings"
	"testing"

	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
)

const defaultRole = "arn:aws:iam::111111111111:role/tenant-default"

func serviceAccount(name string, annotations map[string]string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
}

// TestLockdown drives the lockdown rules (DESIGN §4) whose outcome depends
// on what the API server holds and answers: a missing default
// ServiceAccount is the API server's NotFound, a present one is the source
// of a real TokenRequest, and every refusal happens before any cloud call.
// The controller's identity is Pod Identity for controllerRole. Rows that
// change process-wide upstream settings run alone, the others in parallel.
func TestLockdown(t *testing.T) {
	const (
		impFalse = "roleARN: " + targetRole + "\nuseServiceAccount: false"
		impUnset = "roleARN: " + targetRole
	)
	for _, tt := range []struct {
		name     string
		saName   string                   // named by the object; "" for none
		objects  []*corev1.ServiceAccount // created in the test's namespace
		manifest string                   // a testdata manifest to create too
		lockdown bool
		upstream bool // lockdown the controllers' way, fluxauth.SetDefaultServiceAccount
		gateOff  bool

		wantWho   string // role the returned credentials belong to
		wantErrIs error
		wantErr   string
	}{
		{
			name: "no SA named: the default SA is the source", lockdown: true,
			objects: []*corev1.ServiceAccount{serviceAccount("default", map[string]string{"eks.amazonaws.com/role-arn": defaultRole})},
			wantWho: "arn:aws:sts::111111111111:assumed-role/tenant-default/",
		},
		{
			name: "no SA named: the default SA is missing", lockdown: true,
			wantErrIs: fluxauth.ErrDefaultServiceAccountNotFound,
			wantErr: "failed to get default service account 'NS/default': " + fluxauth.ErrDefaultServiceAccountNotFound.Error() +
				". create it, or set .spec.serviceAccountName on the object",
		},
		{
			name: "controller-level manifest: the SA is the source and has no role", lockdown: true, saName: "my-app",
			manifest:  "aws-pod-identity.yaml",
			wantErrIs: aws.ErrNoServiceAccountRole,
			wantErr: "failed to get provider identity from service account 'NS/my-app' annotations: " +
				"the service account has no eks.amazonaws.com/role-arn annotation: " +
				"add eks.amazonaws.com/role-arn with the IAM role the service account's token is exchanged for " +
				"(under multi-tenancy lockdown the service account, not the controller, is the source of aws.auth.fluxcd.io/assume-role)",
		},
		{
			name: "useServiceAccount false: refused", lockdown: true, saName: "app",
			objects:   []*corev1.ServiceAccount{serviceAccount("app", map[string]string{aws.AssumeRoleAnnotation: impFalse})},
			wantErrIs: auth.ErrLockdownForbidsControllerIdentity,
			wantErr: "multi-tenancy lockdown forbids impersonation from the controller identity: " +
				"aws.auth.fluxcd.io/assume-role on service account 'NS/app' sets 'useServiceAccount: false', " +
				"but this controller runs with multi-tenancy lockdown (--default-service-account). " +
				"remove 'useServiceAccount: false' so the service account's own identity is the source",
		},
		{
			name: "useServiceAccount false: refused under the upstream flag", upstream: true, saName: "app",
			objects:   []*corev1.ServiceAccount{serviceAccount("app", map[string]string{aws.AssumeRoleAnnotation: impFalse})},
			wantErrIs: auth.ErrLockdownForbidsControllerIdentity,
		},
		{
			name: "useServiceAccount false with a role: ambiguous", saName: "app",
			objects: []*corev1.ServiceAccount{serviceAccount("app", map[string]string{
				aws.AssumeRoleAnnotation: impFalse, "eks.amazonaws.com/role-arn": sourceRole})},
			wantErrIs: auth.ErrAmbiguousSource,
		},
		{
			name: "gate off refuses any named SA", lockdown: true, gateOff: true, saName: "my-app",
			manifest:  "aws-object-irsa.yaml",
			wantErrIs: fluxauth.ErrObjectLevelWorkloadIdentityNotEnabled,
		},
		{
			name: "gate off refuses controller-level impersonation too", gateOff: true, saName: "app",
			objects:   []*corev1.ServiceAccount{serviceAccount("app", map[string]string{aws.AssumeRoleAnnotation: impUnset})},
			wantErrIs: fluxauth.ErrObjectLevelWorkloadIdentityNotEnabled,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.upstream && !tt.gateOff {
				t.Parallel()
			}
			g := NewWithT(t)
			ns := newNamespace(t)
			w := newAWSWorld(t)
			w.sts.AllowAssumeRole(controllerRole, targetRole)
			w.sts.AllowAssumeRole(sourceRole, targetRole)
			w.sts.AllowWebIdentity(defaultRole, ns, "default")
			for _, sa := range tt.objects {
				sa = sa.DeepCopy()
				sa.Namespace = ns
				apply(t, sa)
			}
			if tt.manifest != "" {
				applyManifest(t, tt.manifest, ns)
			}
			opts := []auth.Option{auth.WithClient(controller), auth.WithServiceAccountNamespace(ns),
				auth.WithServiceAccountName(tt.saName), auth.WithSTSRegion(region)}
			if tt.lockdown {
				opts = append(opts, auth.WithDefaultServiceAccount("default"))
			}
			if tt.upstream {
				fluxauth.SetDefaultServiceAccount("default")
				t.Cleanup(func() { fluxauth.SetDefaultServiceAccount("") })
			}
			if tt.gateOff {
				fluxauth.DisableObjectLevelWorkloadIdentity()
				t.Cleanup(fluxauth.EnableObjectLevelWorkloadIdentity)
			}

			token, err := auth.GetAccessToken(context.Background(), w.provider, opts...)

			if tt.wantErrIs == nil {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(w.whoAmI(t, token)).To(HavePrefix(tt.wantWho))
				g.Expect(w.agent.Requests()).To(BeZero())
				return
			}
			g.Expect(err).To(MatchError(tt.wantErrIs))
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(strings.ReplaceAll(tt.wantErr, "NS", ns)))
			}
			g.Expect(token).To(BeNil())
			g.Expect(w.sts.Calls()).To(BeEmpty(), "a refusal calls no cloud")
			g.Expect(w.agent.Requests()).To(BeZero())
		})
	}
}
