package azure_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/azure"
)

func TestParseImpersonation(t *testing.T) {
	t.Parallel()
	sa := func(annotations map[string]string) corev1.ServiceAccount {
		return corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "app", Annotations: annotations}}
	}

	t.Run("absent: upstream workload identity as before", func(t *testing.T) {
		g := NewWithT(t)
		imp, err := azure.Provider{}.ParseImpersonation(sa(map[string]string{
			azure.ClientIDAnnotation: "11111111-1111-1111-1111-111111111111",
			azure.TenantIDAnnotation: "22222222-2222-2222-2222-222222222222",
		}))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(imp).To(BeNil())
	})
	t.Run("any value is refused, even an empty one", func(t *testing.T) {
		g := NewWithT(t)
		imp, err := azure.Provider{}.ParseImpersonation(sa(map[string]string{azure.ImpersonateAnnotation: ""}))
		g.Expect(err).To(MatchError(azure.ErrNoImpersonation))
		g.Expect(err.Error()).To(ContainSubstring("'system:serviceaccount:team-a:app'"))
		g.Expect(imp).To(BeNil())
	})
	t.Run("Impersonate is never reached through the chain, and refuses", func(t *testing.T) {
		g := NewWithT(t)
		_, err := azure.Provider{}.Impersonate(context.Background(), nil, auth.Impersonation{})
		g.Expect(err).To(MatchError(azure.ErrNoImpersonation))
	})
}
