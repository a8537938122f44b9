package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/identitychain/auth/internal/quote"
)

// finding is one problem lint reports. Its JSON form is the -o json
// contract, so field names are stable.
type finding struct {
	File string `json:"file"`
	// Line and Column are where the problem is, 1-based; for a YAML
	// syntax error, whose parser names the line only, Column is where the
	// line's text starts.
	Line           int    `json:"line,omitempty"`
	Column         int    `json:"column,omitempty"`
	Namespace      string `json:"namespace,omitempty"`
	ServiceAccount string `json:"serviceAccount,omitempty"`
	Provider       string `json:"provider,omitempty"`
	Annotation     string `json:"annotation,omitempty"`
	// Field is the path of the field of the annotation's value at fault,
	// such as "duration" or "transitiveTagKeys[1]", when lint found it in
	// the value; Line and Column are then the field's.
	Field string `json:"field,omitempty"`
	// Rule names the kind of problem, for scripts: invalid-yaml,
	// binary-file (a NUL or a byte that is not UTF-8), helm-template (a Go
	// template where lint reads), invalid-manifest (what kubectl and the
	// API server refuse), unknown-annotation, invalid-annotation,
	// invalid-parameter (an optional request parameter of the annotation,
	// such as duration or delegates), invalid-identity, ambiguous-source,
	// lockdown-forbids-controller, missing-identity, policy-denied (with
	// --policy: no rule of the impersonation policy allows it), refused.
	Rule    string `json:"rule"`
	Problem string `json:"problem"`
	Fix     string `json:"fix"`
}

type lintReport struct {
	Findings []finding  `json:"findings"`
	Summary  lintCounts `json:"summary"`
	// Notes say what lint did not read, and why: the templates of a Helm
	// chart.
	Notes []lintNote `json:"notes,omitempty"`
	// Policy is what the impersonation policy of --policy decided.
	Policy *lintPolicy `json:"policy,omitempty"`
}

// lintPolicy is what the impersonation policy decided for each
// impersonation the library would otherwise follow.
type lintPolicy struct {
	File      string           `json:"file"`
	Allowed   int              `json:"allowed"`
	Denied    int              `json:"denied"`
	Decisions []policyDecision `json:"decisions"`
}

// policyDecision is the policy's decision for one impersonation: the
// ServiceAccount's, from the source the library picked.
type policyDecision struct {
	File           string `json:"file"`
	Line           int    `json:"line,omitempty"`
	Column         int    `json:"column,omitempty"`
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
	Provider       string `json:"provider"`
	// Source is controller or serviceAccount, as the policy names it.
	Source string `json:"source"`
	Target string `json:"target"`
	// Outcome is allowed or denied.
	Outcome string `json:"outcome"`
	// Rule is the first rule that allows it, such as rules[1]; a rule
	// may allow an impersonation the library still refuses, when what the
	// policy adds to the session does not fit (the finding says so).
	Rule string `json:"rule,omitempty"`
}

// lintNote is what lint skipped under a path.
type lintNote struct {
	Path  string `json:"path"`
	Files int    `json:"files"`
	Note  string `json:"note"`
}

type lintCounts struct {
	Files int `json:"files"`
	// Excluded counts the files and directories --exclude and
	// .idchainignore excluded.
	Excluded        int  `json:"excluded,omitempty"`
	ServiceAccounts int  `json:"serviceAccounts"`
	Checked         int  `json:"checked"`
	Findings        int  `json:"findings"`
	Lockdown        bool `json:"lockdown"`
}

func (a *app) newLintCmd() *cobra.Command {
	var lockdown bool
	var output, policyFile string
	var excludes []string
	cmd := &cobra.Command{
		Use:   "lint PATH... [--lockdown] [--policy FILE]",
		Short: "Find identity annotations the library would refuse, offline",
		Long: `Lint reads Kubernetes manifests: YAML files, directories (searched recursively
for *.yaml and *.yml, hidden directories such as .git skipped), or - for
stdin. Multi-document streams, Lists (what 'kubectl get serviceaccounts -o
yaml' prints) and 'kustomize build' output are all read, and every
ServiceAccount in them is decoded as kubectl and the API server decode it:
a field they refuse (unknown, set twice, or of the wrong type, such as an
unquoted number, yes or on where text is expected) is an invalid-manifest
finding. It checks every ServiceAccount that carries an impersonation or
identity annotation:

  aws.auth.fluxcd.io/assume-role     roleARN (required), useServiceAccount, and the
                                     AssumeRole parameters externalID, duration,
                                     sessionTags, transitiveTagKeys, policyARNs, policy
  gcp.auth.fluxcd.io/impersonate     gcpServiceAccount (required), useServiceAccount,
                                     and the generateAccessToken parameters delegates,
                                     lifetime, scopes
  azure.auth.fluxcd.io/impersonate   clientID (required), tenantID (required),
                                     useServiceAccount
  eks.amazonaws.com/role-arn         the ServiceAccount's own IAM role
  iam.gke.io/gcp-service-account     the ServiceAccount's own Google service account
  gcp.auth.fluxcd.io/workload-identity-provider
  azure.workload.identity/client-id and tenant-id
                                     the ServiceAccount's own managed identity,
                                     checked when it is the source of an
                                     Azure impersonation

It reports every problem the library would refuse at runtime: invalid YAML,
unknown or missing fields, a bad role ARN, service account email, Azure
client ID (a GUID) or tenant (a GUID or a verified domain), a request
parameter the cloud would refuse (a duration out of range, a reserved
session tag, a delegation chain that lists its own target...), an ambiguous
source ('useServiceAccount: false' next to an identity annotation), a
ServiceAccount source without its own identity, and a misspelt annotation
the library would silently ignore: an unknown *.auth.fluxcd.io one, or one
of the annotations above in another case (AWS.auth.fluxcd.io/assume-role),
with '_' for '-' (eks.amazonaws.com/role_arn) or a character or two off,
with "did you mean". The checks are the library's own parsers and its own
planning function, so lint and the controllers never disagree.

Every finding has a location, file:line:column, and a fix. It points at
the field at fault when the annotation's value is a literal block
('key: |'), and at the annotation otherwise. A file that is not text (a
NUL byte, or a byte that is not UTF-8) is a binary-file finding at the
byte's offset, line and column.

What lint does not read: what --exclude GLOB (repeatable) or the
.idchainignore file at the root of a directory given matches (gitignore's
syntax: one glob a line, '#' comments, '**', a trailing '/' for
directories, '!' to include again; --exclude also matches the path as
given), and the templates directory of a Helm chart (next to its
Chart.yaml), which holds Go templates, not YAML: a note says how many
templates it skipped, and to lint the output of 'helm template' instead.
A file or ServiceAccount elsewhere that is a template ('{{ }}' where lint
reads) is a helm-template finding.

With --lockdown it also applies multi-tenancy lockdown (the controllers'
--default-service-account flag): the controller's identity may not be the
source ('useServiceAccount: false' is refused), and the ServiceAccount
becomes the source, so on AWS it needs eks.amazonaws.com/role-arn, and on
Azure azure.workload.identity/client-id and tenant-id.

With --policy it also applies the platform team's impersonation policy
(see 'idchain policy --help'), as a controller passing it to the library
does: every impersonation no rule allows, from the source the library picks
(the controller's identity, or the ServiceAccount's: with --lockdown, or
'useServiceAccount: true'), is a policy-denied finding whose fix is the rule
the operator would have to add. A ServiceAccount the library refuses for
another reason gets that finding only: its source is not settled. What the
policy allows is not a finding; -o json lists every decision under
policy.decisions, with the rule that allowed it. A policy file that is not
valid is an error (exit status 2), with the library's message.

The region and the scopes are set on each Flux object, not on the
ServiceAccount, so lint does not check them (it plans Azure impersonation
for ARM's scope, as any scope is accepted). A ServiceAccount without a namespace is checked as if in
"default".

Rules of the findings (the rule field of -o json): invalid-yaml,
binary-file, helm-template, invalid-manifest, unknown-annotation,
invalid-annotation, invalid-parameter, invalid-identity, ambiguous-source,
lockdown-forbids-controller, missing-identity, policy-denied, refused.

Exit status: 0 when clean, 1 when there are findings, 2 when a path cannot
be read or the command line is wrong.`,
		Example: `  # Lint a GitOps repository in CI
  idchain lint ./clusters ./tenants --lockdown

  # Leave out encrypted secrets and a vendored directory
  idchain lint . --exclude '*.enc.yaml' --exclude 'vendor/'

  # What the cluster has
  kubectl get serviceaccounts -A -o yaml | idchain lint -

  # A Helm chart, as it renders
  helm template my-release ./charts/app | idchain lint -

  # Lint rendered manifests
  kustomize build ./tenants/team-a | idchain lint -

  # Also refuse what the platform team's impersonation policy does not allow
  idchain lint ./tenants --policy ./platform/impersonation-policy.yaml

  # Machine-readable findings
  idchain lint -o json ./clusters | jq '.findings[] | .rule'

  # Which rule of the policy allows each impersonation
  idchain lint -o json --policy policy.yaml ./tenants | jq '.policy.decisions[]'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			policy, err := loadPolicy(policyFile)
			if err != nil {
				return err
			}
			// Each ServiceAccount is checked as it is read, and dropped.
			l := newLinter(lockdown, policy)
			m, err := readEach(args, a.stdin, excludes, l.add)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			report := l.report(m)
			if output == "json" {
				err = writeJSON(a.stdout, report)
			} else {
				err = a.printLint(a.stdout, report)
			}
			if err != nil {
				return fail(err)
			}
			if len(report.Findings) > 0 {
				return &exitError{code: exitFindings}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&lockdown, "lockdown", false,
		"apply multi-tenancy lockdown, as controllers started with --default-service-account do")
	cmd.Flags().StringVar(&policyFile, "policy", "",
		"apply this impersonation policy, as controllers given it do (see 'idchain policy --help')")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().StringArrayVar(&excludes, "exclude", nil,
		"do not read the files and directories this gitignore-like glob matches (repeatable), such as 'charts/**' or '*.enc.yaml'")
	return cmd
}

func (a *app) printLint(w io.Writer, r lintReport) error {
	s := a.style()
	c := r.Summary
	files := plural(c.Files, "file")
	if c.Excluded > 0 {
		files += fmt.Sprintf(" (%d excluded)", c.Excluded)
	}
	checked := fmt.Sprintf("Checked %s, %s, %d with identity annotations", files,
		plural(c.ServiceAccounts, "ServiceAccount"), c.Checked)
	if c.Lockdown {
		checked += ", under lockdown"
	}
	if p := r.Policy; p != nil {
		checked += fmt.Sprintf(", against policy %s (%s allowed, %d denied)", p.File,
			plural(p.Allowed, "impersonation"), p.Denied)
	}
	if len(r.Findings) == 0 {
		if _, err := fmt.Fprintf(w, "%s %s.\n", s.green("No problems."), checked); err != nil {
			return err
		}
		return a.printNotes(w, r)
	}
	t := table{header: []string{"LOCATION", "SERVICEACCOUNT", "ANNOTATION", "PROBLEM"}}
	for _, f := range r.Findings {
		loc := location(f.File, f.Line, f.Column)
		sa := "-"
		if f.ServiceAccount != "" {
			sa = f.Namespace + "/" + f.ServiceAccount
			if f.Namespace == "" {
				sa = f.ServiceAccount
			}
		}
		ann := f.Annotation
		if ann == "" {
			ann = "-"
		}
		t.add(s.red, loc, sa, ann, f.Problem)
		t.add(s.dim, "", "", "", "fix: "+f.Fix)
	}
	if err := t.write(w, s); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "\n%s %s.\n", s.red(plural(c.Findings, "problem")+"."), checked); err != nil {
		return err
	}
	return a.printNotes(w, r)
}

func (a *app) printNotes(w io.Writer, r lintReport) error {
	for _, n := range r.Notes {
		if _, err := fmt.Fprintf(w, "%s %s\n", a.style().yellow("Note:"), quote.Clean(n.Note, quote.MaxErrorBytes)); err != nil {
			return err
		}
	}
	return nil
}

// location is file:line:column, as editors and CI annotations read it,
// with what is known of it.
func location(file string, line, col int) string {
	switch {
	case line > 0 && col > 0:
		return fmt.Sprintf("%s:%d:%d", file, line, col)
	case line > 0:
		return fmt.Sprintf("%s:%d", file, line)
	}
	return file
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// sentence joins words as "a, b and c".
func sentence(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
