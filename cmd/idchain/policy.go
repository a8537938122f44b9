package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/internal/annotation"
	"github.com/identitychain/auth/internal/quote"
)

// loadedPolicy is an operator's impersonation policy and the file it was
// read from, which every report names.
type loadedPolicy struct {
	file   string
	policy *auth.ImpersonationPolicy
	// rules is how many rules the file has.
	rules int
}

// The outcomes of a policy for one chain, in lint's and explain's JSON.
const (
	// policyAllowed: a rule allows the chain's impersonation.
	policyAllowed = "allowed"
	// policyDenied: no rule does, and the library refuses the chain.
	policyDenied = "denied"
	// policyNotApplied: the chain impersonates nothing, which the policy
	// does not rule on.
	policyNotApplied = "not-applied"
	// policyNotReached: the library refused the chain for another reason
	// before the policy could rule on it.
	policyNotReached = "not-reached"
)

// readPolicyFile reads a policy file, or stdin for "-", up to the largest
// file the library reads.
func readPolicyFile(path string, stdin io.Reader) ([]byte, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("failed to read '%s': %w", path, errors.Unwrap(err))
		}
		defer f.Close()
		r = f
	}
	// One byte past the limit is enough to tell the file is too large,
	// whatever is behind the path (a device never ends).
	data, err := io.ReadAll(io.LimitReader(r, annotation.MaxFileBytes+1))
	if err != nil {
		if pe := (*os.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("failed to read '%s': %w", policyFileName(path), err)
	}
	return data, nil
}

// parsePolicy parses a policy file with the library. Its errors are the
// library's, wrapping auth.ErrInvalidPolicy.
func parsePolicy(file string, data []byte) (*loadedPolicy, error) {
	if len(data) > annotation.MaxFileBytes {
		return nil, fmt.Errorf("%w: the file is more than %d bytes, the limit", auth.ErrInvalidPolicy,
			annotation.MaxFileBytes)
	}
	p, err := auth.ParseImpersonationPolicy(data)
	if err != nil {
		return nil, err
	}
	// The library has accepted the file, which is in a subset of YAML with
	// one meaning only: any YAML reader counts the same rules.
	var f struct {
		Rules []yaml.Node `yaml:"rules"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("failed to count the rules: %w", err)
	}
	return &loadedPolicy{file: file, policy: p, rules: len(f.Rules)}, nil
}

// loadPolicy reads and parses the policy of a --policy flag, or returns
// nil for an empty path. Any problem is a usage error: the command cannot
// run as asked.
func loadPolicy(path string) (*loadedPolicy, error) {
	if path == "" {
		return nil, nil
	}
	if path == "-" {
		return nil, usageError("--policy cannot be - (stdin): pass the policy file's path")
	}
	data, err := readPolicyFile(path, nil)
	if err != nil {
		return nil, usageError("%w", err)
	}
	p, err := parsePolicy(path, data)
	if err != nil {
		return nil, usageError("policy '%s': %w", path, err)
	}
	return p, nil
}

func policyFileName(path string) string {
	if path == "-" {
		return "<stdin>"
	}
	return path
}

// policySourceNames are the source kinds as a policy file names them.
var policySourceNames = map[auth.SourceKind]string{
	auth.SourceController:     "controller",
	auth.SourceServiceAccount: "serviceAccount",
}

func policySourceName(kind auth.SourceKind) string {
	if name, ok := policySourceNames[kind]; ok {
		return name
	}
	return string(kind)
}

// ruleName names rule i as the library's messages do: rules[1].
func ruleName(i int) string { return fmt.Sprintf("rules[%d]", i) }

// policyRuleFor is the narrowest rule that lets namespace impersonate
// target from a source of kind: a line of YAML to add under the policy's
// rules, which the policy reads back as that rule (the tests check it). ok
// is false when no rule can name the namespace or target alone: a glob
// character or a placeholder's brace in them would make the rule match
// more, or not parse.
func policyRuleFor(namespace string, kind auth.SourceKind, target string) (rule string, ok bool) {
	ns, nsOK := yamlString(namespace)
	t, tOK := yamlString(target)
	if !nsOK || !tOK || namespace == "" || target == "" || strings.ContainsAny(namespace+target, "*?[]{}") {
		return "", false
	}
	return fmt.Sprintf("{namespaces: [%s], sources: [%s], targets: [%s]}", ns, policySourceName(kind), t), true
}

// yamlString writes s as a YAML double-quoted scalar, with every rune
// that is not printable escaped, so that the text pastes into a policy
// file as is (the policy's reader refuses raw control and format
// characters) and shows in a terminal as written. ok is false when s is
// not valid UTF-8, which YAML cannot carry.
func yamlString(s string) (string, bool) {
	if !utf8.ValidString(s) {
		return "", false
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case strconv.IsPrint(r):
			b.WriteRune(r)
		case r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	b.WriteByte('"')
	return b.String(), true
}

// policyFix says what to do about an impersonation the policy denies:
// the rule the operator would have to add.
func policyFix(namespace string, kind auth.SourceKind, target string) string {
	if rule, ok := policyRuleFor(namespace, kind, target); ok {
		return "add to the policy's rules: " + rule
	}
	return genericPolicyFix
}

// genericPolicyFix is the fix of a denial when the namespace or target
// cannot be written as a rule of its own.
const genericPolicyFix = "add a rule to the impersonation policy that allows it (the refusal names the " +
	"namespace, source and target), or impersonate a target a rule allows"

// attributionText says what AWS sessions carry under p.
func attributionText(a auth.Attribution) string {
	return fmt.Sprintf("AWS tenant session tags %s, source identity %s", onOff(a.TenantSessionTags), onOff(a.SourceIdentity))
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// quotedSA names a ServiceAccount as the library's messages do.
func quotedSA(namespace, name string) string { return quote.Tenant(namespace + "/" + name) }
