package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	. "github.com/onsi/gomega"
)

// hostileManifest is what a hostile tenant could commit: a terminal escape
// and a forged log line in a role ARN, a bidi override in a target, and a
// 1 MiB role ARN.
func hostileManifest(t *testing.T) string {
	t.Helper()
	huge := "arn:aws:iam::123456789012:role/" + strings.Repeat("r", 1<<20)
	doc := `apiVersion: v1
kind: ServiceAccount
metadata:
  name: escape
  namespace: team-a
  annotations:
    aws.auth.fluxcd.io/assume-role: "roleARN: \"arn:aws:iam::123456789012:role/x\e[2J\e]0;pwned\a\nERROR forged line\""
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: bidi
  namespace: team-a
  annotations:
    gcp.auth.fluxcd.io/impersonate: "gcpServiceAccount: \"target@project-\u202eevil.iam.gserviceaccount.com\""
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: huge
  namespace: team-a
  annotations:
    aws.auth.fluxcd.io/assume-role: "roleARN: ` + huge + `"
`
	path := filepath.Join(t.TempDir(), "hostile.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// safeForTerminal reports the first rune a terminal could act on, other
// than newlines.
func unsafeRune(s string) (rune, bool) {
	for _, r := range s {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar) {
			return r, true
		}
	}
	return 0, false
}

// TestHostileTextNeverReachesTheTerminal: whatever a tenant writes, lint
// and explain print it escaped and cut, in tables, in JSON and in errors.
func TestHostileTextNeverReachesTheTerminal(t *testing.T) {
	t.Parallel()
	path := hostileManifest(t)
	for _, args := range [][]string{
		{"lint", path},
		{"lint", "-o", "json", path},
		{"explain", "--provider", "aws", "--region", "us-east-1", "-f", path, "-n", "team-a", "--service-account", "escape"},
		{"explain", "--provider", "aws", "--region", "us-east-1", "-f", path, "-n", "team-a", "--service-account", "escape", "-o", "json"},
		{"explain", "--provider", "gcp", "-f", path, "-n", "team-a", "--service-account", "bidi"},
		{"explain", "--provider", "aws", "--region", "us-east-1", "-f", path, "-n", "team-a", "--service-account", "huge"},
	} {
		t.Run(strings.ReplaceAll(strings.Join(args, " "), path, "hostile.yaml"), func(t *testing.T) {
			g := NewWithT(t)
			r := run(t, nil, args...)
			g.Expect(r.code).To(Equal(exitFindings), r.stderr)
			for name, out := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
				if bad, ok := unsafeRune(out); ok {
					t.Errorf("%s carries %U:\n%s", name, bad, out)
				}
				g.Expect(len(out)).To(BeNumerically("<", 32<<10), name)
				g.Expect(out).NotTo(ContainSubstring("\nERROR forged line"))
			}
			if strings.Contains(strings.Join(args, " "), "-o json") {
				g.Expect(json.Valid([]byte(r.stdout))).To(BeTrue(), r.stdout)
			}
		})
	}
}

// TestHostileTextUnderAPolicy: names no API server would accept reach the
// policy's refusal, the rule lint and explain offer to add, and the policy
// check's answer; none reaches the terminal unescaped.
func TestHostileTextUnderAPolicy(t *testing.T) {
	t.Parallel()
	const file = "testdata/policy/serviceaccounts/hostile.yaml"
	const ns, sa = "team-b\x1b[2J\nERROR forged line", "app\x1b]0;pwned\a"
	explain := []string{"explain", "--provider", "aws", "--region", "us-east-1", "-f", file, "-n", ns,
		"--service-account", sa, "--policy", tenantsPolicy}
	check := []string{"policy", "check", tenantsPolicy, "-n", ns, "--service-account", sa, "--source", "controller",
		"--target", "arn:aws:iam::222222222222:role/x\u202e\nERROR forged line"}
	for name, args := range map[string][]string{
		"lint":                 {"lint", "--policy", tenantsPolicy, file},
		"lint -o json":         {"lint", "-o", "json", "--policy", tenantsPolicy, file},
		"explain":              explain,
		"explain -o json":      append(explain, "-o", "json"),
		"policy check":         check,
		"policy check -o json": append(check, "-o", "json"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, args...)
			g.Expect(r.code).To(Equal(exitFindings), r.stdout+r.stderr)
			g.Expect(r.stdout).To(ContainSubstring("team-b"))
			for name, out := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
				if bad, ok := unsafeRune(out); ok {
					t.Errorf("%s carries %U:\n%s", name, bad, out)
				}
				g.Expect(out).NotTo(ContainSubstring("\nERROR forged line"))
			}
			if strings.HasSuffix(name, "-o json") {
				g.Expect(json.Valid([]byte(r.stdout))).To(BeTrue(), r.stdout)
			}
		})
	}
}
