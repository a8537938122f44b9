package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/internal/quote"
)

// policyCheckReport is what policy check found. Its JSON form is the -o
// json contract.
type policyCheckReport struct {
	// Query is the impersonation asked about, when one was.
	Query *policyQuery        `json:"query,omitempty"`
	Files []policyCheckResult `json:"files"`
}

type policyQuery struct {
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
	// Source is controller or serviceAccount, as a policy names it.
	Source string `json:"source"`
	Target string `json:"target"`

	kind auth.SourceKind
}

type policyCheckResult struct {
	File  string `json:"file"`
	Valid bool   `json:"valid"`
	// Error is the library's, when the file is not a valid policy.
	Error string     `json:"error,omitempty"`
	Rules int        `json:"rules,omitempty"`
	AWS   *policyAWS `json:"aws,omitempty"`
	// Answer is the policy's answer to the query, for a valid file.
	Answer *policyAnswer `json:"answer,omitempty"`
}

// policyAWS is what the policy makes AWS sessions carry to name the tenant.
type policyAWS struct {
	TenantSessionTags bool `json:"tenantSessionTags"`
	SourceIdentity    bool `json:"sourceIdentity"`
}

type policyAnswer struct {
	// Outcome is allowed or denied.
	Outcome string `json:"outcome"`
	// Rule is the first rule that allows it, such as rules[1].
	Rule string `json:"rule,omitempty"`
	// Fix is the rule to add, when denied.
	Fix string `json:"fix,omitempty"`
}

func (a *app) newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Validate impersonation policies and ask them who may become whom",
		Long: `An impersonation policy is the platform team's list of who may become whom:
which namespaces may impersonate which targets, from which source. A
controller loads it at start (auth.ParseImpersonationPolicy) and passes it on
every call (auth.WithImpersonationPolicy); the library then refuses, before
any cloud call, every impersonation no rule allows.

  apiVersion: auth.identitychain.dev/v1
  kind: ImpersonationPolicy
  rules:
    - namespaces: ["team-a", "team-b-*"]     # globs on the object's namespace
      sources: [controller, serviceAccount]  # optional; both when omitted
      targets:                               # globs; {namespace} and {serviceAccount} expand
        - "arn:aws:iam::222222222222:role/{namespace}-*"
        - "{namespace}-*@target-project.iam.gserviceaccount.com"
        - "33333333-3333-4333-8333-333333333333"  # an Azure app's client ID
  aws:                                       # optional
    tenantSessionTags: true                  # flux-tenant-namespace, flux-tenant-service-account
    sourceIdentity: true                     # SourceIdentity naming the ServiceAccount

Only '*' is special in a pattern, and it never matches '/', ':' or '@'.

'idchain lint --policy' and 'idchain explain --policy' apply a policy to
ServiceAccounts offline.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(a.newPolicyCheckCmd())
	return cmd
}

func (a *app) newPolicyCheckCmd() *cobra.Command {
	var output, source string
	var q policyQuery
	cmd := &cobra.Command{
		Use:   "check FILE... [--namespace NS --service-account SA --source controller|serviceAccount --target T]",
		Short: "Validate impersonation policy files, and ask whether they allow an impersonation",
		Long: `Check reads each impersonation policy file (- for stdin) with the library's
own parser, exactly as a controller reads it at start, and prints, for each:

  FILE: ok (N rules; AWS tenant session tags on|off, source identity on|off)

or the library's error, which says where the file is wrong and how, such as

  FILE: invalid impersonation policy: rules[0].targets[1] '...' has '?': only '*' is special in a pattern

With --namespace, --service-account, --source and --target (all four), it
also asks each valid policy whether a ServiceAccount of that namespace may
impersonate the target from that source: the controller's own identity
(controller) or the ServiceAccount's (serviceAccount; with multi-tenancy
lockdown it is always the ServiceAccount). The answer names the first rule
that allows it, or the rule the operator would have to add. Source and
target are what 'idchain explain' shows for a ServiceAccount.

Exit status: 0 when every file is valid (and allows the impersonation asked
about), 1 when one is not (or does not), 2 when a file cannot be read or the
command line is wrong.`,
		Example: `  # Validate the policy before the controllers load it (CI)
  idchain policy check ./platform/impersonation-policy.yaml

  # May a ServiceAccount of team-a assume this role from the controller?
  idchain policy check policy.yaml -n team-a --service-account app --source controller \
    --target arn:aws:iam::222222222222:role/team-a-deploy`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			query, err := q.validate(cmd, source)
			if err != nil {
				return err
			}
			data := make([][]byte, len(args))
			for i, path := range args {
				if data[i], err = readPolicyFile(path, a.stdin); err != nil {
					return &exitError{code: exitUsage, err: err}
				}
			}
			report := policyCheckReport{Query: query, Files: []policyCheckResult{}}
			failed := false
			for i, path := range args {
				r := checkPolicyFile(policyFileName(path), data[i], query)
				failed = failed || !r.Valid || (r.Answer != nil && r.Answer.Outcome != policyAllowed)
				report.Files = append(report.Files, r)
			}
			if output == "json" {
				err = writeJSON(a.stdout, report)
			} else {
				err = a.printPolicyCheck(a.stdout, report)
			}
			switch {
			case err != nil:
				return fail(err)
			case failed:
				return &exitError{code: exitFindings}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&q.Namespace, "namespace", "n", "", "ask about a ServiceAccount of this namespace")
	fs.StringVar(&q.ServiceAccount, "service-account", "", "ask about the ServiceAccount of this name")
	fs.StringVar(&source, "source", "", "the source of the impersonation: controller or serviceAccount")
	fs.StringVar(&q.Target, "target", "", "the identity to impersonate: a role ARN or a service account email")
	fs.StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// validate returns the query the flags ask, or nil when they ask none.
func (q policyQuery) validate(cmd *cobra.Command, source string) (*policyQuery, error) {
	flags := []string{"namespace", "service-account", "source", "target"}
	set := 0
	for _, name := range flags {
		if cmd.Flags().Changed(name) {
			set++
		}
	}
	switch {
	case set == 0:
		return nil, nil
	case set < len(flags) || q.Namespace == "" || q.ServiceAccount == "" || q.Target == "":
		return nil, usageError("--namespace, --service-account, --source and --target ask about one " +
			"impersonation together: set all four, none empty")
	}
	switch source {
	case "controller":
		q.kind = auth.SourceController
	case "serviceAccount", string(auth.SourceServiceAccount):
		q.kind, source = auth.SourceServiceAccount, "serviceAccount"
	default:
		return nil, usageError("invalid source '%s': must be controller or serviceAccount", source)
	}
	q.Source = source
	return &q, nil
}

// checkPolicyFile parses one policy with the library and, when it is
// valid, asks it the query.
func checkPolicyFile(file string, data []byte, q *policyQuery) policyCheckResult {
	r := policyCheckResult{File: file}
	p, err := parsePolicy(file, data)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	a := p.policy.Attribution()
	r.Valid, r.Rules = true, p.rules
	r.AWS = &policyAWS{TenantSessionTags: a.TenantSessionTags, SourceIdentity: a.SourceIdentity}
	if q == nil {
		return r
	}
	if rule, ok := p.policy.Allows(q.Namespace, q.ServiceAccount, q.kind, q.Target); ok {
		r.Answer = &policyAnswer{Outcome: policyAllowed, Rule: ruleName(rule)}
	} else {
		r.Answer = &policyAnswer{Outcome: policyDenied, Fix: policyFix(q.Namespace, q.kind, q.Target)}
	}
	return r
}

func (a *app) printPolicyCheck(w io.Writer, report policyCheckReport) error {
	s := a.style()
	for _, r := range report.Files {
		// The file name is the caller's, the error may quote the file's
		// text: neither reaches the terminal unescaped.
		name := quote.Clean(r.File, quote.MaxBytes)
		if !r.Valid {
			fmt.Fprintf(w, "%s: %s\n", name, s.red(quote.Clean(r.Error, quote.MaxErrorBytes)))
			continue
		}
		fmt.Fprintf(w, "%s: %s (%s; %s)\n", name, s.green("ok"), plural(r.Rules, "rule"),
			attributionText(auth.Attribution{TenantSessionTags: r.AWS.TenantSessionTags, SourceIdentity: r.AWS.SourceIdentity}))
		if r.Answer == nil {
			continue
		}
		q := report.Query
		what := fmt.Sprintf("service account %s impersonating %s from source %s",
			quotedSA(q.Namespace, q.ServiceAccount), quote.Tenant(q.Target), q.Source)
		if r.Answer.Outcome == policyAllowed {
			fmt.Fprintf(w, "%s: %s: %s\n", name, s.green("allowed by "+r.Answer.Rule), what)
			continue
		}
		fmt.Fprintf(w, "%s: %s: no rule allows %s\n", name, s.red("denied"), what)
		fmt.Fprintf(w, "  %s\n", s.dim("fix: "+quote.Clean(r.Answer.Fix, quote.MaxErrorBytes)))
	}
	return nil
}
