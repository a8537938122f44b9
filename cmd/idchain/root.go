package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/internal/quote"
)

// Exit codes, the same for every subcommand, so scripts can tell a finding
// or a refusal (1) from a mistake in how idchain was called (2).
const (
	exitOK       = 0
	exitFindings = 1
	exitUsage    = 2
)

// app is what the commands need from the outside world. main fills it from
// the process; tests fill it with buffers and fakes.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// color turns on ANSI colour in human output.
	color bool

	// provider, when set, replaces the real provider of a name, so that
	// `token` can be tested against the fakes. Optional.
	provider func(name string) (auth.Provider, error)
	// kubeClient, when set, replaces the client built from the kubeconfig.
	// Optional.
	kubeClient client.Client
	// objectLevelDefault is the default of --object-level-workload-identity.
	// main leaves it false, the gate's real default in the controllers;
	// tests turn it on so that parallel runs agree on the process-wide gate.
	objectLevelDefault bool
}

// exitError ends a command with a status. A nil err means the command
// already told the user everything (e.g. lint printed its findings).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// fail ends a command with status 1 and err printed to stderr.
func fail(err error) error { return &exitError{code: exitFindings, err: err} }

// usageError ends a command with status 2.
func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// run executes the command line args and returns the exit status.
func (a *app) run(args []string) int {
	root := a.newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// Cobra's own errors: unknown command or flag, wrong arguments.
		ee = &exitError{code: exitUsage, err: err}
	}
	if ee.err != nil {
		fmt.Fprintf(a.stderr, "%s %s\n", a.style().red("Error:"), quote.Error(ee.err))
		if ee.code == exitUsage {
			fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", commandPath(root, args))
		}
	}
	return ee.code
}

// commandPath names the subcommand args asked for, for the usage hint.
func commandPath(root *cobra.Command, args []string) string {
	if c, _, err := root.Find(args); err == nil && c != nil {
		return c.CommandPath()
	}
	return root.Name()
}

func (a *app) newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "idchain",
		Short: "Explain, lint, run and demo cloud identity impersonation for Flux",
		Long: `idchain is the command-line companion of github.com/identitychain/auth, which
lets a Flux object reach a cloud identity by impersonation: AWS STS AssumeRole,
GCP IAM Credentials generateAccessToken, and Microsoft Entra ID client
credentials of an app registration (usually in another tenant) that trusts a
managed identity, configured on the Kubernetes ServiceAccount the object names.

  apiVersion: v1
  kind: ServiceAccount
  metadata:
    name: my-app
    namespace: my-app
    annotations:
      aws.auth.fluxcd.io/assume-role: |
        roleARN: arn:aws:iam::222222222222:role/target
      gcp.auth.fluxcd.io/impersonate: |
        gcpServiceAccount: target@target-project.iam.gserviceaccount.com
      azure.auth.fluxcd.io/impersonate: |
        clientID: 33333333-3333-4333-8333-333333333333
        tenantID: contoso.onmicrosoft.com

An operator's impersonation policy (auth.ParseImpersonationPolicy) says which
namespaces may impersonate which targets; 'idchain policy check' validates it,
and lint and explain apply it with --policy.

Every rule idchain applies is the library's own: it calls the same parsers
and the same planning function a controller calls.`,
		Example: `  # See every case of the proposal run against in-process fake clouds
  idchain demo

  # Find misconfigured annotations before they reach the cluster (CI)
  idchain lint ./clusters --lockdown

  # Show the chain a ServiceAccount asks for, without calling any cloud
  idchain explain --provider aws --region us-east-1 -f serviceaccount.yaml

  # Validate the platform team's impersonation policy, then lint tenants against it
  idchain policy check policy.yaml
  idchain lint ./tenants --policy policy.yaml

  # Inside a controller pod: run the chain and show who it became
  idchain token --provider aws -n my-app --service-account my-app --region us-east-1

  # Versions, and shell completion (bash, zsh, fish or powershell)
  idchain version
  source <(idchain completion bash)`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	// 'idchain completion bash|zsh|fish|powershell' prints the completion
	// script of cobra (see 'idchain completion --help').
	root.CompletionOptions.HiddenDefaultCmd = false
	var version strings.Builder
	_ = readVersion().write(&version)
	root.Version = readVersion().Version
	root.SetVersionTemplate(version.String())
	root.AddCommand(a.newDemoCmd(), a.newLintCmd(), a.newExplainCmd(), a.newTokenCmd(), a.newPolicyCmd(),
		a.newVersionCmd())
	for _, c := range root.Commands() {
		completeFlagValues(c)
	}
	return root
}

// completeFlagValues offers the values of the flags that take one of a
// few, for the shell completion of c and its subcommands.
func completeFlagValues(c *cobra.Command) {
	values := map[string][]string{
		"provider": {"aws", "gcp", "azure"},
		"output":   {"table", "json"},
		"source":   {"controller", "serviceAccount"},
	}
	for name, vs := range values {
		if c.Flags().Lookup(name) != nil {
			_ = c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(vs, cobra.ShellCompDirectiveNoFileComp))
		}
	}
	for _, sub := range c.Commands() {
		completeFlagValues(sub)
	}
}
