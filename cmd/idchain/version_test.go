package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// TestVersion: the module version, the fluxcd/pkg/auth version the binary
// was built with (go.mod's) and Go's, from 'version', '--version' and
// 'version -o json' alike.
func TestVersion(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	r := run(t, nil, "version")
	g.Expect(r.code).To(Equal(exitOK), r.stderr)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	g.Expect(lines).To(HaveLen(3))
	g.Expect(lines[0]).To(HavePrefix("idchain "))
	g.Expect(lines[1]).To(Equal("github.com/fluxcd/pkg/auth v0.56.0"))
	g.Expect(lines[2]).To(Equal(runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH))

	g.Expect(run(t, nil, "--version").stdout).To(Equal(r.stdout))

	j := run(t, nil, "version", "-o", "json")
	var v versionInfo
	g.Expect(json.Unmarshal([]byte(j.stdout), &v)).To(Succeed())
	g.Expect(v.FluxAuth).To(Equal("v0.56.0"))
	g.Expect(v.Go).To(Equal(runtime.Version()))
	g.Expect(v.Version).NotTo(BeEmpty())
}

// TestCompletion: cobra's completion command is there, and completes the
// values of the flags that take one of a few.
func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		t.Run(shell, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, "completion", shell)
			g.Expect(r.code).To(Equal(exitOK), r.stderr)
			g.Expect(r.stdout).To(ContainSubstring("idchain"))
		})
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"explain", "--provider", ""}, []string{"aws", "gcp", "azure"}},
		{[]string{"lint", "-o", ""}, []string{"table", "json"}},
		{[]string{"policy", "check", "--source", ""}, []string{"controller", "serviceAccount"}},
		{[]string{""}, []string{"completion", "demo", "explain", "lint", "policy", "token", "version"}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			r := run(t, nil, append([]string{"__complete"}, tt.args...)...)
			g.Expect(r.code).To(Equal(exitOK), r.stderr)
			var got []string
			for _, l := range strings.Split(r.stdout, "\n") {
				if l != "" && !strings.HasPrefix(l, ":") {
					got = append(got, strings.SplitN(l, "\t", 2)[0])
				}
			}
			g.Expect(got).To(ContainElements(tt.want))
		})
	}
}
