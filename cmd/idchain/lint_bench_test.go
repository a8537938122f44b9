package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchServiceAccounts is how many ServiceAccounts BenchmarkLint lints in
// one file: a large GitOps repository rendered by kustomize, 5.8 MB.
const benchServiceAccounts = 24000

// benchManifest returns n ServiceAccounts in one multi-document stream,
// the mix a platform with many tenants has: AWS, GCP and Azure
// impersonation from the controller and from the ServiceAccount, plain
// workload identity, a ServiceAccount without annotations, and one in a
// hundred with a problem lint reports.
func benchManifest(n int) []byte {
	var b strings.Builder
	for i := range n {
		ns := fmt.Sprintf("tenant-%05d", i/8)
		b.WriteString("---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n")
		fmt.Fprintf(&b, "  name: app-%d\n  namespace: %s\n", i%8, ns)
		if i%100 == 99 {
			// A field name in the wrong case: one finding.
			b.WriteString("  annotations:\n    aws.auth.fluxcd.io/assume-role: |\n" +
				"      roleArn: arn:aws:iam::222222222222:role/target\n")
			continue
		}
		switch i % 8 {
		case 0, 1:
			fmt.Fprintf(&b, "  annotations:\n    eks.amazonaws.com/role-arn: arn:aws:iam::111111111111:role/%s\n"+
				"    aws.auth.fluxcd.io/assume-role: |\n      roleARN: arn:aws:iam::222222222222:role/%s-deploy\n"+
				"      useServiceAccount: true\n", ns, ns)
		case 2:
			fmt.Fprintf(&b, "  annotations:\n    aws.auth.fluxcd.io/assume-role: |\n"+
				"      roleARN: arn:aws:iam::222222222222:role/%s-read\n      duration: 30m\n", ns)
		case 3:
			fmt.Fprintf(&b, "  annotations:\n    iam.gke.io/gcp-service-account: %s@source.iam.gserviceaccount.com\n"+
				"    gcp.auth.fluxcd.io/impersonate: |\n      gcpServiceAccount: %s@target.iam.gserviceaccount.com\n"+
				"      useServiceAccount: true\n", ns, ns)
		case 4:
			fmt.Fprintf(&b, "  annotations:\n    gcp.auth.fluxcd.io/impersonate: |\n"+
				"      gcpServiceAccount: %s@target.iam.gserviceaccount.com\n", ns)
		case 5:
			b.WriteString("  annotations:\n    azure.auth.fluxcd.io/impersonate: |\n" +
				"      clientID: 33333333-3333-4333-8333-333333333333\n      tenantID: contoso.onmicrosoft.com\n")
		case 6:
			fmt.Fprintf(&b, "  annotations:\n    eks.amazonaws.com/role-arn: arn:aws:iam::111111111111:role/%s\n", ns)
		case 7:
			b.WriteString("automountServiceAccountToken: false\n")
		}
	}
	return []byte(b.String())
}

// BenchmarkLint lints benchManifest(24000) in one file, as
// `idchain lint FILE` does, table output included, and reports
// ServiceAccounts/s. On one core:
//
//	go test -run '^$' -bench BenchmarkLint -cpu 1 ./cmd/idchain/
func BenchmarkLint(b *testing.B) {
	path := filepath.Join(b.TempDir(), "serviceaccounts.yaml")
	data := benchManifest(benchServiceAccounts)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}
		if code := a.run([]string{"lint", path}); code != exitFindings {
			b.Fatalf("exit %d, want %d", code, exitFindings)
		}
	}
	b.ReportMetric(float64(benchServiceAccounts*b.N)/b.Elapsed().Seconds(), "ServiceAccounts/s")
}

// benchList returns the ServiceAccounts of benchManifest(n) as one
// document, the List `kubectl get serviceaccounts -A -o yaml` prints.
func benchList(n int) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n")
	for _, doc := range strings.Split(string(benchManifest(n)), "---\n")[1:] {
		lines := strings.Split(strings.TrimSuffix(doc, "\n"), "\n")
		for i, l := range lines {
			if i == 0 {
				b.WriteString("- " + l + "\n")
			} else {
				b.WriteString("  " + l + "\n")
			}
		}
	}
	return []byte(b.String())
}

// BenchmarkLintList is BenchmarkLint with the ServiceAccounts in one
// document, a List of 5.8 MB.
func BenchmarkLintList(b *testing.B) {
	path := filepath.Join(b.TempDir(), "list.yaml")
	data := benchList(benchServiceAccounts)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}
		if code := a.run([]string{"lint", path}); code != exitFindings {
			b.Fatalf("exit %d, want %d", code, exitFindings)
		}
	}
	b.ReportMetric(float64(benchServiceAccounts*b.N)/b.Elapsed().Seconds(), "ServiceAccounts/s")
}

// BenchmarkLintRead is the reading part of BenchmarkLint: YAML, and each
// ServiceAccount decoded as the API server would.
func BenchmarkLintRead(b *testing.B) {
	data := benchManifest(benchServiceAccounts)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		m := &manifests{order: map[string]int{}}
		m.parse("serviceaccounts.yaml", data)
	}
	b.ReportMetric(float64(benchServiceAccounts*b.N)/b.Elapsed().Seconds(), "ServiceAccounts/s")
}

// BenchmarkLintRules is the checking part of BenchmarkLint: the library's
// parsers and Plan, for every ServiceAccount read.
func BenchmarkLintRules(b *testing.B) {
	m := &manifests{order: map[string]int{}}
	m.parse("serviceaccounts.yaml", benchManifest(benchServiceAccounts))
	b.ReportAllocs()
	for b.Loop() {
		lint(m, false, nil)
	}
	b.ReportMetric(float64(benchServiceAccounts*b.N)/b.Elapsed().Seconds(), "ServiceAccounts/s")
}
