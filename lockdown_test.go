package auth_test

import (
	"context"
	"testing"

	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

const defaultRole = "arn:aws:iam::111111111111:role/tenant-default"

type lockdownMode int

const (
	lockdownOff lockdownMode = iota
	lockdownOption
	lockdownUpstream           // fluxauth.SetDefaultServiceAccount, the controllers' flag
	lockdownUpstreamKubeConfig // fluxauth.SetDefaultKubeConfigServiceAccount
)

func (m lockdownMode) String() string {
	return [...]string{"lockdown off", "lockdown on", "lockdown on (upstream flag)", "lockdown on (upstream kubeconfig flag)"}[m]
}

func sa(name string, annotations map[string]string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "my-app", Name: name, Annotations: annotations}}
}

const (
	impUnset = "roleARN: " + targetRole
	impTrue  = "roleARN: " + targetRole + "\nuseServiceAccount: true"
	impFalse = "roleARN: " + targetRole + "\nuseServiceAccount: false"
)

// TestLockdownRules has one row per row of the lockdown table (DESIGN §4),
// each driven through the real chain against the fake AWS. The controller's
// identity is Pod Identity for controllerRole; the ServiceAccount "app" is
// sourceRole, the default ServiceAccount is defaultRole.
func TestLockdownRules(t *testing.T) {
	withRole := func(imp string) map[string]string {
		m := map[string]string{"eks.amazonaws.com/role-arn": sourceRole}
		if imp != "" {
			m[aws.AssumeRoleAnnotation] = imp
		}
		return m
	}
	defaultSA := sa("default", map[string]string{"eks.amazonaws.com/role-arn": defaultRole})

	webIdentity := func(role, saName string) fakes.AWSSTSCall {
		return fakes.AWSSTSCall{Action: "AssumeRoleWithWebIdentity", RoleARN: role, Caller: "system:serviceaccount:my-app:" + saName}
	}
	assumeRole := func(caller string) fakes.AWSSTSCall {
		return fakes.AWSSTSCall{Action: "AssumeRole", RoleARN: targetRole, Caller: caller, Region: region,
			RoleSessionName: "my-app.app.fluxcd.io"}
	}
	const targetARN = "arn:aws:sts::222222222222:assumed-role/target-account-role/my-app.app.fluxcd.io"

	for _, tt := range []struct {
		name     string
		lockdown lockdownMode
		saName   string
		objects  []*corev1.ServiceAccount
		noRegion bool
		gateOff  bool

		wantCalls  []fakes.AWSSTSCall // compared without session names of web identity calls
		wantWho    string             // prefix of the ARN the returned credentials belong to
		wantErr    string
		wantErrIs  error
		wantNoCall bool
	}{
		{
			name: "no SA named: controller identity, no impersonation", lockdown: lockdownOff,
			wantWho: "arn:aws:sts::111111111111:assumed-role/flux-controller/",
		},
		{
			name: "no SA named: default SA used", lockdown: lockdownOption, objects: []*corev1.ServiceAccount{defaultSA},
			wantCalls: []fakes.AWSSTSCall{webIdentity(defaultRole, "default")},
			wantWho:   "arn:aws:sts::111111111111:assumed-role/tenant-default/",
		},
		{
			name: "no SA named: default SA used", lockdown: lockdownUpstream, objects: []*corev1.ServiceAccount{defaultSA},
			wantCalls: []fakes.AWSSTSCall{webIdentity(defaultRole, "default")},
			wantWho:   "arn:aws:sts::111111111111:assumed-role/tenant-default/",
		},
		{
			name: "no SA named: default SA missing", lockdown: lockdownOption,
			wantErrIs: fluxauth.ErrDefaultServiceAccountNotFound, wantNoCall: true,
			wantErr: "failed to get default service account 'my-app/default': " + fluxauth.ErrDefaultServiceAccountNotFound.Error() +
				". create it, or set .spec.serviceAccountName on the object",
		},
		{
			name: "SA named, no impersonation annotation: its own identity", lockdown: lockdownOff,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", withRole(""))},
			wantCalls: []fakes.AWSSTSCall{webIdentity(sourceRole, "app")},
			wantWho:   "arn:aws:sts::111111111111:assumed-role/source-account-role/",
		},
		{
			name: "SA named, no impersonation annotation: its own identity", lockdown: lockdownOption,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", withRole(""))},
			wantCalls: []fakes.AWSSTSCall{webIdentity(sourceRole, "app")},
			wantWho:   "arn:aws:sts::111111111111:assumed-role/source-account-role/",
		},
		{
			name: "useServiceAccount unset: controller is the source", lockdown: lockdownOff,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", map[string]string{aws.AssumeRoleAnnotation: impUnset})},
			wantCalls: []fakes.AWSSTSCall{assumeRole(controllerRole)}, wantWho: targetARN,
		},
		{
			name: "useServiceAccount unset: SA is the source", lockdown: lockdownOption,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", withRole(impUnset))},
			wantCalls: []fakes.AWSSTSCall{webIdentity(sourceRole, "app"), assumeRole(sourceRole)}, wantWho: targetARN,
		},
		{
			name: "useServiceAccount unset: SA is the source", lockdown: lockdownUpstream,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", withRole(impUnset))},
			wantCalls: []fakes.AWSSTSCall{webIdentity(sourceRole, "app"), assumeRole(sourceRole)}, wantWho: targetARN,
		},
		{
			name: "useServiceAccount unset: SA is the source", lockdown: lockdownUpstreamKubeConfig,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", withRole(impUnset))},
			wantCalls: []fakes.AWSSTSCall{webIdentity(sourceRole, "app"), assumeRole(sourceRole)}, wantWho: targetARN,
		},
		{
			name: "useServiceAccount true: SA is the source", lockdown: lockdownOff,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", withRole(impTrue))},
			wantCalls: []fakes.AWSSTSCall{webIdentity(sourceRole, "app"), assumeRole(sourceRole)}, wantWho: targetARN,
		},
		{
			name: "useServiceAccount true: SA is the source", lockdown: lockdownOption,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", withRole(impTrue))},
			wantCalls: []fakes.AWSSTSCall{webIdentity(sourceRole, "app"), assumeRole(sourceRole)}, wantWho: targetARN,
		},
		{
			name: "useServiceAccount false: controller is the source", lockdown: lockdownOff,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", map[string]string{aws.AssumeRoleAnnotation: impFalse})},
			wantCalls: []fakes.AWSSTSCall{assumeRole(controllerRole)}, wantWho: targetARN,
		},
		{
			name: "useServiceAccount false: refused", lockdown: lockdownOption,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", map[string]string{aws.AssumeRoleAnnotation: impFalse})},
			wantErrIs: auth.ErrLockdownForbidsControllerIdentity, wantNoCall: true,
			wantErr: "multi-tenancy lockdown forbids impersonation from the controller identity: " +
				"aws.auth.fluxcd.io/assume-role on service account 'my-app/app' sets 'useServiceAccount: false', " +
				"but this controller runs with multi-tenancy lockdown (--default-service-account). " +
				"remove 'useServiceAccount: false' so the service account's own identity is the source",
		},
		{
			name: "useServiceAccount false: refused", lockdown: lockdownUpstream,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", map[string]string{aws.AssumeRoleAnnotation: impFalse})},
			wantErrIs: auth.ErrLockdownForbidsControllerIdentity, wantNoCall: true,
		},
		{
			name: "useServiceAccount false with an identity annotation: ambiguous", lockdown: lockdownOff,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", withRole(impFalse))},
			wantErrIs: auth.ErrAmbiguousSource, wantNoCall: true,
			wantErr: "ambiguous impersonation source: aws.auth.fluxcd.io/assume-role on service account 'my-app/app' " +
				"sets 'useServiceAccount: false' (the controller identity is the source), but the service account also has " +
				"eks.amazonaws.com/role-arn '" + sourceRole + "'. remove eks.amazonaws.com/role-arn, " +
				"or set 'useServiceAccount: true' to impersonate from it",
		},
		{
			name: "useServiceAccount false with an identity annotation: refused", lockdown: lockdownOption,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", withRole(impFalse))},
			wantErrIs: auth.ErrLockdownForbidsControllerIdentity, wantNoCall: true,
		},
		{
			name: "no region", lockdown: lockdownOff, noRegion: true,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", map[string]string{aws.AssumeRoleAnnotation: impUnset})},
			wantErrIs: aws.ErrRegionRequired, wantNoCall: true,
			wantErr: "an AWS region is required to assume a role: service account 'my-app/app' asks to assume role '" +
				targetRole + "'. set the region in the object spec (auth.WithSTSRegion)",
		},
		{
			name: "no region", lockdown: lockdownOption, noRegion: true,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", withRole(impUnset))},
			wantErrIs: aws.ErrRegionRequired, wantNoCall: true,
		},
		{
			name: "SA as source needs the object-level feature gate", lockdown: lockdownOption, gateOff: true,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", withRole(impUnset))},
			wantErrIs: fluxauth.ErrObjectLevelWorkloadIdentityNotEnabled, wantNoCall: true,
			wantErr: "ObjectLevelWorkloadIdentity feature gate is not enabled: the object names service account " +
				"'my-app/app', and any service account needs the gate. " +
				"start the controller with --feature-gates=ObjectLevelWorkloadIdentity=true",
		},
		{
			// Upstream and the proposal refuse every named ServiceAccount
			// while the gate is off, controller-level impersonation too.
			name: "gate off refuses controller-level impersonation too", lockdown: lockdownOff, gateOff: true,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", map[string]string{aws.AssumeRoleAnnotation: impFalse})},
			wantErrIs: fluxauth.ErrObjectLevelWorkloadIdentityNotEnabled, wantNoCall: true,
			wantErr: "ObjectLevelWorkloadIdentity feature gate is not enabled: the object names service account " +
				"'my-app/app', and any service account needs the gate. " +
				"start the controller with --feature-gates=ObjectLevelWorkloadIdentity=true, " +
				"or remove the service account from the object to use the controller identity",
		},
		{
			name: "gate off refuses controller-level impersonation too", lockdown: lockdownOff, gateOff: true,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", map[string]string{aws.AssumeRoleAnnotation: impUnset})},
			wantErrIs: fluxauth.ErrObjectLevelWorkloadIdentityNotEnabled, wantNoCall: true,
		},
		{
			name: "gate off refuses a ServiceAccount without annotations", lockdown: lockdownOff, gateOff: true,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", withRole(""))},
			wantErrIs: fluxauth.ErrObjectLevelWorkloadIdentityNotEnabled, wantNoCall: true,
		},
		{
			name: "gate off refuses the default SA", lockdown: lockdownOption, gateOff: true,
			objects:   []*corev1.ServiceAccount{defaultSA},
			wantErrIs: fluxauth.ErrObjectLevelWorkloadIdentityNotEnabled, wantNoCall: true,
			wantErr: "ObjectLevelWorkloadIdentity feature gate is not enabled: multi-tenancy lockdown uses the default " +
				"service account 'my-app/default' for an object that names none, and any service account needs the gate. " +
				"start the controller with --feature-gates=ObjectLevelWorkloadIdentity=true",
		},
		{
			name: "gate off leaves the controller identity alone", lockdown: lockdownOff, gateOff: true,
			wantWho: "arn:aws:sts::111111111111:assumed-role/flux-controller/",
		},
		{
			name: "SA as source needs its role", lockdown: lockdownOption,
			saName: "app", objects: []*corev1.ServiceAccount{sa("app", map[string]string{aws.AssumeRoleAnnotation: impUnset})},
			wantErrIs: aws.ErrNoServiceAccountRole, wantNoCall: true,
			wantErr: "failed to get provider identity from service account 'my-app/app' annotations: " +
				"the service account has no eks.amazonaws.com/role-arn annotation: " +
				"add eks.amazonaws.com/role-arn with the IAM role the service account's token is exchanged for " +
				"(under multi-tenancy lockdown the service account, not the controller, is the source of aws.auth.fluxcd.io/assume-role)",
		},
	} {
		t.Run(tt.lockdown.String()+"/"+tt.name, func(t *testing.T) {
			g := NewWithT(t)
			w := newAWSWorld(t)
			agent := w.podIdentity(t)
			w.sts.AllowAssumeRole(controllerRole, targetRole)
			w.sts.AllowAssumeRole(sourceRole, targetRole)
			w.sts.AllowWebIdentity(sourceRole, "my-app", "app")
			w.sts.AllowWebIdentity(defaultRole, "my-app", "default")
			var objs []*corev1.ServiceAccount
			objs = append(objs, tt.objects...)
			kube := fakes.NewKubeClient(w.issuer, toObjects(objs)...)

			opts := []auth.Option{auth.WithClient(kube), auth.WithServiceAccountNamespace("my-app"),
				auth.WithServiceAccountName(tt.saName)}
			if !tt.noRegion {
				opts = append(opts, auth.WithSTSRegion(region))
			}
			switch tt.lockdown {
			case lockdownOption:
				opts = append(opts, auth.WithDefaultServiceAccount("default"))
			case lockdownUpstream:
				fluxauth.SetDefaultServiceAccount("default")
				t.Cleanup(func() { fluxauth.SetDefaultServiceAccount("") })
			case lockdownUpstreamKubeConfig:
				fluxauth.SetDefaultKubeConfigServiceAccount("default")
				t.Cleanup(func() { fluxauth.SetDefaultKubeConfigServiceAccount("") })
			}
			if tt.gateOff {
				fluxauth.DisableObjectLevelWorkloadIdentity()
				t.Cleanup(fluxauth.EnableObjectLevelWorkloadIdentity)
			}

			token, err := auth.GetAccessToken(context.Background(), w.provider, opts...)

			if tt.wantErrIs != nil {
				g.Expect(err).To(MatchError(tt.wantErrIs))
				if tt.wantErr != "" {
					g.Expect(err).To(MatchError(tt.wantErr))
				}
				g.Expect(token).To(BeNil())
			} else {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(w.whoAmI(t, token)).To(HavePrefix(tt.wantWho))
			}
			if tt.wantNoCall {
				g.Expect(agent.Requests()).To(BeZero())
				g.Expect(kube.TokenRequests()).To(BeZero())
			}
			calls := w.sts.Calls()
			// whoAmI made the last call.
			if tt.wantErrIs == nil {
				calls = calls[:len(calls)-1]
			}
			for i := range calls {
				if calls[i].Action == "AssumeRoleWithWebIdentity" {
					calls[i].RoleSessionName = ""
				}
			}
			if len(tt.wantCalls) == 0 {
				g.Expect(calls).To(BeEmpty())
				return
			}
			g.Expect(calls).To(Equal(tt.wantCalls))
		})
	}
}

func toObjects(sas []*corev1.ServiceAccount) []client.Object {
	objs := make([]client.Object, len(sas))
	for i, s := range sas {
		objs[i] = s
	}
	return objs
}
