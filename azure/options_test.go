package azure_test

import (
	"errors"
	"strings"
	"testing"

	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/azure"
)

const (
	appID        = "33333333-3333-4333-8333-333333333333"
	targetTenant = "22222222-2222-4222-8222-222222222222"
	appAndTenant = "clientID: " + appID + "\ntenantID: " + targetTenant
)

func serviceAccount(annotations map[string]string) corev1.ServiceAccount {
	return corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "app", Annotations: annotations}}
}

func TestParseImpersonate(t *testing.T) {
	t.Parallel()
	const prefix = "invalid azure.auth.fluxcd.io/impersonate annotation on service account 'team-a/app': "
	for _, tt := range []struct {
		name    string
		value   *string
		want    *azure.ImpersonateConfig
		wantErr string
	}{
		{name: "absent: upstream workload identity as before", value: nil},
		{name: "client and tenant", value: ptr.To(appAndTenant),
			want: &azure.ImpersonateConfig{ClientID: appID, TenantID: targetTenant}},
		{name: "a verified domain", value: ptr.To("clientID: " + appID + "\ntenantID: contoso.onmicrosoft.com"),
			want: &azure.ImpersonateConfig{ClientID: appID, TenantID: "contoso.onmicrosoft.com"}},
		{name: "a custom domain, upper-case GUID", value: ptr.To("clientID: 0000AAAA-1111-BBBB-2222-CCCC3333DDDD\ntenantID: Fabrikam.com"),
			want: &azure.ImpersonateConfig{ClientID: "0000AAAA-1111-BBBB-2222-CCCC3333DDDD", TenantID: "Fabrikam.com"}},
		{name: "useServiceAccount true", value: ptr.To(appAndTenant + "\nuseServiceAccount: true"),
			want: &azure.ImpersonateConfig{ClientID: appID, TenantID: targetTenant, UseServiceAccount: ptr.To(true)}},
		{name: "useServiceAccount false", value: ptr.To(appAndTenant + "\nuseServiceAccount: false"),
			want: &azure.ImpersonateConfig{ClientID: appID, TenantID: targetTenant, UseServiceAccount: ptr.To(false)}},
		{name: "empty", value: ptr.To(""), wantErr: prefix + "the value is empty: remove the annotation or set its fields"},
		{name: "unknown field (typo)", value: ptr.To("clientId: " + appID + "\ntenantID: " + targetTenant),
			wantErr: prefix + "unknown field 'clientId': did you mean 'clientID'? field names are case-sensitive"},
		{name: "upstream's annotation name as a field", value: ptr.To(appAndTenant + "\nclient-id: x"),
			wantErr: prefix + "unknown field 'client-id': the fields are 'clientID', 'tenantID', 'useServiceAccount'"},
		{name: "missing clientID", value: ptr.To("tenantID: " + targetTenant),
			wantErr: prefix + "clientID is required: the application (client) ID of the app registration, " +
				"e.g. 'clientID: 00001111-aaaa-2222-bbbb-3333cccc4444'"},
		{name: "missing tenantID", value: ptr.To("clientID: " + appID),
			wantErr: prefix + "tenantID is required: the ID or a verified domain of the tenant to get the app's " +
				"token in, e.g. 'tenantID: aaaabbbb-0000-cccc-1111-dddd2222eeee'"},
		{name: "clientID not a GUID", value: ptr.To("clientID: my-app\ntenantID: " + targetTenant),
			wantErr: prefix + "clientID 'my-app' is not a GUID: it must look like 00001111-aaaa-2222-bbbb-3333cccc4444, " +
				"the Application (client) ID of the app registration"},
		{name: "clientID in braces", value: ptr.To("clientID: '{" + appID + "}'\ntenantID: " + targetTenant),
			wantErr: prefix + "clientID '{" + appID + "}' is not a GUID: it must look like " +
				"00001111-aaaa-2222-bbbb-3333cccc4444, the Application (client) ID of the app registration"},
		{name: "clientID the nil GUID", value: ptr.To("clientID: 00000000-0000-0000-0000-000000000000\ntenantID: " + targetTenant),
			wantErr: prefix + "clientID '00000000-0000-0000-0000-000000000000' is the nil GUID, a placeholder: " +
				"set the Application (client) ID of the app registration"},
		{name: "tenantID common", value: ptr.To("clientID: " + appID + "\ntenantID: common"),
			wantErr: prefix + "tenantID 'common' names no tenant: client credentials need the ID or a verified " +
				"domain of the tenant to get the token in"},
		{name: "tenantID organizations", value: ptr.To("clientID: " + appID + "\ntenantID: Organizations"),
			wantErr: prefix + "tenantID 'Organizations' names no tenant: client credentials need the ID or a " +
				"verified domain of the tenant to get the token in"},
		{name: "tenantID the nil GUID", value: ptr.To("clientID: " + appID + "\ntenantID: 00000000-0000-0000-0000-000000000000"),
			wantErr: prefix + "tenantID '00000000-0000-0000-0000-000000000000' is the nil GUID, a placeholder: " +
				"set the ID of the tenant to get the token in"},
		{name: "tenantID a URL", value: ptr.To("clientID: " + appID + "\ntenantID: https://login.microsoftonline.com/" + targetTenant),
			wantErr: prefix + "tenantID 'https://login.microsoftonline.com/" + targetTenant + "' is neither a tenant ID " +
				"(a GUID such as aaaabbbb-0000-cccc-1111-dddd2222eeee) nor a verified domain (such as contoso.onmicrosoft.com)"},
		{name: "tenantID an IP address", value: ptr.To("clientID: " + appID + "\ntenantID: 10.0.0.1"),
			wantErr: prefix + "tenantID '10.0.0.1' is neither a tenant ID (a GUID such as " +
				"aaaabbbb-0000-cccc-1111-dddd2222eeee) nor a verified domain (such as contoso.onmicrosoft.com)"},
		{name: "tenantID a short GUID", value: ptr.To("clientID: " + appID + "\ntenantID: 22222222-2222-4222-8222"),
			wantErr: prefix + "tenantID '22222222-2222-4222-8222' is neither a tenant ID (a GUID such as " +
				"aaaabbbb-0000-cccc-1111-dddd2222eeee) nor a verified domain (such as contoso.onmicrosoft.com)"},
		{name: "a domain label too long", value: ptr.To("clientID: " + appID + "\ntenantID: " + strings.Repeat("a", 64) + ".com"),
			wantErr: prefix + "tenantID '" + strings.Repeat("a", 64) + ".com' is neither a tenant ID (a GUID such as " +
				"aaaabbbb-0000-cccc-1111-dddd2222eeee) nor a verified domain (such as contoso.onmicrosoft.com)"},
		{name: "wrong type", value: ptr.To(appAndTenant + "\nuseServiceAccount: \"yes\""),
			wantErr: prefix + "useServiceAccount must be true or false, without quotes"},
		{name: "control characters are escaped", value: ptr.To(`clientID: "x\e[2J\nFAKE LOG LINE"` + "\ntenantID: " + targetTenant),
			wantErr: prefix + `clientID 'x\x1b[2J\nFAKE LOG LINE' is not a GUID: it must look like ` +
				"00001111-aaaa-2222-bbbb-3333cccc4444, the Application (client) ID of the app registration"},
		{name: "long values are cut", value: ptr.To("clientID: " + appID + "\ntenantID: " + strings.Repeat("x", 300)),
			wantErr: prefix + "tenantID '" + strings.Repeat("x", 256) + "'… (300 bytes in all) is neither a tenant ID " +
				"(a GUID such as aaaabbbb-0000-cccc-1111-dddd2222eeee) nor a verified domain (such as contoso.onmicrosoft.com)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ann := map[string]string{}
			if tt.value != nil {
				ann[azure.ImpersonateAnnotation] = *tt.value
			}
			conf, err := azure.ParseImpersonate(serviceAccount(ann))
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				g.Expect(errors.Is(err, auth.ErrInvalidAnnotation)).To(BeTrue())
				g.Expect(conf).To(BeNil())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(conf).To(Equal(tt.want))
		})
	}
}

// The impersonation names the app as the target, and the tenant and the
// caller's scopes as parameters, which the target's cache key holds.
func TestParseImpersonation(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	sa := serviceAccount(map[string]string{azure.ImpersonateAnnotation: appAndTenant + "\nuseServiceAccount: false"})
	const arm = "https://management.azure.com/.default"

	imp, err := azure.Provider{}.ParseImpersonation(sa, fluxauth.WithScopes(arm))

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(imp.Request).NotTo(BeNil())
	imp.Request = nil
	g.Expect(*imp).To(Equal(auth.Impersonation{
		Annotation:        azure.ImpersonateAnnotation,
		ServiceAccount:    client.ObjectKey{Namespace: "team-a", Name: "app"},
		Target:            appID,
		UseServiceAccount: ptr.To(false),
		Parameters: []auth.Parameter{
			{Field: "tenantID", SentAs: "tenant", Value: targetTenant},
			{Field: "scopes", SentAs: "scope", Values: []string{arm}},
		},
	}))
	g.Expect(imp.Parameters[1].String()).To(Equal("scopes ['" + arm + "'] (sent as scope)"))
	g.Expect(azure.Provider{}.SourceScopes(*imp)).To(Equal([]string{"api://AzureADTokenExchange/.default"}))
	g.Expect(azure.Provider{}.IdentityAnnotation()).To(Equal("azure.workload.identity/client-id"))
	g.Expect(azure.Provider{}.SourceAnnotations()).To(Equal([]string{
		"azure.workload.identity/client-id", "azure.workload.identity/tenant-id"}))

	t.Run("absent", func(t *testing.T) {
		g := NewWithT(t)
		imp, err := azure.Provider{}.ParseImpersonation(serviceAccount(nil))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(imp).To(BeNil())
	})
	t.Run("no scopes: refused before any cloud call", func(t *testing.T) {
		g := NewWithT(t)
		imp, err := azure.Provider{}.ParseImpersonation(sa)
		g.Expect(err).To(MatchError(azure.ErrScopesRequired))
		g.Expect(err).To(MatchError("the scopes of the app's token are required: service account 'team-a/app' " +
			"asks for a token of app '" + appID + "' in tenant '" + targetTenant + "'. set the scopes of the token " +
			"(auth.WithScopes), e.g. https://management.azure.com/.default"))
		g.Expect(imp).To(BeNil())
	})
	t.Run("the scopes are copied", func(t *testing.T) {
		g := NewWithT(t)
		scopes := []string{arm}
		imp, err := azure.Provider{}.ParseImpersonation(sa, fluxauth.WithScopes(scopes...))
		g.Expect(err).NotTo(HaveOccurred())
		scopes[0] = "changed"
		g.Expect(imp.Parameters[1].Values).To(Equal([]string{arm}))
	})
}

// A ServiceAccount source without its managed identity is refused naming
// every annotation missing; with both, the identity is upstream's.
func TestGetIdentity(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name        string
		annotations map[string]string
		want        string
		wantErr     string
	}{
		{name: "both", annotations: map[string]string{azure.ClientIDAnnotation: appID, azure.TenantIDAnnotation: targetTenant},
			want: targetTenant + "/" + appID},
		{name: "none", wantErr: "the service account names no managed identity: add azure.workload.identity/client-id " +
			"and azure.workload.identity/tenant-id with the managed identity the service account's token is exchanged for"},
		{name: "no tenant", annotations: map[string]string{azure.ClientIDAnnotation: appID},
			wantErr: "the service account names no managed identity: add azure.workload.identity/tenant-id with the " +
				"managed identity the service account's token is exchanged for"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			id, err := azure.Provider{}.GetIdentity(serviceAccount(tt.annotations))
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				g.Expect(err).To(MatchError(azure.ErrNoServiceAccountIdentity))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(id).To(Equal(tt.want))
		})
	}
}
