package auth_test

import (
	"context"
	"net/url"
	"testing"

	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
	"github.com/identitychain/auth/internal/inspect"
)

func planFor(t *testing.T, sa *corev1.ServiceAccount, extra ...auth.Option) *auth.Chain {
	t.Helper()
	issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]auth.Option{auth.WithClient(fakes.NewKubeClient(issuer, sa)),
		auth.WithServiceAccountNamespace(sa.Namespace), auth.WithServiceAccountName(sa.Name),
		auth.WithSTSRegion(region)}, extra...)
	c, err := auth.Plan(context.Background(), aws.Provider{}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tenantSA(ns, name string, annotations map[string]string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations}}
}

var objectLevel = map[string]string{
	"eks.amazonaws.com/role-arn": sourceRole,
	aws.AssumeRoleAnnotation:     "roleARN: " + targetRole + "\nuseServiceAccount: true",
}

// TestCacheKeyGolden pins every input and the encoding of the keys, so that
// dropping an input (which would merge tenants' tokens) cannot happen by
// accident.
func TestCacheKeyGolden(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	c := planFor(t, tenantSA("team-a", "app", objectLevel))
	aud := []string{"sts.amazonaws.com"}

	g.Expect(inspect.SourceKeyInputs(c, aud)).To(Equal([]inspect.KeyInput{
		{Name: "provider", Value: "aws"},
		{Name: "source", Value: "service-account"},
		{Name: "serviceAccountNamespace", Value: "team-a"},
		{Name: "serviceAccountName", Value: "app"},
		{Name: "providerIdentity", Value: sourceRole},
		{Name: "annotation eks.amazonaws.com/role-arn", Value: sourceRole},
		{Name: "audiences", Value: aud},
		{Name: "scopes", Value: []string(nil)},
		{Name: "stsRegion", Value: "us-east-1"},
		{Name: "stsEndpoint", Value: ""},
		{Name: "allowShellOut", Value: "false"},
	}))
	g.Expect(inspect.TargetKeyInputs(c)).To(Equal([]inspect.KeyInput{
		{Name: "serviceAccountNamespace", Value: "team-a"},
		{Name: "serviceAccountName", Value: "app"},
		{Name: "target", Value: targetRole},
		{Name: "annotation " + aws.AssumeRoleAnnotation, Value: objectLevel[aws.AssumeRoleAnnotation]},
	}))
	g.Expect(c.SourceKey(aud)).To(Equal("2ce50bbde8a2fb8a89cbe0bc57b3dce208814fad43e4bc9cecae2cec61e64420"))
	g.Expect(c.TargetKey(aud)).To(Equal("a0553409866bfb2e6730a91cb4b9039d730e4cde4b51b26eb0ccb5a7a1e0b52a"))
}

// paramsAnnotation sets every optional AssumeRole parameter.
const paramsAnnotation = "roleARN: " + targetRole + `
useServiceAccount: true
externalID: tenant-a-42
duration: 30m
sessionTags: {team: a, project: apps}
transitiveTagKeys: [team]
policyARNs: [arn:aws:iam::aws:policy/ReadOnlyAccess]
policy: '{"Version": "2012-10-17", "Statement": []}'
`

// TestCacheKeyGoldenParameters pins every AssumeRole parameter in the
// target key, in the form it is sent.
func TestCacheKeyGoldenParameters(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	c := planFor(t, tenantSA("team-a", "app", map[string]string{
		"eks.amazonaws.com/role-arn": sourceRole,
		aws.AssumeRoleAnnotation:     paramsAnnotation,
	}))
	aud := []string{"sts.amazonaws.com"}
	g.Expect(inspect.TargetKeyInputs(c)).To(Equal([]inspect.KeyInput{
		{Name: "serviceAccountNamespace", Value: "team-a"},
		{Name: "serviceAccountName", Value: "app"},
		{Name: "target", Value: targetRole},
		{Name: "externalID", Value: "tenant-a-42"},
		{Name: "duration", Value: "1800"},
		{Name: "sessionTags keys", Value: []string{"project", "team"}},
		{Name: "sessionTags", Value: []string{"apps", "a"}},
		{Name: "transitiveTagKeys", Value: []string{"team"}},
		{Name: "policyARNs", Value: []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}},
		{Name: "policy", Value: `{"Version":"2012-10-17","Statement":[]}`},
		{Name: "annotation " + aws.AssumeRoleAnnotation, Value: paramsAnnotation},
	}))
	g.Expect(c.TargetKey(aud)).To(Equal("285f62f596f266ade6033d51798bd2f3e153c77492ce0c28316bbd71a71e8a14"))

	t.Run("GCP", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		const value = "gcpServiceAccount: target@target-project.iam.gserviceaccount.com\n" +
			"delegates: [hop-sa@middle-project.iam.gserviceaccount.com]\nlifetime: 20m\nscopes: [s1, s2]"
		issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
		g.Expect(err).NotTo(HaveOccurred())
		sa := tenantSA("team-a", "app", map[string]string{gcp.ImpersonateAnnotation: value})
		c, err := auth.Plan(context.Background(), gcp.Provider{}, auth.WithClient(fakes.NewKubeClient(issuer, sa)),
			auth.WithServiceAccountNamespace("team-a"), auth.WithServiceAccountName("app"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(inspect.TargetKeyInputs(c)).To(Equal([]inspect.KeyInput{
			{Name: "serviceAccountNamespace", Value: "team-a"},
			{Name: "serviceAccountName", Value: "app"},
			{Name: "target", Value: "target@target-project.iam.gserviceaccount.com"},
			{Name: "delegates", Value: []string{"projects/-/serviceAccounts/hop-sa@middle-project.iam.gserviceaccount.com"}},
			{Name: "lifetime", Value: "1200s"},
			{Name: "scopes", Value: []string{"s1", "s2"}},
			{Name: "annotation " + gcp.ImpersonateAnnotation, Value: value},
		}))
		g.Expect(c.TargetKey(nil)).To(Equal("891c2b1eadc8741ac417f288389aefbe238a31c29ec61fea7a89c27764c8b495"))
	})
}

// TestCacheKeyCollisions: two chains share a key only when they would mint
// the same token.
func TestCacheKeyCollisions(t *testing.T) {
	t.Parallel()
	controllerLevel := map[string]string{aws.AssumeRoleAnnotation: "roleARN: " + targetRole}
	proxy, _ := url.Parse("http://proxy.internal:3128")
	proxyWithUser, _ := url.Parse("http://user:pass@proxy.internal:3128")
	gitURL, _ := url.Parse("https://github.com/org/repo")
	aud := []string{"sts.amazonaws.com"}

	type key struct{ source, target string }
	keys := func(c *auth.Chain, aud []string) key {
		return key{c.SourceKey(aud), c.TargetKey(aud)}
	}
	base := keys(planFor(t, tenantSA("team-a", "app", objectLevel)), aud)

	for _, tt := range []struct {
		name       string
		got        key
		sameSource bool
	}{
		{"same SA name in another namespace",
			keys(planFor(t, tenantSA("team-b", "app", objectLevel)), aud), false},
		{"another SA with the same roles in the same namespace",
			keys(planFor(t, tenantSA("team-a", "other", objectLevel)), aud), false},
		{"another target",
			keys(planFor(t, tenantSA("team-a", "app", map[string]string{
				"eks.amazonaws.com/role-arn": sourceRole,
				aws.AssumeRoleAnnotation:     "roleARN: arn:aws:iam::333333333333:role/other\nuseServiceAccount: true",
			})), aud), true},
		{"another source role",
			keys(planFor(t, tenantSA("team-a", "app", map[string]string{
				"eks.amazonaws.com/role-arn": "arn:aws:iam::111111111111:role/other",
				aws.AssumeRoleAnnotation:     "roleARN: " + targetRole + "\nuseServiceAccount: true",
			})), aud), false},
		{"controller as the source",
			keys(planFor(t, tenantSA("team-a", "app", controllerLevel)), aud), false},
		{"audiences joined by a comma",
			keys(planFor(t, tenantSA("team-a", "app", objectLevel)), []string{"sts.amazonaws.com,x"}), false},
		{"audiences split",
			keys(planFor(t, tenantSA("team-a", "app", objectLevel)), []string{"sts.amazonaws.com", "x"}), false},
		{"another region",
			keys(planFor(t, tenantSA("team-a", "app", objectLevel), auth.WithSTSRegion("eu-west-1")), aud), false},
		{"an STS endpoint",
			keys(planFor(t, tenantSA("team-a", "app", objectLevel),
				auth.WithSTSEndpoint("https://sts.us-east-1.amazonaws.com")), aud), false},
		{"scopes",
			keys(planFor(t, tenantSA("team-a", "app", objectLevel), auth.WithScopes("a")), aud), false},
		{"shelling out",
			keys(planFor(t, tenantSA("team-a", "app", objectLevel),
				auth.WithFluxOptions(fluxauth.WithAllowShellOut())), aud), false},
		{"the annotation spelled differently",
			keys(planFor(t, tenantSA("team-a", "app", map[string]string{
				"eks.amazonaws.com/role-arn": sourceRole,
				aws.AssumeRoleAnnotation:     "roleARN: " + targetRole + "\nuseServiceAccount:   true",
			})), aud), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(tt.got.target).NotTo(Equal(base.target))
			if tt.sameSource {
				g.Expect(tt.got.source).To(Equal(base.source))
			} else {
				g.Expect(tt.got.source).NotTo(Equal(base.source))
			}
		})
	}

	t.Run("tenants impersonating from the controller share its credentials, not the target's", func(t *testing.T) {
		g := NewWithT(t)
		a := keys(planFor(t, tenantSA("team-a", "app", controllerLevel)), nil)
		b := keys(planFor(t, tenantSA("team-b", "app", controllerLevel)), nil)
		g.Expect(a.source).To(Equal(b.source))
		g.Expect(a.target).NotTo(Equal(b.target))
	})
	// How a call travels, and what is built from the token, do not change
	// whose token it is: GetAccessToken, GetArtifactRegistryCredentials and
	// GetRESTConfig of one chain share its tokens.
	for name, opt := range map[string]auth.Option{
		"a proxy":                 auth.WithProxyURL(*proxy),
		"the proxy's credentials": auth.WithProxyURL(*proxyWithUser),
		"CA data":                 auth.WithCAData("pem"),
		"a Git URL":               auth.WithFluxOptions(fluxauth.WithGitURL(*gitURL)),
		"a cluster":               auth.WithClusterResource("arn:aws:eks:us-east-1:123456789012:cluster/c"),
	} {
		t.Run(name+" shares the tokens", func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(keys(planFor(t, tenantSA("team-a", "app", objectLevel), opt), aud)).To(Equal(base))
		})
	}
	t.Run("an absent annotation differs from an empty one", func(t *testing.T) {
		g := NewWithT(t)
		gcpKey := func(annotations map[string]string) string {
			annotations[gcp.ImpersonateAnnotation] = "gcpServiceAccount: target@target-project.iam.gserviceaccount.com"
			issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
			g.Expect(err).NotTo(HaveOccurred())
			sa := tenantSA("team-a", "app", annotations)
			c, err := auth.Plan(context.Background(), gcp.Provider{}, auth.WithClient(fakes.NewKubeClient(issuer, sa)),
				auth.WithServiceAccountNamespace("team-a"), auth.WithServiceAccountName("app"), auth.WithDefaultServiceAccount("default"))
			g.Expect(err).NotTo(HaveOccurred())
			return c.SourceKey(aud)
		}
		const wip = "projects/1/locations/global/workloadIdentityPools/p/providers/k"
		absent := gcpKey(map[string]string{})
		empty := gcpKey(map[string]string{gcp.WorkloadIdentityProviderAnnotation: ""})
		set := gcpKey(map[string]string{gcp.WorkloadIdentityProviderAnnotation: "//iam.googleapis.com/" + wip})
		other := gcpKey(map[string]string{gcp.WorkloadIdentityProviderAnnotation: "//iam.googleapis.com/" + wip + "2"})
		g.Expect([]string{absent, empty, set, other}).To(HaveLen(4))
		g.Expect(absent).NotTo(Equal(empty))
		g.Expect(set).NotTo(Equal(other))
		g.Expect(set).NotTo(Equal(absent))
	})
	t.Run("list boundaries are kept", func(t *testing.T) {
		g := NewWithT(t)
		c := planFor(t, tenantSA("team-a", "app", objectLevel))
		g.Expect(c.SourceKey([]string{"a,b"})).NotTo(Equal(c.SourceKey([]string{"a", "b"})))
		g.Expect(c.SourceKey([]string{"a", "b"})).NotTo(Equal(c.SourceKey([]string{"b", "a"})))
	})
	t.Run("same inputs, same keys", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(keys(planFor(t, tenantSA("team-a", "app", objectLevel)), aud)).To(Equal(base))
	})
}
