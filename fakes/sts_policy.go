package fakes

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
)

// Session policies: the inline Policy and the managed PolicyArns that
// AssumeRole and AssumeRoleWithWebIdentity may pass. They never grant
// anything; a session that has them may only do what they allow (and what
// its role may do, as Allow, AllowPublic and AddCluster model). The fake
// parses the IAM policy grammar a session policy needs: Version, Id and
// Statement, a statement or a list of them, each with Sid, Effect
// (Allow or Deny), Action or NotAction and Resource or NotResource, each a
// string or a list of strings with * and ? wildcards. Actions match
// case-insensitively, resources case-sensitively.
//
// Not modelled: Condition. The fake cannot evaluate it, and ignoring it
// would grant or deny what AWS would not, so a policy with a Condition is
// refused (MalformedPolicyDocument from STS, a panic from
// DefineManagedPolicy) with a message saying so.

// Refusals of policy documents. Real STS and IAM use these codes; the
// messages are theirs except awsErrPolicyCondition, the fake's own
// limitation.
var (
	awsErrPolicyJSON      = &awsError{http.StatusBadRequest, "MalformedPolicyDocument", "The policy is not in the valid JSON format."}
	awsErrPolicySyntax    = &awsError{http.StatusBadRequest, "MalformedPolicyDocument", "Syntax errors in policy."}
	awsErrPolicyPrincipal = &awsError{http.StatusBadRequest, "MalformedPolicyDocument", "Policy document should not specify a principal."}
	awsErrPolicyVendor    = &awsError{http.StatusBadRequest, "MalformedPolicyDocument", "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."}
	awsErrPolicyCondition = &awsError{http.StatusBadRequest, "MalformedPolicyDocument", "The fake STS does not evaluate Condition; leave it out of session policies."}
)

// awsManagedPolicyARNPattern is the ARN of an IAM managed policy, AWS's own
// ("aws" in place of the account) or a customer's.
var awsManagedPolicyARNPattern = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):iam::(aws|\d{12}):policy/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,128}$`)

// awsPolicy is a parsed session policy.
type awsPolicy struct {
	statements []awsStatement
}

// awsStatement is one statement of a session policy.
type awsStatement struct {
	deny bool
	// actions are the patterns of Action, or of NotAction when notAction.
	actions   []string
	notAction bool
	// resources are the patterns of Resource, or of NotResource when
	// notResource.
	resources   []string
	notResource bool
}

// awsParsePolicy parses a session policy document, refusing it as STS does
// when it is not a JSON object with a Statement or breaks the grammar.
func awsParsePolicy(doc string) (*awsPolicy, *awsError) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &top); err != nil || top == nil {
		return nil, awsErrPolicyJSON
	}
	raw, ok := top["Statement"]
	if !ok {
		return nil, awsErrPolicyJSON
	}
	for k, v := range top {
		switch k {
		case "Statement":
		case "Version":
			var version string
			if json.Unmarshal(v, &version) != nil || (version != "2012-10-17" && version != "2008-10-17") {
				return nil, awsErrPolicySyntax
			}
		case "Id":
			var id string
			if json.Unmarshal(v, &id) != nil {
				return nil, awsErrPolicySyntax
			}
		default:
			return nil, awsErrPolicySyntax
		}
	}

	var raws []json.RawMessage
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		if json.Unmarshal(raw, &raws) != nil {
			return nil, awsErrPolicySyntax
		}
	} else {
		raws = []json.RawMessage{raw}
	}
	p := &awsPolicy{}
	for _, r := range raws {
		st, serr := awsParseStatement(r)
		if serr != nil {
			return nil, serr
		}
		p.statements = append(p.statements, st)
	}
	return p, nil
}

func awsParseStatement(raw json.RawMessage) (awsStatement, *awsError) {
	var st awsStatement
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || fields == nil {
		return st, awsErrPolicySyntax
	}
	var haveAction, haveResource bool
	for k, v := range fields {
		var err *awsError
		switch k {
		case "Sid":
			var sid string
			if json.Unmarshal(v, &sid) != nil {
				err = awsErrPolicySyntax
			}
		case "Effect":
			var effect string
			_ = json.Unmarshal(v, &effect)
			switch effect {
			case "Allow":
			case "Deny":
				st.deny = true
			default:
				err = awsErrPolicySyntax
			}
		case "Action", "NotAction":
			if haveAction {
				return st, awsErrPolicySyntax
			}
			haveAction, st.notAction = true, k == "NotAction"
			st.actions, err = awsParsePolicyStrings(v)
			for _, a := range st.actions {
				if vendor, _, ok := strings.Cut(a, ":"); err == nil && a != "*" && (!ok || vendor == "") {
					err = awsErrPolicyVendor
				}
			}
		case "Resource", "NotResource":
			if haveResource {
				return st, awsErrPolicySyntax
			}
			haveResource, st.notResource = true, k == "NotResource"
			st.resources, err = awsParsePolicyStrings(v)
		case "Principal", "NotPrincipal":
			err = awsErrPolicyPrincipal
		case "Condition":
			err = awsErrPolicyCondition
		default:
			err = awsErrPolicySyntax
		}
		if err != nil {
			return st, err
		}
	}
	if _, ok := fields["Effect"]; !ok || !haveAction || !haveResource {
		return st, awsErrPolicySyntax
	}
	return st, nil
}

// awsParsePolicyStrings parses an element that is a string or a non-empty
// list of strings.
func awsParsePolicyStrings(raw json.RawMessage) ([]string, *awsError) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
		return nil, awsErrPolicySyntax
	}
	return list, nil
}

// awsDecision is the verdict of session policies on a request.
type awsDecision int

const (
	// awsNoAllow: no statement allows the request (an implicit deny).
	awsNoAllow awsDecision = iota
	awsAllowed
	awsExplicitDeny
)

// awsEvaluate decides whether the session policies allow action on
// resource: some statement must allow it and none deny it. The inline and
// managed session policies of a session count as one set of statements.
func awsEvaluate(policies []*awsPolicy, action, resource string) awsDecision {
	verdict := awsNoAllow
	for _, p := range policies {
		for _, st := range p.statements {
			if !st.matches(action, resource) {
				continue
			}
			if st.deny {
				return awsExplicitDeny
			}
			verdict = awsAllowed
		}
	}
	return verdict
}

func (st awsStatement) matches(action, resource string) bool {
	actionMatch := false
	for _, pattern := range st.actions {
		if awsWildcardMatch(strings.ToLower(pattern), strings.ToLower(action)) {
			actionMatch = true
			break
		}
	}
	resourceMatch := false
	for _, pattern := range st.resources {
		if awsWildcardMatch(pattern, resource) {
			resourceMatch = true
			break
		}
	}
	return actionMatch != st.notAction && resourceMatch != st.notResource
}

// awsWildcardMatch reports whether s matches pattern, where * matches any
// run of characters and ? any one character, as in IAM policies.
func awsWildcardMatch(pattern, s string) bool {
	p, str := []rune(pattern), []rune(s)
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(str) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == str[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// sessionPolicyRefusal returns how an AccessDenied message for action on
// resource ends when the session policies of i refuse it, in AWS's words,
// or "" when i has no session policies or they allow it.
func (i *awsIssued) sessionPolicyRefusal(action, resource string) string {
	if len(i.policies) == 0 {
		return ""
	}
	switch awsEvaluate(i.policies, action, resource) {
	case awsAllowed:
		return ""
	case awsExplicitDeny:
		return " with an explicit deny in a session policy"
	default:
		return " because no session policy allows the " + action + " action"
	}
}

// DefineManagedPolicy registers an IAM managed policy that AssumeRole's
// PolicyArns may name; the document becomes a session policy of the
// sessions that name it. Defining an ARN again replaces its document, for
// the sessions issued from then on. DefineManagedPolicy panics for an ARN
// that is not a managed policy's
// (arn:aws:iam::<account or "aws">:policy/<name>) or a document STS would
// refuse as a session policy.
func (s *AWSSTS) DefineManagedPolicy(policyARN, document string) {
	if !awsManagedPolicyARNPattern.MatchString(policyARN) {
		panic("fakes: AWSSTS.DefineManagedPolicy: invalid policy ARN '" + policyARN + "'")
	}
	p, serr := awsParsePolicy(document)
	if serr != nil {
		panic("fakes: AWSSTS.DefineManagedPolicy: policy " + policyARN + ": " + serr.code + ": " + serr.message)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.managedPolicies[policyARN] = p
}

// sessionPolicies returns the session policies a request asks for: its
// inline policy, if any, then the managed policies it names.
func (s *AWSSTS) sessionPolicies(p awsSessionParams) ([]*awsPolicy, *awsError) {
	var policies []*awsPolicy
	if p.policy != nil {
		inline, serr := awsParsePolicy(*p.policy)
		if serr != nil {
			return nil, serr
		}
		policies = append(policies, inline)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, arn := range p.policyARNs {
		managed, ok := s.managedPolicies[arn]
		if !ok {
			// Modelled: STS refuses an ARN naming no managed policy with
			// IAM's wording for unattachable policies.
			return nil, &awsError{http.StatusBadRequest, "MalformedPolicyDocument",
				"Policy " + arn + " does not exist or is not attachable."}
		}
		policies = append(policies, managed)
	}
	return policies, nil
}
