package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// rulesOf runs lint -o json and returns the rule of every finding.
func rulesOf(t *testing.T, setup func(*app), args ...string) ([]string, lintReport, result) {
	t.Helper()
	r := run(t, setup, append([]string{"lint", "-o", "json"}, args...)...)
	var report lintReport
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil {
		t.Fatalf("lint -o json printed invalid JSON: %v\n%s%s", err, r.stdout, r.stderr)
	}
	rules := []string{}
	for _, f := range report.Findings {
		rules = append(rules, f.Rule)
	}
	return rules, report, r
}

// TestLintCorpus runs lint on one manifest per kind of misconfiguration,
// pins the human output in a golden file and the rules in the JSON output.
func TestLintCorpus(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		file      string
		lockdown  bool
		wantRules []string
	}{
		{file: "invalid-yaml.yaml", wantRules: []string{"invalid-yaml"}},
		{file: "invalid-manifest.yaml", wantRules: []string{"invalid-manifest"}},
		{file: "not-a-string.yaml", wantRules: []string{"invalid-manifest"}},
		{file: "unknown-field.yaml", wantRules: []string{"invalid-annotation"}},
		{file: "unknown-annotation.yaml", wantRules: []string{"unknown-annotation"}},
		{file: "empty-value.yaml", wantRules: []string{"invalid-annotation"}},
		{file: "bad-arn.yaml", wantRules: []string{"invalid-annotation"}},
		{file: "bad-email.yaml", wantRules: []string{"invalid-annotation"}},
		{file: "bad-identity.yaml", wantRules: []string{"invalid-identity"}},
		{file: "ambiguous.yaml", wantRules: []string{"ambiguous-source"}},
		{file: "ambiguous.yaml", lockdown: true, wantRules: []string{"lockdown-forbids-controller"}},
		{file: "lockdown-refused.yaml", wantRules: []string{}},
		{file: "lockdown-refused.yaml", lockdown: true, wantRules: []string{"lockdown-forbids-controller"}},
		{file: "lockdown-no-role.yaml", wantRules: []string{}},
		{file: "lockdown-no-role.yaml", lockdown: true, wantRules: []string{"missing-identity"}},
		{file: "azure-impersonate.yaml", wantRules: []string{"invalid-annotation"}},
		{file: "azure-annotation.yaml", wantRules: slices.Repeat([]string{"invalid-annotation"}, 7)},
		{file: "azure-sources.yaml", wantRules: []string{"missing-identity", "ambiguous-source"}},
		{file: "azure-sources.yaml", lockdown: true,
			wantRules: []string{"missing-identity", "lockdown-forbids-controller", "lockdown-forbids-controller"}},
		{file: "multi-document.yaml", wantRules: []string{"invalid-identity"}},
		{file: "aws-parameters.yaml", wantRules: slices.Repeat([]string{"invalid-parameter"}, 8)},
		{file: "gcp-parameters.yaml", wantRules: slices.Repeat([]string{"invalid-parameter"}, 4)},
		// A ServiceAccount of a List is linted like any other.
		{file: "list.yaml", wantRules: []string{"invalid-annotation"}},
		{file: "binary-file.yaml", wantRules: []string{"binary-file"}},
		{file: "not-utf8.yaml", wantRules: []string{"binary-file"}},
		{file: "control-character.yaml", wantRules: []string{"invalid-yaml"}},
		{file: "field-types.yaml", wantRules: slices.Repeat([]string{"invalid-manifest"}, 5)},
		{file: "duplicate-field.yaml", wantRules: slices.Repeat([]string{"invalid-manifest"}, 2)},
		{file: "helm-template.yaml", wantRules: slices.Repeat([]string{"helm-template"}, 2)},
		{file: "near-miss-annotation.yaml", wantRules: slices.Repeat([]string{"unknown-annotation"}, 6)},
	} {
		name := strings.TrimSuffix(tt.file, ".yaml")
		var flags []string
		if tt.lockdown {
			name += "-lockdown"
			flags = []string{"--lockdown"}
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			path := filepath.Join("testdata", "lint", "bad", tt.file)
			wantCode := exitFindings
			if len(tt.wantRules) == 0 {
				wantCode = exitOK
			}

			r := run(t, nil, append(append([]string{"lint"}, flags...), path)...)
			g.Expect(r.code).To(Equal(wantCode), r.stdout+r.stderr)
			g.Expect(r.stderr).To(BeEmpty())
			checkGolden(t, filepath.Join("lint", name+".txt"), r.golden())

			rules, report, jr := rulesOf(t, nil, append(flags, path)...)
			g.Expect(jr.code).To(Equal(wantCode))
			g.Expect(rules).To(Equal(tt.wantRules))
			for _, f := range report.Findings {
				g.Expect(f.File).To(Equal(path))
				g.Expect(f.Line).To(BeNumerically(">", 0), "every finding of the corpus has a line")
				g.Expect(f.Fix).NotTo(BeEmpty())
			}
		})
	}
}

func TestLintFindsTheBadDocumentOfAMultiDocumentFile(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	_, report, _ := rulesOf(t, nil, "testdata/lint/bad/multi-document.yaml")
	g.Expect(report.Findings).To(HaveLen(1))
	f := report.Findings[0]
	g.Expect(f.ServiceAccount).To(Equal("bad"))
	g.Expect(f.Annotation).To(Equal("iam.gke.io/gcp-service-account"))
	g.Expect(f.Line).To(Equal(37), "the line of the annotation in the third document")
	g.Expect(report.Summary).To(Equal(lintCounts{Files: 1, ServiceAccounts: 2, Checked: 2, Findings: 1}))
}

func TestLintClean(t *testing.T) {
	t.Parallel()
	for _, flags := range [][]string{nil, {"--lockdown"}} {
		t.Run(strings.Join(append([]string{"lint"}, flags...), " "), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, append(append([]string{"lint"}, flags...), "testdata/lint/clean")...)
			g.Expect(r.code).To(Equal(exitOK), r.stdout+r.stderr)
			g.Expect(r.stdout).To(HavePrefix("No problems. Checked 5 files, 11 ServiceAccounts, 10 with identity annotations"))
			g.Expect(r.stderr).To(BeEmpty())
		})
	}
}

// TestLintSeeds lints the seed manifests of the repository: the library
// accepts every case of the proposal, and under lockdown refuses the
// controller-level AWS and Azure cases (no role or managed identity for the
// ServiceAccount to be the source).
func TestLintSeeds(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	_, report, r := rulesOf(t, nil, "../../testdata")
	g.Expect(r.code).To(Equal(exitOK), r.stdout)
	g.Expect(report.Findings).To(BeEmpty())

	_, report, _ = rulesOf(t, nil, "--lockdown", "../../testdata")
	g.Expect(byFile(report)).To(Equal(map[string][]string{
		"aws-controller-irsa.yaml": {"missing-identity"},
		"aws-pod-identity.yaml":    {"missing-identity"},
		"azure-impersonate.yaml":   {"missing-identity"},
	}))
	azure := report.Findings[2]
	g.Expect(azure.Line).To(Equal(18), "the annotation's line")
	g.Expect(azure.Fix).To(Equal("add azure.workload.identity/client-id and tenant-id with the managed identity the " +
		"app trusts as a federated identity credential: under lockdown the ServiceAccount, not the controller, is the source"))
}

func byFile(r lintReport) map[string][]string {
	m := map[string][]string{}
	for _, f := range r.Findings {
		m[filepath.Base(f.File)] = append(m[filepath.Base(f.File)], f.Rule)
	}
	return m
}

// TestLintDirectory pins the JSON of the whole corpus: directories are read
// recursively, in order, and every file's findings are reported.
func TestLintDirectory(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	r := run(t, nil, "lint", "-o", "json", "--lockdown", "testdata/lint")
	g.Expect(r.code).To(Equal(exitFindings))
	checkGolden(t, filepath.Join("lint", "corpus-lockdown.json"), r.stdout)
}

func TestLintStdin(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	data, err := os.ReadFile("testdata/lint/bad/ambiguous.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	stdin := func(a *app) { a.stdin = strings.NewReader(string(data)) }

	rules, report, r := rulesOf(t, stdin, "-")
	g.Expect(r.code).To(Equal(exitFindings))
	g.Expect(rules).To(Equal([]string{"ambiguous-source"}))
	g.Expect(report.Findings[0].File).To(Equal("<stdin>"))
	g.Expect(report.Findings[0].Line).To(Equal(10))
}

func TestLintUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no path", []string{"lint"}, "Error: requires at least 1 arg(s), only received 0"},
		{"missing path", []string{"lint", "testdata/lint/nope.yaml"}, "Error: failed to read 'testdata/lint/nope.yaml': no such file or directory"},
		{"bad output", []string{"lint", "-o", "xml", "testdata/lint/clean"}, "Error: invalid output format 'xml': must be table or json"},
		{"unknown flag", []string{"lint", "--lockdwn", "testdata/lint/clean"}, "Error: unknown flag: --lockdwn"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, tt.args...)
			g.Expect(r.code).To(Equal(exitUsage))
			g.Expect(r.stdout).To(BeEmpty())
			g.Expect(r.stderr).To(Equal(tt.wantErr + "\nRun 'idchain lint --help' for usage.\n"))
		})
	}
}

// TestLintFindingsSayWhereAndHow: every finding of the corpus has a line
// and a column, a fix, and no Go in its words.
func TestLintFindingsSayWhereAndHow(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	_, report, _ := rulesOf(t, nil, "--lockdown", "testdata/lint/bad")
	g.Expect(report.Findings).NotTo(BeEmpty())
	for _, f := range report.Findings {
		g.Expect(f.Line).To(BeNumerically(">", 0), f.File+": "+f.Problem)
		g.Expect(f.Column).To(BeNumerically(">", 0), f.File+": "+f.Problem)
		g.Expect(f.Fix).NotTo(BeEmpty(), f.File+": "+f.Problem)
		for _, goWords := range []string{"Go struct", "json:", "unmarshal", "the API server would refuse this object"} {
			g.Expect(f.Problem+" "+f.Fix).NotTo(ContainSubstring(goWords), f.File)
		}
	}
}

// TestLintRepository lints a GitOps repository: a Helm chart's templates
// are skipped with a note, what .idchainignore and --exclude name is not
// read (a binary and a broken file there would be findings), and the rest
// is linted.
func TestLintRepository(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"repo", []string{"lint", "testdata/repo"}},
		{"repo-exclude", []string{"lint", "testdata/repo", "--exclude", "tenants/", "--exclude", "testdata/repo/charts/**"}},
		{"repo-template-file", []string{"lint", "testdata/repo/charts/app/templates/serviceaccount.yaml"}},
		{"repo-json", []string{"lint", "-o", "json", "testdata/repo"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, nil, tt.args...)
			ext := ".txt"
			if tt.name == "repo-json" {
				ext = ".json"
			}
			checkGolden(t, filepath.Join("lint", tt.name+ext), r.golden())
		})
	}
	t.Run("what is read", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		m, err := readManifestsExcept([]string{"testdata/repo"}, nil, nil)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(m.order).To(HaveLen(4))
		g.Expect(m.order).To(HaveKey("testdata/repo/tenants/team-a/serviceaccount.yaml"))
		g.Expect(m.order).NotTo(HaveKey("testdata/repo/legacy/broken.yaml"))
		g.Expect(m.order).NotTo(HaveKey("testdata/repo/clusters/prod/secrets.enc.yaml"))
		g.Expect(m.excluded).To(Equal(2))
		g.Expect(m.notes).To(Equal([]lintNote{{Path: "testdata/repo/charts/app", Files: 2,
			Note: "skipped 2 Helm templates under testdata/repo/charts/app: lint the rendered output of `helm template`"}}))
	})
	t.Run("a pattern that is not valid", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		r := run(t, nil, "lint", "--exclude", "[", "testdata/repo")
		g.Expect(r.code).To(Equal(exitUsage))
		g.Expect(r.stderr).To(HavePrefix("Error: invalid pattern '[' in --exclude: syntax error in pattern\n"))
	})
}

func TestIgnoreRules(t *testing.T) {
	t.Parallel()
	rules, err := parseIgnoreRules([]string{
		"# a comment", "", "*.enc.yaml", "legacy/", "/top.yaml", "deep/**/x.yaml", "!keep.enc.yaml", `\#hash.yaml`,
	}, "test")
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	for _, tt := range []struct {
		path string
		dir  bool
		want bool
	}{
		{"a.enc.yaml", false, true},
		{"x/y/a.enc.yaml", false, true},
		{"keep.enc.yaml", false, false},
		{"x/keep.enc.yaml", false, false},
		{"legacy", true, true},
		{"x/legacy", true, true},
		{"legacy", false, false},
		{"top.yaml", false, true},
		{"x/top.yaml", false, false},
		{"deep/x.yaml", false, true},
		{"deep/a/b/x.yaml", false, true},
		{"x/deep/x.yaml", false, false},
		{"#hash.yaml", false, true},
		{"a.yaml", false, false},
	} {
		if got := rules.excludes(tt.path, tt.dir); got != tt.want {
			t.Errorf("excludes(%q, dir %v) = %v, want %v", tt.path, tt.dir, got, tt.want)
		}
	}
}

// TestNearMisses: every annotation the library reads, misspelt as people
// do, is flagged with the right one; other annotations are not.
func TestNearMisses(t *testing.T) {
	t.Parallel()
	for _, w := range readAnnotations {
		for _, miss := range []string{
			strings.ToUpper(w[:1]) + w[1:],
			strings.ReplaceAll(w, "-", "_"),
			w[:len(w)-1],
			w + "s",
			w[:len(w)-2] + w[len(w)-1:] + w[len(w)-2:len(w)-1],
		} {
			if miss == w {
				continue
			}
			got, ok := nearestAnnotation(miss)
			if !ok || got != w {
				t.Errorf("%s: got %q, %v; want %s", miss, got, ok, w)
			}
		}
	}
	for _, other := range []string{
		"eks.amazonaws.com/audience", "eks.amazonaws.com/sts-regional-endpoints", "eks.amazonaws.com/token-expiration",
		"azure.workload.identity/service-account-token-expiration", "kubectl.kubernetes.io/last-applied-configuration",
		"meta.helm.sh/release-name", "kustomize.toolkit.fluxcd.io/name",
	} {
		if got, ok := nearestAnnotation(other); ok {
			t.Errorf("%s is taken for %s", other, got)
		}
	}
}

// TestLintYAMLErrorLines: yaml.v3 leaves the line out of an error on the
// first line of what it reads; lint says it, in the file.
func TestLintYAMLErrorLines(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		stdin     string
		line, col int
	}{
		{"a: [\n", 1, 1},
		{"a: 1\n---\n  b: [\n", 3, 3},
	} {
		t.Run(tt.stdin, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			_, report, _ := rulesOf(t, func(a *app) { a.stdin = strings.NewReader(tt.stdin) }, "-")
			g.Expect(report.Findings).To(HaveLen(1))
			f := report.Findings[0]
			g.Expect([]any{f.Rule, f.Line, f.Column}).To(Equal([]any{"invalid-yaml", tt.line, tt.col}))
		})
	}
}
