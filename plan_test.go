package auth_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

func TestPlanServiceAccountErrors(t *testing.T) {
	t.Parallel()
	issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		opts    []auth.Option
		wantErr string
	}{
		{
			name:    "no client",
			opts:    []auth.Option{auth.WithServiceAccountNamespace("my-app"), auth.WithServiceAccountName("app")},
			wantErr: "failed to get service account 'my-app/app': no Kubernetes client. pass auth.WithClient",
		},
		{
			name: "named service account missing",
			opts: []auth.Option{auth.WithClient(fakes.NewKubeClient(issuer)),
				auth.WithServiceAccountNamespace("my-app"), auth.WithServiceAccountName("app")},
			wantErr: `failed to get service account 'my-app/app': serviceaccounts "app" not found`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			c, err := auth.Plan(context.Background(), aws.Provider{}, tt.opts...)
			g.Expect(err).To(MatchError(tt.wantErr))
			g.Expect(c).To(BeNil())
		})
	}
}

func TestPlanControllerIdentityNeedsNoServiceAccount(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	// No namespace: nothing to read, as upstream.
	c, err := auth.Plan(context.Background(), aws.Provider{}, auth.WithServiceAccountName("app"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Source).To(Equal(auth.Source{Kind: auth.SourceController}))
	g.Expect(c.Impersonation).To(BeNil())
	g.Expect(c.Source.String()).To(Equal("the controller identity"))
}
