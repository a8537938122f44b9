package main

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
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
	g.Expect(strings.Count(r.stdout, "  hit  ")).To(Equal(8))
	g.Expect(r.stdout).To(ContainSubstring("All 12 cases behaved as documented"))
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
