// Command idchain helps the people who write and debug the impersonation
// annotations of github.com/identitychain/auth: it explains the chain a
// ServiceAccount asks for, lints manifests in CI, runs the chain from a pod,
// and demonstrates every case of the proposal against in-process fakes.
package main

import (
	"os"

	"golang.org/x/term"
)

func main() {
	a := &app{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		color:  colorWanted(os.Stdout),
	}
	os.Exit(a.run(os.Args[1:]))
}

// colorWanted reports whether f is a terminal and the user did not opt out
// with a non-empty NO_COLOR (https://no-color.org): escape codes in a pipe
// or a CI log are noise.
func colorWanted(f *os.File) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}
