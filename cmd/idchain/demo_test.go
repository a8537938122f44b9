package main

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/gcp"
)

// TestDemo runs the demo as `make demo` does. It sets the process
// environment for the SDKs, so it cannot be parallel.
func TestDemo(t *testing.T) {
	g := NewWithT(t)
	metadataHost, metadataHostSet := os.LookupEnv("GCE_METADATA_HOST")
	r := run(t, nil, "demo")
	g.Expect(r.code).To(Equal(exitOK), r.stdout+r.stderr)
	g.Expect(r.stderr).To(BeEmpty())

	for _, c := range demoCases {
		want := `\s+ok$`
		if c.wantErr != nil {
			want = `\s+none\s+-\s+refused, as documented$`
		}
		g.Expect(r.stdout).To(MatchRegexp(`(?m)^`+regexp.QuoteMeta(c.name)+`\s.*`+want), c.name)
	}
	// Every successful case hit the cache on its second run.
	g.Expect(strings.Count(r.stdout, "  hit  ")).To(Equal(13))
	g.Expect(r.stdout).To(ContainSubstring("All 17 cases behaved as documented"))
	// The parameters the fakes received, as explain shows them.
	g.Expect(r.stdout).To(ContainSubstring(`
  AWS object-level IRSA, session parameters: sts:AssumeRole arn:aws:iam::222222222222:role/target-account-role
    ExternalId 'my-app-7f3a9c'
    DurationSeconds 1800
    Tags ['environment'='production', 'team'='payments']
    TransitiveTagKeys ['team']
    PolicyArns ['arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly']
    Policy '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Resource":"*"}]}'
    the session's tags: 'environment'='production', 'team'='payments'
    the token lasts 30m
`))
	g.Expect(r.stdout).To(ContainSubstring(`
  GCP controller → hop-sa → impersonate: iamcredentials generateAccessToken target-sa@target-project.iam.gserviceaccount.com
    delegates ['projects/-/serviceAccounts/hop-sa@middle-project.iam.gserviceaccount.com']
    lifetime 1800s
    scope ['https://www.googleapis.com/auth/devstorage.read_only']
    the token lasts 30m
`))
	// Azure: the source is the managed identity whose token Entra took as
	// the client assertion, the target the app in the other tenant, by ID
	// or by verified domain.
	g.Expect(r.stdout).To(MatchRegexp(`(?m)^Azure controller → app in another tenant\s+MI 44444444-4444-4444-8444-444444444444\s+` +
		`app 33333333-3333-4333-8333-333333333333 in 22222222-2222-4222-8222-222222222222\s+` +
		`Entra MI token 1, Entra app token 1\s+hit\s+ok$`))
	g.Expect(r.stdout).To(MatchRegexp(`(?m)^Azure object-level → app, lockdown\s+MI 66666666-6666-4666-8666-666666666666\s+` +
		`app 33333333-3333-4333-8333-333333333333 in 22222222-2222-4222-8222-222222222222\s+`))
	g.Expect(r.stdout).To(ContainSubstring(`
  Azure object-level → app in another tenant: Entra client credentials, app 33333333-3333-4333-8333-333333333333
    tenant 'contoso.onmicrosoft.com'
    scope ['https://management.azure.com/.default']
    Entra resolved 'contoso.onmicrosoft.com' to tenant '22222222-2222-4222-8222-222222222222', whose token endpoint its OpenID configuration names
    the token lasts 1h
`))
	g.Expect(r.stdout).To(ContainSubstring("  Azure controller case, lockdown: failed to get provider identity from " +
		"service account 'my-app/my-app' annotations: the service account names no managed identity: "))
	// The environment of the SDKs is put back.
	host, set := os.LookupEnv("GCE_METADATA_HOST")
	g.Expect([]any{host, set}).To(Equal([]any{metadataHost, metadataHostSet}))
}

// TestDemoManifestsAreTheSeeds keeps the embedded copies identical to the
// repository's seed manifests, and makes sure the demo runs every seed.
func TestDemoManifestsAreTheSeeds(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	seeds, err := filepath.Glob("../../testdata/*.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(seeds).NotTo(BeEmpty())

	used := map[string]bool{}
	for _, c := range demoCases {
		used[c.manifest] = true
	}
	for _, seed := range seeds {
		name := filepath.Base(seed)
		want, err := os.ReadFile(seed)
		g.Expect(err).NotTo(HaveOccurred())
		got, err := demoManifests.ReadFile(path.Join("demo", name))
		g.Expect(err).NotTo(HaveOccurred(), "copy %s into cmd/idchain/demo/ and add a demo case for it", seed)
		g.Expect(string(got)).To(Equal(string(want)), "cmd/idchain/demo/%s differs from %s", name, seed)
		g.Expect(used).To(HaveKey(name), "no demo case runs %s", seed)
	}
}

// TestDemoParametersMustArrive runs the parameter cases with annotations
// that differ from what the fakes were set up for: the fake refuses what its
// trust or grants do not allow, and the demo fails a case whose fake received
// other parameters than explain shows. It sets the process environment, so
// it cannot be parallel.
func TestDemoParametersMustArrive(t *testing.T) {
	g := NewWithT(t)
	w, err := startDemoWorld()
	g.Expect(err).NotTo(HaveOccurred())
	defer w.close()
	setObjectLevelWorkloadIdentity(true)

	for _, tt := range []struct {
		manifest, from, to string
		wantFailure        string
	}{
		// The trust requires the partner's external ID for a tagged session.
		{"aws-assume-role-params.yaml", "externalID: my-app-7f3a9c", "externalID: my-app-0000",
			"AccessDenied"},
		// Without the grant of hop-sa on it, the chain breaks at its
		// second link.
		{"gcp-impersonate-delegates.yaml", "hop-sa@middle-project", "other-sa@middle-project",
			"PERMISSION_DENIED"},
		// The app's token in its home tenant is not the one documented,
		// and Entra knows no tenant by that domain.
		{"azure-object-impersonate.yaml", "tenantID: contoso.onmicrosoft.com", "tenantID: 11111111-1111-4111-8111-111111111111",
			"target is 'app 33333333-3333-4333-8333-333333333333 in 11111111-1111-4111-8111-111111111111'"},
		{"azure-object-impersonate.yaml", "tenantID: contoso.onmicrosoft.com", "tenantID: fabrikam.onmicrosoft.com",
			"AADSTS90002"},
		// No app of that client ID in the target tenant.
		{"azure-object-impersonate.yaml", "clientID: 33333333-3333-4333-8333-333333333333",
			"clientID: 88888888-8888-4888-8888-888888888888", "AADSTS700016"},
	} {
		t.Run(tt.manifest, func(t *testing.T) {
			g := NewWithT(t)
			c := demoCaseFor(t, tt.manifest)
			sa, key := demoImpersonation(t, tt.manifest)
			g.Expect(sa.Annotations[key]).To(ContainSubstring(tt.from))
			sa.Annotations[key] = strings.Replace(sa.Annotations[key], tt.from, tt.to, 1)
			r := runDemoCaseOn(t.Context(), w, c, sa, demoResult{c: c})
			g.Expect(r.failure).To(ContainSubstring(tt.wantFailure))
		})
	}

	t.Run("what the fake received against what explain shows", func(t *testing.T) {
		g := NewWithT(t)
		c := demoCaseFor(t, "aws-assume-role-params.yaml")
		mark := w.mark()
		r := runDemoCase(t.Context(), w, c)
		g.Expect(r.failure).To(BeEmpty())
		g.Expect(r.sent).NotTo(BeNil())

		for _, tt := range []struct {
			from, to    string
			lasts       time.Duration
			wantFailure string
		}{
			{"duration: 30m", "duration: 45m", 45 * time.Minute,
				"the fake received DurationSeconds 1800, explain shows DurationSeconds 2700"},
			{"externalID: my-app-7f3a9c\n", "", 30 * time.Minute,
				"the fake received ExternalId 'my-app-7f3a9c', DurationSeconds 1800, "},
			{"", "", time.Hour, "the token lasts 1h, DurationSeconds asked for 30m"},
		} {
			sa, key := demoImpersonation(t, c.manifest)
			sa.Annotations[key] = strings.Replace(sa.Annotations[key], tt.from, tt.to, 1)
			_, failure := w.checkSent(c.provider(w), sa, mark, demoToken(tt.lasts))
			g.Expect(failure).To(HavePrefix(tt.wantFailure))
		}
	})

	t.Run("the scopes Entra received against the object's", func(t *testing.T) {
		g := NewWithT(t)
		c := demoCaseFor(t, "azure-object-impersonate.yaml")
		mark := w.mark()
		r := runDemoCase(t.Context(), w, c)
		g.Expect(r.failure).To(BeEmpty())
		sa, _ := demoImpersonation(t, c.manifest)
		_, failure := w.checkSent(c.provider(w), sa, mark, demoToken(time.Hour),
			fluxauth.WithScopes("https://vault.azure.net/.default"))
		g.Expect(failure).To(Equal("the fake received scope ['https://management.azure.com/.default'], " +
			"explain shows scope ['https://vault.azure.net/.default']"))
	})
}

func demoCaseFor(t *testing.T, manifest string) demoCase {
	t.Helper()
	for _, c := range demoCases {
		if c.manifest == manifest && !c.lockdown {
			return c
		}
	}
	t.Fatalf("no demo case runs %s", manifest)
	return demoCase{}
}

// demoImpersonation reads a demo manifest and names its impersonation
// annotation.
func demoImpersonation(t *testing.T, manifest string) (*corev1.ServiceAccount, string) {
	t.Helper()
	sa, err := demoServiceAccount(manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{aws.AssumeRoleAnnotation, gcp.ImpersonateAnnotation, azure.ImpersonateAnnotation} {
		if _, ok := sa.Annotations[key]; ok {
			return sa, key
		}
	}
	t.Fatalf("%s has no impersonation annotation", manifest)
	return nil, ""
}

// demoToken is a token that lasts d.
type demoToken time.Duration

func (d demoToken) GetDuration() time.Duration { return time.Duration(d) }
