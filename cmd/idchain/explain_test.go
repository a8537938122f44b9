package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"
	"github.com/spf13/cobra"

	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/internal/inspect"
)

// seedArgs returns the explain arguments for a seed manifest of the
// repository: its provider is the prefix of its name, and AWS needs a
// region, as the object spec would give it.
func seedArgs(path string) []string {
	provider, _, _ := strings.Cut(filepath.Base(path), "-")
	args := []string{"explain", "--provider", provider, "-f", path}
	if provider == "aws" {
		args = append(args, "--region", "us-east-1")
	}
	return args
}

// TestExplainSeeds pins the explanation of every seed manifest of the
// repository, with lockdown off and on.
func TestExplainSeeds(t *testing.T) {
	t.Parallel()
	seeds, err := filepath.Glob("../../testdata/*.yaml")
	if err != nil || len(seeds) == 0 {
		t.Fatalf("no seed manifests: %v", err)
	}
	for _, seed := range seeds {
		for _, lockdown := range []bool{false, true} {
			name := strings.TrimSuffix(filepath.Base(seed), ".yaml")
			args := seedArgs(seed)
			if lockdown {
				name += "-lockdown"
				args = append(args, "--default-service-account", "default")
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r := run(t, nil, args...)
				checkGolden(t, filepath.Join("explain", name+".txt"), r.golden())
				want := exitOK
				if strings.Contains(r.stdout, "refused") {
					want = exitFindings
				}
				NewWithT(t).Expect(r.code).To(Equal(want), r.stderr)
			})
		}
	}
}

func TestExplainJSON(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	r := run(t, nil, append(seedArgs("../../testdata/aws-object-irsa.yaml"), "-o", "json")...)
	g.Expect(r.code).To(Equal(exitOK), r.stderr)
	checkGolden(t, filepath.Join("explain", "aws-object-irsa.json"), r.stdout)

	var e explanation
	g.Expect(json.Unmarshal([]byte(r.stdout), &e)).To(Succeed())
	g.Expect(e.Source.Kind).To(Equal("service-account"))
	g.Expect(e.Source.Identity).To(Equal("arn:aws:iam::111111111111:role/source-account-role"))
	g.Expect(e.Target).To(Equal("arn:aws:iam::222222222222:role/target-account-role"))
	g.Expect(e.SessionName).To(Equal("my-app.my-app.fluxcd.io"))
	g.Expect(e.Hops).To(HaveLen(3))
}

// TestExplainParametersJSON pins -o json for the seeds that set request
// parameters: each is listed as sent, by annotation field and API name.
func TestExplainParametersJSON(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		seed string
		want []explainParameter
	}{
		{seed: "aws-assume-role-params", want: []explainParameter{
			{Field: "externalID", SentAs: "ExternalId", Value: "my-app-7f3a9c"},
			{Field: "duration", SentAs: "DurationSeconds", Value: "1800"},
			{Field: "sessionTags", SentAs: "Tags", Keys: []string{"environment", "team"},
				Values: []string{"production", "payments"}},
			{Field: "transitiveTagKeys", SentAs: "TransitiveTagKeys", Values: []string{"team"}},
			{Field: "policyARNs", SentAs: "PolicyArns",
				Values: []string{"arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"}},
			{Field: "policy", SentAs: "Policy", Value: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
				`"Action":["ecr:GetAuthorizationToken","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Resource":"*"}]}`},
		}},
		{seed: "gcp-impersonate-delegates", want: []explainParameter{
			{Field: "delegates", SentAs: "delegates",
				Values: []string{"projects/-/serviceAccounts/hop-sa@middle-project.iam.gserviceaccount.com"}},
			{Field: "lifetime", SentAs: "lifetime", Value: "1800s"},
			{Field: "scopes", SentAs: "scope", Values: []string{"https://www.googleapis.com/auth/devstorage.read_only"}},
		}},
	} {
		t.Run(tt.seed, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, append(seedArgs("../../testdata/"+tt.seed+".yaml"), "-o", "json")...)
			g.Expect(r.code).To(Equal(exitOK), r.stderr)
			checkGolden(t, filepath.Join("explain", tt.seed+".json"), r.stdout)

			var e explanation
			g.Expect(json.Unmarshal([]byte(r.stdout), &e)).To(Succeed())
			g.Expect(e.Parameters).To(Equal(tt.want))
		})
	}
}

// The annotation's scopes are sent in place of --scopes: explain shows
// them, and says --scopes goes unused.
func TestExplainAnnotationScopesReplaceTheFlag(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	r := run(t, nil, append(seedArgs("../../testdata/gcp-impersonate-delegates.yaml"), "--scopes",
		"https://www.googleapis.com/auth/cloud-platform", "-o", "json")...)
	g.Expect(r.code).To(Equal(exitOK), r.stderr)
	var e explanation
	g.Expect(json.Unmarshal([]byte(r.stdout), &e)).To(Succeed())
	g.Expect(e.Scopes).To(Equal([]string{"https://www.googleapis.com/auth/devstorage.read_only"}))
	g.Expect(e.ScopesNote).To(Equal("the annotation's, in place of --scopes or the default"))
	g.Expect(e.Warnings).To(ConsistOf("--scopes is not used for this ServiceAccount: the scopes of its " +
		"gcp.auth.fluxcd.io/impersonate annotation take their place"))
	g.Expect(e.Hops[len(e.Hops)-1].Details).To(Equal("bearing the source token"))
}

// Parameters carry tenant text: the text output quotes and escapes it, and
// the JSON escapes what a terminal would act on.
func TestExplainParametersAreEscaped(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	path := filepath.Join(t.TempDir(), "sa.yaml")
	manifest := "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n  namespace: team-a\n  annotations:\n" +
		"    aws.auth.fluxcd.io/assume-role: |\n" +
		"      roleARN: arn:aws:iam::222222222222:role/t\n" +
		"      sessionTags: {\"t\u00a0x\": \"\u0663\"}\n" +
		`      policy: '{"Sid": "it''s \u001b[2J"}'` + "\n"
	g.Expect(os.WriteFile(path, []byte(manifest), 0o644)).To(Succeed())

	r := run(t, nil, "explain", "--provider", "aws", "--region", "us-east-1", "-f", path)
	g.Expect(r.code).To(Equal(exitOK), r.stdout+r.stderr)
	g.Expect(r.stdout).To(ContainSubstring("  Tags ['t\\u00a0x'='\u0663']\n"))
	g.Expect(r.stdout).To(ContainSubstring(`Policy '{"Sid":"it\'s \\u001b[2J"}'` + "\n"))
	_, unsafe := unsafeRune(r.stdout)
	g.Expect(unsafe).To(BeFalse())

	r = run(t, nil, "explain", "--provider", "aws", "--region", "us-east-1", "-f", path, "-o", "json")
	g.Expect(r.code).To(Equal(exitOK), r.stderr)
	g.Expect(r.stdout).To(ContainSubstring(`"t\u00a0x"`))
	var e explanation
	g.Expect(json.Unmarshal([]byte(r.stdout), &e)).To(Succeed())
	g.Expect(e.Parameters[0].Keys).To(Equal([]string{"t\u00a0x"}))
	g.Expect(e.Parameters[1].Value).To(Equal(`{"Sid":"it's \u001b[2J"}`))
}

func TestExplainRefusals(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{
			name:    "AWS impersonation without a region",
			args:    []string{"explain", "--provider", "aws", "-f", "../../testdata/aws-pod-identity.yaml"},
			wantErr: "an AWS region is required to assume a role: service account 'my-app/my-app' asks to assume role 'arn:aws:iam::222222222222:role/target-account-role'. set the region in the object spec (auth.WithSTSRegion) (idchain: pass --region)",
		},
		{
			name: "lockdown and the object names no ServiceAccount, default missing",
			args: []string{"explain", "--provider", "gcp", "-n", "team-a", "--default-service-account", "flux",
				"-f", "testdata/lint/clean/tenants.yaml"},
			wantErr: "failed to get default service account 'team-a/flux': " + fluxauth.ErrDefaultServiceAccountNotFound.Error() +
				". create it, or set .spec.serviceAccountName on the object",
		},
		{
			name:    "ambiguous source",
			args:    []string{"explain", "--provider", "aws", "--region", "us-east-1", "-f", "testdata/lint/bad/ambiguous.yaml"},
			wantErr: "ambiguous impersonation source: aws.auth.fluxcd.io/assume-role on service account 'team-a/app'",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, tt.args...)
			g.Expect(r.code).To(Equal(exitFindings))
			g.Expect(r.stdout).To(ContainSubstring("refused by the library (no cloud was called)"))
			g.Expect(r.stderr).To(HavePrefix("Error: " + tt.wantErr))
		})
	}
}

func TestExplainPicksAServiceAccountOfAManifest(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	r := run(t, nil, "explain", "--provider", "gcp", "-n", "team-a", "--service-account", "gcp-direct",
		"--default-service-account", "default", "-f", "testdata/lint/clean/tenants.yaml")
	g.Expect(r.code).To(Equal(exitOK), r.stderr)
	g.Expect(r.stdout).To(ContainSubstring("Source:          ServiceAccount team-a/gcp-direct, by direct access (object level)\n"))
}

func TestExplainControllerIdentity(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	// No ServiceAccount, no lockdown: nothing to read, no cluster needed.
	r := run(t, nil, "explain", "--provider", "aws", "--region", "us-east-1")
	g.Expect(r.code).To(Equal(exitOK), r.stderr)
	checkGolden(t, filepath.Join("explain", "controller.txt"), r.golden())
}

// TestExplainFromCluster reads the ServiceAccount through the Kubernetes
// client, as without -f.
func TestExplainFromCluster(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	sa, err := demoServiceAccount("gcp-object-wif.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	issuer, err := fakes.NewIssuer(demoIssuerURL)
	g.Expect(err).NotTo(HaveOccurred())
	kube := func(a *app) { a.kubeClient = fakes.NewKubeClient(issuer, sa) }

	r := run(t, kube, "explain", "--provider", "gcp", "-n", "my-app", "--service-account", "my-app")
	g.Expect(r.code).To(Equal(exitOK), r.stderr)
	g.Expect(r.stdout).To(ContainSubstring("iamcredentials generateAccessToken source-sa@source-project.iam.gserviceaccount.com"))

	r = run(t, kube, "explain", "--provider", "gcp", "-n", "my-app", "--service-account", "nope")
	g.Expect(r.code).To(Equal(exitFindings))
	g.Expect(r.stderr).To(ContainSubstring(`failed to get service account 'my-app/nope': serviceaccounts "nope" not found`))
}

// TestExplainFeatureGateOff changes the process-wide upstream gate, so it
// cannot run in parallel with the other tests.
func TestExplainFeatureGateOff(t *testing.T) {
	g := NewWithT(t)
	t.Cleanup(fluxauth.EnableObjectLevelWorkloadIdentity)
	r := run(t, nil, append(seedArgs("../../testdata/aws-object-irsa.yaml"), "--object-level-workload-identity=false")...)
	g.Expect(r.code).To(Equal(exitFindings))
	g.Expect(r.stderr).To(Equal("Error: ObjectLevelWorkloadIdentity feature gate is not enabled: the object names " +
		"service account 'my-app/my-app', and any service account needs the gate. start the controller with " +
		"--feature-gates=ObjectLevelWorkloadIdentity=true, or remove the service account from the object to use " +
		"the controller identity (idchain: the gate decided this; it is off unless the controller runs with " +
		"--feature-gates=ObjectLevelWorkloadIdentity=true: then pass --object-level-workload-identity)\n"))
}

// The commands default to the gate's real default in the controllers: off.
func TestFeatureGateFlagDefaultsOff(t *testing.T) {
	t.Parallel()
	a := &app{}
	for _, cmd := range []*cobra.Command{a.newExplainCmd(), a.newTokenCmd()} {
		flag := cmd.Flags().Lookup("object-level-workload-identity")
		if flag == nil || flag.DefValue != "false" {
			t.Errorf("%s: --object-level-workload-identity defaults to %v, want false", cmd.Name(), flag)
		}
	}
}

func TestExplainUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"explain"}, "--provider is required: aws, gcp or azure"},
		{[]string{"explain", "--provider", "oci"}, "invalid provider 'oci': must be aws, gcp or azure"},
		{[]string{"explain", "--provider", "aws", "-o", "yaml"}, "invalid output format 'yaml': must be table or json"},
		{[]string{"explain", "--provider", "aws", "--sts-endpoint", "https://evil.example.com"}, "invalid STS endpoint: 'https://evil.example.com'"},
		{[]string{"explain", "--provider", "aws", "-f", "testdata/lint/bad/invalid-yaml.yaml"}, "failed to read 'testdata/lint/bad/invalid-yaml.yaml:4:1': invalid YAML"},
		{[]string{"explain", "--provider", "aws", "extra"}, `unknown command "extra" for "idchain explain"`},
		// A file of several ServiceAccounts names none of them: refused,
		// with the ones to choose from, rather than explaining the
		// controller's identity.
		{[]string{"explain", "--provider", "aws", "--region", "us-east-1", "-f", "testdata/lint/clean/tenants.yaml"},
			"'testdata/lint/clean/tenants.yaml' holds 5 ServiceAccounts: pass --namespace and --service-account, " +
				"one of: team-a/default, team-a/aws-app, team-a/gcp-app, team-a/gcp-direct, team-a/plain\n"},
		{[]string{"explain", "--provider", "aws", "-f", "testdata/lint/clean/tenants.yaml", "--service-account", "nope"},
			"'testdata/lint/clean/tenants.yaml' holds no ServiceAccount 'nope': pass one of: team-a/default, "},
		{[]string{"explain", "--provider", "aws", "-f", "testdata/lint/clean/tenants.yaml", "-n", "team-b", "--service-account", "plain"},
			"'testdata/lint/clean/tenants.yaml' holds no ServiceAccount 'team-b/plain': pass one of: "},
		{[]string{"explain", "--provider", "aws", "-f", "testdata/repo/charts/app/Chart.yaml"},
			"'testdata/repo/charts/app/Chart.yaml' holds no ServiceAccount: pass the manifest of the one the object " +
				"names, or leave out -f to explain the controller's own identity\n"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, tt.args...)
			g.Expect(r.code).To(Equal(exitUsage))
			g.Expect(r.stderr).To(HavePrefix("Error: " + tt.wantErr))
		})
	}
}

// TestExplainAzure pins -o json for both Azure seeds, with lockdown off
// and on. Without --scopes explain plans for ARM's scope and says so: the
// library refuses Azure impersonation without scopes, which are the
// object's. The source's token is for the exchange audience whatever the
// scopes; the app's hop and the target's key have the object's.
func TestExplainAzure(t *testing.T) {
	t.Parallel()
	const (
		arm   = "https://management.azure.com/.default"
		vault = "https://vault.azure.net/.default"
		note  = "idchain's default for Azure impersonation, without --scopes: pass the scopes the controller asks " +
			"for, those of what it reaches, such as ACR's, AKS's or Key Vault's"
	)
	for _, tt := range []struct {
		seed      string
		lockdown  bool
		wantHops  []string
		wantError string
	}{
		{seed: "azure-impersonate", wantHops: []string{"controller credentials",
			"Entra client credentials, app 33333333-3333-4333-8333-333333333333"}},
		{seed: "azure-impersonate", lockdown: true,
			wantError: "Error: failed to get provider identity from service account 'my-app/my-app' annotations: " +
				"the service account names no managed identity"},
		{seed: "azure-object-impersonate", wantHops: []string{"Kubernetes TokenRequest", "Microsoft Entra ID token exchange",
			"Entra client credentials, app 33333333-3333-4333-8333-333333333333"}},
		{seed: "azure-object-impersonate", lockdown: true, wantHops: []string{"Kubernetes TokenRequest",
			"Microsoft Entra ID token exchange", "Entra client credentials, app 33333333-3333-4333-8333-333333333333"}},
	} {
		name := tt.seed
		args := append(seedArgs("../../testdata/"+tt.seed+".yaml"), "-o", "json")
		if tt.lockdown {
			name += "-lockdown"
			args = append(args, "--default-service-account", "default")
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, args...)
			checkGolden(t, filepath.Join("explain", name+".json"), r.stdout)
			var e explanation
			g.Expect(json.Unmarshal([]byte(r.stdout), &e)).To(Succeed())
			g.Expect(e.Scopes).To(Equal([]string{arm}))
			g.Expect(e.ScopesNote).To(Equal(note))
			if tt.wantError != "" {
				g.Expect(r.code).To(Equal(exitFindings))
				g.Expect(r.stderr).To(HavePrefix(tt.wantError))
				g.Expect(e.Fix).To(HavePrefix("add azure.workload.identity/client-id and tenant-id"))
				return
			}
			g.Expect(r.code).To(Equal(exitOK), r.stderr)
			var calls []string
			for _, h := range e.Hops {
				calls = append(calls, h.Call)
			}
			g.Expect(calls).To(Equal(tt.wantHops))
			g.Expect(e.Hops[len(e.Hops)-2].Details).To(HaveSuffix(", for scope api://AzureADTokenExchange/.default"))
			g.Expect(e.Hops[len(e.Hops)-1].Details).To(HaveSuffix("client assertion = the source token, scopes " + arm))
			g.Expect(e.CacheKey.Source).To(ContainElement(inspect.KeyInput{Name: "scopes",
				Value: []any{"api://AzureADTokenExchange/.default"}}))

			// With --scopes, they are the object's: no note, and the
			// app's hop asks for them.
			r = run(t, nil, append(args, "--scopes", vault)...)
			g.Expect(r.code).To(Equal(exitOK), r.stderr)
			e = explanation{}
			g.Expect(json.Unmarshal([]byte(r.stdout), &e)).To(Succeed())
			g.Expect(e.Scopes).To(Equal([]string{vault}))
			g.Expect(e.ScopesNote).To(BeEmpty())
			g.Expect(e.Hops[len(e.Hops)-1].Details).To(HaveSuffix("scopes " + vault))
			g.Expect(e.Parameters).To(ContainElement(explainParameter{Field: "scopes", SentAs: "scope", Values: []string{vault}}))
		})
	}
}

// TestExplainPicksTheServiceAccountOfAFile: of several, the one named,
// found by name alone when only one has it; of a List, its only one; under
// lockdown, --namespace alone is an object that names none.
func TestExplainPicksTheServiceAccountOfAFile(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-f", "testdata/lint/clean/tenants.yaml", "--service-account", "aws-app"}, "team-a/aws-app"},
		{[]string{"-f", "testdata/lint/clean/list.yaml"}, "team-a/listed"},
		{[]string{"-f", "testdata/lint/clean/tenants.yaml", "-n", "team-a", "--default-service-account", "plain"},
			"team-a/plain"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, append([]string{"explain", "--provider", "aws", "--region", "us-east-1", "-o", "json"}, tt.args...)...)
			g.Expect(r.stderr).NotTo(ContainSubstring("Run 'idchain explain --help'"))
			var e explanation
			g.Expect(json.Unmarshal([]byte(r.stdout), &e)).To(Succeed(), r.stdout+r.stderr)
			g.Expect(e.ServiceAccount).To(Equal(tt.want))
		})
	}
}
