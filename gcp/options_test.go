package gcp_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/gcp"
)

func serviceAccount(annotations map[string]string) corev1.ServiceAccount {
	return corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Namespace: "team-a", Name: "app", Annotations: annotations,
	}}
}

const idRule = "it must be 6 to 30 lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen"

func TestParseImpersonate(t *testing.T) {
	const prefix = "invalid gcp.auth.fluxcd.io/impersonate annotation on service account 'team-a/app': "
	const target = "target-sa@target-project.iam.gserviceaccount.com"
	for _, tt := range []struct {
		name    string
		value   *string
		want    *gcp.ImpersonateConfig
		wantErr string
	}{
		{name: "absent"},
		{name: "target only", value: ptr.To("gcpServiceAccount: " + target),
			want: &gcp.ImpersonateConfig{GCPServiceAccount: target}},
		{name: "useServiceAccount", value: ptr.To("gcpServiceAccount: " + target + "\nuseServiceAccount: true"),
			want: &gcp.ImpersonateConfig{GCPServiceAccount: target, UseServiceAccount: ptr.To(true)}},
		{name: "compute default SA", value: ptr.To("gcpServiceAccount: 123456789012-compute@developer.gserviceaccount.com"),
			want: &gcp.ImpersonateConfig{GCPServiceAccount: "123456789012-compute@developer.gserviceaccount.com"}},
		{name: "empty", value: ptr.To(""), wantErr: prefix + "the value is empty: remove the annotation or set its fields"},
		{name: "unknown field", value: ptr.To("gcpServiceAcount: " + target), wantErr: prefix + "unknown field 'gcpServiceAcount': the fields are 'gcpServiceAccount', 'useServiceAccount', 'delegates', 'lifetime', 'scopes'"},
		{name: "missing target", value: ptr.To("useServiceAccount: true"),
			wantErr: prefix + "gcpServiceAccount is required, e.g. 'gcpServiceAccount: target@project.iam.gserviceaccount.com'"},
		{name: "not a service account", value: ptr.To("gcpServiceAccount: bob@example.com"),
			wantErr: prefix + "gcpServiceAccount 'bob@example.com' is not a service account email: its domain must be " +
				"<project-id>.iam.gserviceaccount.com, developer.gserviceaccount.com or appspot.gserviceaccount.com"},
		{name: "account ID starting with a hyphen", value: ptr.To("gcpServiceAccount: -x-@my-project.iam.gserviceaccount.com"),
			wantErr: prefix + "gcpServiceAccount '-x-@my-project.iam.gserviceaccount.com' has account ID '-x-': " + idRule},
		{name: "100-character project ID", value: ptr.To("gcpServiceAccount: target@" + strings.Repeat("p", 100) + ".iam.gserviceaccount.com"),
			wantErr: prefix + "gcpServiceAccount 'target@" + strings.Repeat("p", 100) + ".iam.gserviceaccount.com' has project ID '" +
				strings.Repeat("p", 100) + "': " + idRule},
		{name: "bad compute default", value: ptr.To("gcpServiceAccount: abc-compute@developer.gserviceaccount.com"),
			wantErr: prefix + "gcpServiceAccount 'abc-compute@developer.gserviceaccount.com' is not Compute Engine's default " +
				"service account: it must look like 123456789012-compute@developer.gserviceaccount.com"},
		{name: "app engine default", value: ptr.To("gcpServiceAccount: my-project@appspot.gserviceaccount.com"),
			want: &gcp.ImpersonateConfig{GCPServiceAccount: "my-project@appspot.gserviceaccount.com"}},
		{name: "wrong type", value: ptr.To("gcpServiceAccount: [a, b]"),
			wantErr: prefix + "gcpServiceAccount must be a string, not a list"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ann := map[string]string{}
			if tt.value != nil {
				ann[gcp.ImpersonateAnnotation] = *tt.value
			}
			got, err := gcp.ParseImpersonate(serviceAccount(ann))
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				g.Expect(errors.Is(err, auth.ErrInvalidAnnotation)).To(BeTrue())
				g.Expect(got).To(BeNil())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestParseImpersonation(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	imp, err := gcp.Provider{}.ParseImpersonation(serviceAccount(map[string]string{
		gcp.ImpersonateAnnotation: "gcpServiceAccount: target@project-1.iam.gserviceaccount.com\nuseServiceAccount: false",
	}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*imp).To(Equal(auth.Impersonation{
		Annotation:        gcp.ImpersonateAnnotation,
		ServiceAccount:    client.ObjectKey{Namespace: "team-a", Name: "app"},
		Target:            "target@project-1.iam.gserviceaccount.com",
		UseServiceAccount: ptr.To(false),
	}))
	g.Expect(gcp.Provider{}.IdentityAnnotation()).To(Equal("iam.gke.io/gcp-service-account"))
}

func TestImpersonateNeedsAGCPToken(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	_, err := gcp.Provider{}.Impersonate(context.Background(), notGCP{}, auth.Impersonation{})
	g.Expect(err).To(MatchError("source credentials are gcp_test.notGCP, not a GCP token"))
}

type notGCP struct{}

func (notGCP) GetDuration() time.Duration { return time.Hour }
