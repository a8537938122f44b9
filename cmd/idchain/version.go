package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// fluxAuthModule is the upstream module idchain's library builds on.
const fluxAuthModule = "github.com/fluxcd/pkg/auth"

// versionInfo is what `idchain version` prints. Its JSON form is the
// -o json contract.
type versionInfo struct {
	// Version is the module version idchain was built from: a tag such as
	// v0.3.0 when installed with 'go install ...@v0.3.0', "(devel)" when
	// built from a checkout.
	Version string `json:"version"`
	// Revision and Modified are the commit a build from a checkout was
	// made at, and whether it had changes not committed, when Go recorded
	// them.
	Revision string `json:"revision,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	// FluxAuth is the version of github.com/fluxcd/pkg/auth it was built
	// with.
	FluxAuth string `json:"fluxcdPkgAuth"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// readVersion reads the version of the running binary from the build
// information Go embeds in it.
func readVersion() versionInfo {
	v := versionInfo{Version: "unknown", FluxAuth: "unknown", Go: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path != fluxAuthModule {
			continue
		}
		v.FluxAuth = d.Version
		if d.Replace != nil {
			v.FluxAuth = d.Replace.Version
			if v.FluxAuth == "" {
				v.FluxAuth = "replaced by " + d.Replace.Path
			}
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func (v versionInfo) write(w io.Writer) error {
	version := v.Version
	if v.Revision != "" {
		version += ", commit " + v.Revision
		if v.Modified {
			version += " with changes not committed"
		}
	}
	_, err := fmt.Fprintf(w, "idchain %s\n%s %s\n%s %s\n", version, fluxAuthModule, v.FluxAuth, v.Go, v.Platform)
	return err
}

func (a *app) newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show idchain's version, the fluxcd/pkg/auth version it was built with, and Go's",
		Long: `Version shows the version of idchain (a module version such as v0.3.0 when
installed with 'go install github.com/identitychain/auth/cmd/idchain@v0.3.0',
"(devel)" and the commit when built from a checkout), the version of
github.com/fluxcd/pkg/auth it was built with, whose annotations and refusals
it follows, and the Go version and platform. 'idchain --version' prints the
same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			v := readVersion()
			var err error
			if output == "json" {
				err = writeJSON(a.stdout, v)
			} else {
				err = v.write(a.stdout)
			}
			if err != nil {
				return fail(err)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}
