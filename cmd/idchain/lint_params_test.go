package main

import (
	"errors"
	"testing"

	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/azure"
)

// TestLintParameterFindings pins, for every bad request parameter of the
// corpus, the line of the field, its path, and the problem and fix, which
// are the library's reason cut at its first ': '.
func TestLintParameterFindings(t *testing.T) {
	t.Parallel()
	type want struct {
		line         int
		field        string
		problem, fix string
	}
	for _, tt := range []struct {
		file string
		want map[string]want // by ServiceAccount
	}{
		{file: "testdata/lint/bad/aws-parameters.yaml", want: map[string]want{
			"duration-too-long": {13, "duration", "duration '2h' is above 1h",
				"the source of this role is itself a role session (EKS Pod Identity, IRSA or the service account's " +
					"web identity), and STS caps a chained role session at 1h. set duration between 15m and 1h"},
			// The library's reason says no more than what is wrong: the fix
			// says what the field takes.
			"duration-without-unit": {25, "duration",
				"duration must be a duration with a unit, such as '15m', '1h' or '3600s', not the bare number '3600'",
				"duration is the session's lifetime, from 15m to 1h, such as 'duration: 30m'"},
			"reserved-tag": {39, "sessionTags['flux-tenant-namespace']",
				"sessionTags key 'flux-tenant-namespace' is reserved",
				"the library sets it to name the tenant that made the session. rename the tag"},
			"tag-value-a-number": {53, "sessionTags['cost-center']", "sessionTags['cost-center'] must be a string",
				"quote the value"},
			"transitive-key-not-a-tag": {69, "transitiveTagKeys[1]",
				"transitiveTagKeys names 'environment', which is not a key of sessionTags",
				"add the tag to sessionTags, or remove the key"},
			"eleven-policy-arns": {81, "policyARNs", "policyARNs has 11 ARNs",
				"STS takes at most 10 managed session policies"},
			"policy-not-json": {104, "policy",
				"policy is not valid JSON (invalid character 'V' looking for beginning of value)",
				`write the session policy as a JSON object, such as {"Version": "2012-10-17", "Statement": [...]}`},
			"external-id-with-a-space": {118, "externalID", "externalID 'my app' has a character STS refuses (' ')",
				"use letters, digits and _+=,.@:/-"},
		}},
		{file: "testdata/lint/bad/gcp-parameters.yaml", want: map[string]want{
			"lifetime-too-long": {12, "lifetime", "lifetime '13h' is above 12h, the longest generateAccessToken grants",
				"set lifetime between 1s and 12h (above 1h only where the organization policy " +
					"constraints/iam.allowServiceAccountCredentialLifetimeExtension lists the service account)"},
			"delegates-list-the-target": {24, "delegates[1]",
				"delegates lists the target 'target@target-project.iam.gserviceaccount.com'",
				"the chain ends at gcpServiceAccount, so remove it from delegates"},
			"empty-scopes": {34, "scopes", "scopes is empty",
				"list OAuth scopes such as https://www.googleapis.com/auth/cloud-platform, or remove the field to use " +
					"the controller's"},
			// A double-quoted value folds its lines: the annotation's line.
			"quoted-value": {42, "lifetime",
				"lifetime must be a duration with a unit, such as '15m', '1h' or '3600s', not the bare number '3600'",
				"lifetime is the token's lifetime, from 1s to 12h (above 1h only where the organization policy " +
					"allows it), such as 'lifetime: 30m'"},
		}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			_, report, _ := rulesOf(t, nil, tt.file)
			got := map[string]want{}
			for _, f := range report.Findings {
				g.Expect(f.Rule).To(Equal("invalid-parameter"), f.ServiceAccount)
				got[f.ServiceAccount] = want{f.Line, f.Field, f.Problem, f.Fix}
			}
			g.Expect(got).To(Equal(tt.want))

			// Lint refuses what the library refuses, in its words.
			m, err := readManifests([]string{tt.file}, nil)
			g.Expect(err).NotTo(HaveOccurred())
			for _, msa := range m.serviceAccounts {
				w := tt.want[msa.sa.Name]
				var reason string
				for _, p := range lintProviders[:2] {
					_, err := p.provider.ParseImpersonation(msa.sa, fluxauth.WithSTSRegion(lintRegion))
					if annErr := (*auth.AnnotationError)(nil); errors.As(err, &annErr) {
						reason = annErr.Reason
					}
				}
				g.Expect(reason).To(Or(Equal(w.problem+": "+w.fix), Equal(w.problem)), msa.sa.Name)
			}
		})
	}
}

func TestLocateRefusal(t *testing.T) {
	t.Parallel()
	const value = "roleARN: arn:aws:iam::222222222222:role/target\n" + // 1
		"sessionTags:\n" + // 2
		"  team: a\n" + // 3
		"  \"it's\": b\n" + // 4
		"transitiveTagKeys:\n" + // 5
		"  - team\n" + // 6
		"  - tema\n" + // 7
		"  - team\n" + // 8
		"policyARNs: [a, b]\n" // 9
	for _, tt := range []struct {
		reason    string
		wantLine  int
		wantField string
	}{
		{"line 7: anchors and aliases are not allowed ('&a'): write each value out in full", 7, ""},
		{"field 'duration' is set twice (lines 2 and 5): keep one", 5, ""},
		{"unknown field 'transitiveTagkeys': did you mean 'transitiveTagKeys'?", 0, ""},
		{"unknown field 'policyARNs': the fields are ...", 9, ""},
		{"roleARN 'x' is not an IAM role ARN: its resource must start with 'role/'", 1, "roleARN"},
		{"roleARN is required", 1, "roleARN"},
		{"duration is empty: set a duration", 0, ""},
		{"policyARNs[1] 'b' is not an IAM policy ARN", 9, "policyARNs[1]"},
		{"policyARNs[7] 'b' is not an IAM policy ARN", 9, "policyARNs[7]"},
		{"sessionTags['it\\'s'] must be a string: quote the value", 4, "sessionTags['it\\'s']"},
		{"sessionTags key 'it\\'s' has a character STS refuses", 4, "sessionTags['it\\'s']"},
		// The item quoted first, not the one the hint names.
		{"transitiveTagKeys names 'tema', which is not a key of sessionTags: did you mean 'team'?", 7, "transitiveTagKeys[1]"},
		// Of two equal items, the one that repeats.
		{"transitiveTagKeys lists 'team' twice: keep one", 8, "transitiveTagKeys[2]"},
		{"sessionTags has 51 tags: STS takes at most 50", 2, "sessionTags"},
		{"the value is empty: remove the annotation", 0, ""},
	} {
		t.Run(tt.reason, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			line, _, field := locateRefusal(value, tt.reason)
			g.Expect([]any{line, field}).To(Equal([]any{tt.wantLine, tt.wantField}))
		})
	}
	t.Run("a value that is not a mapping", func(t *testing.T) {
		t.Parallel()
		line, _, field := locateRefusal("[roleARN]", "roleARN is required")
		NewWithT(t).Expect([]any{line, field}).To(Equal([]any{0, ""}))
	})
}

func TestSplitReason(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		reason, problem, fix string
	}{
		{"scopes is empty: list OAuth scopes", "scopes is empty", "list OAuth scopes"},
		// ': ' inside quoted tenant text, an escaped quote, brackets.
		{"externalID 'a: b\\': c' has a character STS refuses (': '): use letters",
			"externalID 'a: b\\': c' has a character STS refuses (': ')", "use letters"},
		{"policy is not valid JSON (x: y): write it", "policy is not valid JSON (x: y)", "write it"},
		// An apostrophe in a word opens no quote.
		{"the role's trust policy: fix it: now", "the role's trust policy", "fix it: now"},
		{"sessionTags['a: b'] must be a string: quote the value", "sessionTags['a: b'] must be a string", "quote the value"},
		{"duration must be a duration with a unit, such as '15m'", "duration must be a duration with a unit, such as '15m'", ""},
	} {
		t.Run(tt.reason, func(t *testing.T) {
			t.Parallel()
			problem, fix, ok := splitReason(tt.reason)
			NewWithT(t).Expect([]any{problem, fix, ok}).To(Equal([]any{tt.problem, tt.fix, tt.fix != ""}))
		})
	}
}

// TestLintAzureAnnotationFindings pins, for every Azure annotation of the
// corpus the library refuses, the line of the field at fault, and checks
// that the library's planning refuses it too, for the same reason: lint
// refuses what a controller would.
func TestLintAzureAnnotationFindings(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	const file = "testdata/lint/bad/azure-annotation.yaml"
	type want struct {
		line    int
		field   string
		problem string
	}
	_, report, _ := rulesOf(t, nil, file)
	got := map[string]want{}
	for _, f := range report.Findings {
		g.Expect(f.Rule).To(Equal("invalid-annotation"), f.ServiceAccount)
		g.Expect(f.Fix).To(Equal("write the value as YAML fields: 'clientID: <app registration's client ID, a GUID>' " +
			"(required), 'tenantID: <tenant ID or verified domain>' (required) and 'useServiceAccount: true|false' (optional)"))
		got[f.ServiceAccount] = want{f.Line, f.Field, f.Problem}
	}
	g.Expect(got).To(Equal(map[string]want{
		"client-id-not-a-guid": {10, "clientID", "clientID 'my-app-registration' is not a GUID: it must look like " +
			"00001111-aaaa-2222-bbbb-3333cccc4444, the Application (client) ID of the app registration"},
		"client-id-placeholder": {21, "clientID", "clientID '00000000-0000-0000-0000-000000000000' is the nil GUID, " +
			"a placeholder: set the Application (client) ID of the app registration"},
		"tenant-common": {31, "tenantID", "tenantID 'common' names no tenant: client credentials need the ID or a " +
			"verified domain of the tenant to get the token in"},
		"tenant-not-a-domain": {41, "tenantID", "tenantID 'contoso' is neither a tenant ID (a GUID such as " +
			"aaaabbbb-0000-cccc-1111-dddd2222eeee) nor a verified domain (such as contoso.onmicrosoft.com)"},
		// A missing field is at the annotation's line.
		"client-id-missing": {49, "", "clientID is required: the application (client) ID of the app registration, " +
			"e.g. 'clientID: 00001111-aaaa-2222-bbbb-3333cccc4444'"},
		"unknown-field": {60, "", "unknown field 'tenantId': did you mean 'tenantID'? field names are case-sensitive"},
		// The scopes are the object's, not the annotation's.
		"scopes-are-the-objects": {71, "", "unknown field 'scopes': the fields are 'clientID', 'tenantID', " +
			"'useServiceAccount'"},
	}))

	m, err := readManifests([]string{file}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	p, _ := lintProviderFor(azure.ProviderName)
	for _, msa := range m.serviceAccounts {
		_, err := p.plan(&msa.sa, false, nil)
		var annErr *auth.AnnotationError
		g.Expect(errors.As(err, &annErr)).To(BeTrue(), msa.sa.Name)
		g.Expect(annErr.Reason).To(Equal(got[msa.sa.Name].problem), msa.sa.Name)
	}
}
