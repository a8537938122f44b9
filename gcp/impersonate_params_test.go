package gcp_test

import (
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/gcp"
)

const paramsTarget = "gcpServiceAccount: target-sa@target-project.iam.gserviceaccount.com\n"

func delegateList(n int) string {
	var l []string
	for i := range n {
		l = append(l, fmt.Sprintf("hop-%02d@middle-project.iam.gserviceaccount.com", i))
	}
	return "delegates: [" + strings.Join(l, ", ") + "]"
}

// TestImpersonateParameters pins what each optional field sends.
func TestImpersonateParameters(t *testing.T) {
	for _, tt := range []struct {
		name  string
		value string
		want  []auth.Parameter
	}{
		{name: "none", value: paramsTarget},
		{
			name: "every field",
			value: paramsTarget + `delegates:
  - hop-one@middle-project.iam.gserviceaccount.com
  - hop-two@other-project.iam.gserviceaccount.com
lifetime: 30m
scopes: [https://www.googleapis.com/auth/devstorage.read_only, https://www.googleapis.com/auth/userinfo.email]
`,
			want: []auth.Parameter{
				{Field: "delegates", SentAs: "delegates", Values: []string{
					"projects/-/serviceAccounts/hop-one@middle-project.iam.gserviceaccount.com",
					"projects/-/serviceAccounts/hop-two@other-project.iam.gserviceaccount.com"}},
				{Field: "lifetime", SentAs: "lifetime", Value: "1800s"},
				{Field: "scopes", SentAs: "scope", Values: []string{
					"https://www.googleapis.com/auth/devstorage.read_only", "https://www.googleapis.com/auth/userinfo.email"}},
			},
		},
		{name: "lifetime alone", value: paramsTarget + "lifetime: 1s",
			want: []auth.Parameter{{Field: "lifetime", SentAs: "lifetime", Value: "1s"}}},
		{name: "the longest lifetime", value: paramsTarget + "lifetime: 12h",
			want: []auth.Parameter{{Field: "lifetime", SentAs: "lifetime", Value: "43200s"}}},
		{name: "scopes alone ask for the default lifetime", value: paramsTarget + "scopes: [a]",
			want: []auth.Parameter{{Field: "lifetime", SentAs: "lifetime", Value: "3600s"},
				{Field: "scopes", SentAs: "scope", Values: []string{"a"}}}},
		{name: "ten delegates", value: paramsTarget + delegateList(10),
			want: []auth.Parameter{
				{Field: "delegates", SentAs: "delegates", Values: func() []string {
					var v []string
					for i := range 10 {
						v = append(v, fmt.Sprintf("projects/-/serviceAccounts/hop-%02d@middle-project.iam.gserviceaccount.com", i))
					}
					return v
				}()},
				{Field: "lifetime", SentAs: "lifetime", Value: "3600s"},
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			imp, err := gcp.Provider{}.ParseImpersonation(serviceAccount(map[string]string{gcp.ImpersonateAnnotation: tt.value}))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(imp.Parameters).To(Equal(tt.want))
			g.Expect(imp.Request == nil).To(Equal(tt.want == nil))
		})
	}
}

// TestImpersonateParameterRefusals pins the refusal of every limit, by its
// exact message: the field, the limit and the fix.
func TestImpersonateParameterRefusals(t *testing.T) {
	const prefix = "invalid gcp.auth.fluxcd.io/impersonate annotation on service account 'team-a/app': "
	for _, tt := range []struct {
		name, value, want string
	}{
		// delegates
		{"delegates empty", "delegates: []",
			"delegates is empty: list the service accounts between the source and gcpServiceAccount, or remove the field"},
		{"too many delegates", delegateList(11), "delegates has 11 service accounts: at most 10"},
		{"a delegate not an email", "delegates: [hop-one@middle-project.iam.gserviceaccount.com, hop-two]",
			"delegates[1] 'hop-two' is not a service account email: it must look like name@project-id.iam.gserviceaccount.com"},
		{"a delegate twice", "delegates: [hop-one@middle-project.iam.gserviceaccount.com, hop-one@middle-project.iam.gserviceaccount.com]",
			"delegates lists 'hop-one@middle-project.iam.gserviceaccount.com' twice: a chain passes each service account once"},
		{"the target as a delegate", "delegates: [target-sa@target-project.iam.gserviceaccount.com]",
			"delegates lists the target 'target-sa@target-project.iam.gserviceaccount.com': the chain ends at gcpServiceAccount, so remove it from delegates"},
		{"delegates a string", "delegates: hop-one@middle-project.iam.gserviceaccount.com",
			"delegates must be a list, not a string"},
		// lifetime
		{"lifetime without a unit", "lifetime: 3600",
			"lifetime must be a duration with a unit, such as '15m', '1h' or '3600s', not the bare number '3600'"},
		{"lifetime quoted without a unit", `lifetime: "3600"`,
			"lifetime '3600' has no unit: write '3600s' or use minutes or hours, such as '1h'"},
		{"lifetime not a duration", "lifetime: forever",
			"lifetime 'forever' is not a duration: write one with a unit, such as '30m' or '1h'"},
		{"lifetime below a second", "lifetime: 500ms",
			"lifetime '500ms' is not a whole number of seconds: generateAccessToken takes seconds"},
		{"lifetime zero", "lifetime: 0s", "lifetime '0s' is below 1s: set lifetime between 1s and 12h"},
		{"lifetime negative", "lifetime: -1h", "lifetime '-1h' is below 1s: set lifetime between 1s and 12h"},
		{"lifetime above 12h", "lifetime: 12h1s",
			"lifetime '12h1s' is above 12h, the longest generateAccessToken grants: set lifetime between 1s and 12h " +
				"(above 1h only where the organization policy constraints/iam.allowServiceAccountCredentialLifetimeExtension lists the service account)"},
		{"lifetime empty", `lifetime: ""`,
			"lifetime is empty: set a duration such as '30m' or '1h', or remove the field"},
		// scopes
		{"scopes empty", "scopes: []",
			"scopes is empty: list OAuth scopes such as https://www.googleapis.com/auth/cloud-platform, or remove the field to use the controller's"},
		{"an empty scope", `scopes: [a, ""]`,
			"scopes[1] is empty: list OAuth scopes such as https://www.googleapis.com/auth/cloud-platform"},
		{"two scopes in one item", `scopes: ["a b"]`, "scopes[0] 'a b' has a space: list one scope per item"},
		{"a scope twice", "scopes: [a, a]", "scopes lists 'a' twice: keep one"},
		{"a scope a number", "scopes: [1]", "scopes[0] must be a string: quote the value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			sa := serviceAccount(map[string]string{gcp.ImpersonateAnnotation: paramsTarget + tt.value})
			imp, err := gcp.Provider{}.ParseImpersonation(sa)
			g.Expect(err).To(MatchError(prefix + tt.want))
			g.Expect(err).To(MatchError(auth.ErrInvalidAnnotation))
			g.Expect(imp).To(BeNil())
			_, err = gcp.ParseImpersonate(sa)
			g.Expect(err).To(MatchError(prefix + tt.want))
		})
	}
}
