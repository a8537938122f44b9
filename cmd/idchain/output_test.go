package main

import (
	"os"
	"regexp"
	"testing"

	. "github.com/onsi/gomega"
)

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TestColorKeepsColumnsAligned checks that painting a table changes
// nothing but the escape codes.
func TestColorKeepsColumnsAligned(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"lint", "testdata/lint/bad"},
		{"explain", "--provider", "aws", "--region", "us-east-1", "-f", "../../testdata/aws-object-irsa.yaml"},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			plain := run(t, nil, args...)
			colored := run(t, func(a *app) { a.color = true }, args...)
			g.Expect(colored.stdout).To(ContainSubstring("\x1b["))
			g.Expect(ansi.ReplaceAllString(colored.stdout, "")).To(Equal(plain.stdout))
			g.Expect(plain.stdout).NotTo(ContainSubstring("\x1b["))
		})
	}
}

// TestColorWanted covers NO_COLOR and non-terminals; it sets the process
// environment, so it cannot be parallel.
func TestColorWanted(t *testing.T) {
	g := NewWithT(t)
	f, err := os.CreateTemp(t.TempDir(), "out")
	g.Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	g.Expect(colorWanted(f)).To(BeFalse(), "a file is not a terminal")

	t.Setenv("NO_COLOR", "1")
	g.Expect(colorWanted(os.Stdout)).To(BeFalse(), "NO_COLOR turns colour off")
}

func TestHelpTeaches(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"demo", "lint", "explain", "token"} {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, cmd, "--help")
			g.Expect(r.code).To(Equal(exitOK))
			g.Expect(r.stdout).To(ContainSubstring("Examples:"))
			g.Expect(r.stdout).To(ContainSubstring("idchain " + cmd))
		})
	}
	r := run(t, nil, "--help")
	NewWithT(t).Expect(r.stdout).To(ContainSubstring("aws.auth.fluxcd.io/assume-role: |"))
}

// The help of every command names Azure impersonation as what it is now:
// an annotation with fields, whose chain needs the object's scopes.
func TestHelpAzure(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	r := run(t, nil, "lint", "--help")
	g.Expect(r.stdout).To(ContainSubstring("azure.auth.fluxcd.io/impersonate   clientID (required), tenantID (required),\n"))
	g.Expect(r.stdout).NotTo(ContainSubstring("always refused"))
	for _, cmd := range []string{"explain", "token"} {
		r := run(t, nil, cmd, "--help")
		g.Expect(r.stdout).To(MatchRegexp(`--scopes strings\s+scopes of the token \(GCP defaults to cloud-platform; `+
			`required for Azure impersonation\)`), cmd)
	}
	r = run(t, nil, "explain", "--help")
	g.Expect(r.stdout).To(ContainSubstring("azure.auth.fluxcd.io/impersonate: |\n    clientID:"))
	r = run(t, nil, "--help")
	g.Expect(r.stdout).To(ContainSubstring("Microsoft Entra ID client\ncredentials"))
}
