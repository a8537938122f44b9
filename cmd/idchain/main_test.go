package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fluxauth "github.com/fluxcd/pkg/auth"
	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/golden")

func TestMain(m *testing.M) {
	// The controllers run with the upstream gate on, and so do the commands
	// by default. Setting it once here means parallel tests only read it.
	fluxauth.EnableObjectLevelWorkloadIdentity()
	goleak.VerifyTestMain(m)
}

// result is one run of the command line.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

// run runs idchain in process with args; setup, if not nil, adjusts the
// app first (stdin, fakes).
func run(t *testing.T, setup func(*app), args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, objectLevelDefault: true}
	if setup != nil {
		setup(a)
	}
	code := a.run(args)
	return result{args: args, stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// golden is how a run is pinned: the command, its stdout, its stderr and
// its exit status, so a change to any of them shows in review.
func (r result) golden() string {
	var b strings.Builder
	b.WriteString("$ idchain " + strings.Join(r.args, " ") + "\n")
	b.WriteString(r.stdout)
	if r.stderr != "" {
		b.WriteString("[stderr]\n" + r.stderr)
	}
	b.WriteString("[exit " + string(rune('0'+r.code)) + "]\n")
	return b.String()
}

// checkGolden compares got with testdata/golden/name, or rewrites it with
// -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/idchain -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test ./cmd/idchain -update after checking the change):\n--- got\n%s\n--- want\n%s",
			path, got, want)
	}
}
