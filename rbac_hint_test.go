package auth_test

import (
	"context"
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

// refusingClient answers like an API server whose RBAC lacks a rule.
type refusingClient struct {
	client.Client
	getErr, tokenErr error
}

func (r *refusingClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if r.getErr != nil {
		return r.getErr
	}
	return r.Client.Get(ctx, key, obj, opts...)
}

func (r *refusingClient) SubResource(name string) client.SubResourceClient {
	return refusingSubResource{r.Client.SubResource(name), r.tokenErr}
}

type refusingSubResource struct {
	client.SubResourceClient
	err error
}

func (s refusingSubResource) Create(ctx context.Context, obj, sub client.Object, opts ...client.SubResourceCreateOption) error {
	if s.err != nil {
		return s.err
	}
	return s.SubResourceClient.Create(ctx, obj, sub, opts...)
}

// TestRBACRefusalsSayWhatToGrant: a Forbidden from the API server, or a
// cached client whose informer never syncs, names the rule to add.
func TestRBACRefusalsSayWhatToGrant(t *testing.T) {
	t.Parallel()
	sas := schema.GroupResource{Resource: "serviceaccounts"}
	const who = `User "system:serviceaccount:flux-system:kustomize-controller" cannot`
	for _, tt := range []struct {
		name             string
		getErr, tokenErr error
		wantErr          string
	}{
		{
			name:   "get forbidden",
			getErr: apierrors.NewForbidden(sas, "app", errors.New(who+` get resource "serviceaccounts"`)),
			wantErr: `failed to get service account 'my-app/app': serviceaccounts "app" is forbidden: ` + who +
				` get resource "serviceaccounts". grant the controller get on serviceaccounts in namespace 'my-app' ` +
				"(a Role or ClusterRole rule with verbs [get] on resources [serviceaccounts])",
		},
		{
			name:   "cached client without list and watch",
			getErr: errors.New("Timeout: failed waiting for *v1.ServiceAccount Informer to sync"),
			wantErr: "failed to get service account 'my-app/app': Timeout: failed waiting for *v1.ServiceAccount " +
				"Informer to sync. the controller reads service accounts through a cached client: grant it list and " +
				"watch on serviceaccounts as well as get (a ClusterRole rule with verbs [get, list, watch] on " +
				"resources [serviceaccounts])",
		},
		{
			name:     "token create forbidden",
			tokenErr: apierrors.NewForbidden(schema.GroupResource{Resource: "serviceaccounts/token"}, "app", errors.New(who+` create resource "serviceaccounts/token"`)),
			wantErr: "failed to get aws source credentials of service account 'my-app/app' as '" + sourceRole +
				"' in region 'us-east-1': failed to create a kubernetes token for service account 'my-app/app': " +
				`serviceaccounts/token "app" is forbidden: ` + who + ` create resource "serviceaccounts/token". ` +
				"grant the controller create on serviceaccounts/token in namespace 'my-app' (a Role or ClusterRole " +
				"rule with verbs [create] on resources [serviceaccounts/token])",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
			g.Expect(err).NotTo(HaveOccurred())
			kube := &refusingClient{Client: fakes.NewKubeClient(issuer, sa("app", map[string]string{aws.RoleARNAnnotation: sourceRole})),
				getErr: tt.getErr, tokenErr: tt.tokenErr}
			_, err = auth.GetAccessToken(context.Background(), aws.Provider{}, auth.WithClient(kube),
				auth.WithServiceAccountNamespace("my-app"), auth.WithServiceAccountName("app"), auth.WithSTSRegion(region))
			g.Expect(err).To(MatchError(tt.wantErr))
		})
	}
}
