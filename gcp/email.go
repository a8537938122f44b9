package gcp

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/identitychain/auth/internal/quote"
)

var (
	// An account ID or project ID: 6 to 30 lower-case letters, digits and
	// hyphens, starting with a letter and not ending with a hyphen.
	gcpIDRegex = regexp.MustCompile(`^[a-z][-a-z0-9]{4,28}[a-z0-9]$`)
	// A project number, as in Compute Engine's default service account.
	projectNumberRegex = regexp.MustCompile(`^[0-9]{1,20}$`)
)

const (
	userManagedDomain = ".iam.gserviceaccount.com"
	computeDomain     = "developer.gserviceaccount.com"
	appEngineDomain   = "appspot.gserviceaccount.com"
)

// ValidateServiceAccountEmail checks that email names a service account as
// Google defines them:
//
//   - <account-id>@<project-id>.iam.gserviceaccount.com, both IDs 6 to 30
//     lower-case letters, digits and hyphens, starting with a letter and
//     not ending with a hyphen;
//   - <project-number>-compute@developer.gserviceaccount.com, Compute
//     Engine's default service account;
//   - <project-id>@appspot.gserviceaccount.com, App Engine's.
//
// The error says which part is wrong; the email in it is quoted, escaped
// and cut.
func ValidateServiceAccountEmail(email string) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s %s", quote.Tenant(email), fmt.Sprintf(format, args...))
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || strings.Contains(domain, "@") {
		return fail("is not a service account email: it must look like name@project-id.iam.gserviceaccount.com")
	}
	switch {
	case domain == computeDomain:
		number, ok := strings.CutSuffix(local, "-compute")
		if !ok || !projectNumberRegex.MatchString(number) {
			return fail("is not Compute Engine's default service account: it must look like " +
				"123456789012-compute@developer.gserviceaccount.com")
		}
		return nil
	case domain == appEngineDomain:
		if !gcpIDRegex.MatchString(local) {
			return fail("has project ID %s: %s", quote.Tenant(local), idRule)
		}
		return nil
	}
	project, ok := strings.CutSuffix(domain, userManagedDomain)
	switch {
	case !ok:
		return fail("is not a service account email: its domain must be <project-id>%s, %s or %s",
			userManagedDomain, computeDomain, appEngineDomain)
	case !gcpIDRegex.MatchString(local):
		return fail("has account ID %s: %s", quote.Tenant(local), idRule)
	case !gcpIDRegex.MatchString(project):
		return fail("has project ID %s: %s", quote.Tenant(project), idRule)
	}
	return nil
}

const idRule = "it must be 6 to 30 lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen"
