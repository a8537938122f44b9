package gcp_test

import (
	"strings"
	"testing"

	"github.com/identitychain/auth/gcp"
)

func TestValidateServiceAccountEmail(t *testing.T) {
	t.Parallel()
	for email, valid := range map[string]bool{
		"target-sa@target-project.iam.gserviceaccount.com":                                   true,
		"abcdef@abcdef.iam.gserviceaccount.com":                                              true,
		strings.Repeat("a", 30) + "@" + strings.Repeat("p", 30) + ".iam.gserviceaccount.com": true,
		strings.Repeat("a", 31) + "@my-project.iam.gserviceaccount.com":                      false,
		"abcde@my-project.iam.gserviceaccount.com":                                           false,
		"target@" + strings.Repeat("p", 31) + ".iam.gserviceaccount.com":                     false,
		"-x-@my-project.iam.gserviceaccount.com":                                             false,
		"target-@my-project.iam.gserviceaccount.com":                                         false,
		"1target@my-project.iam.gserviceaccount.com":                                         false,
		"Target@my-project.iam.gserviceaccount.com":                                          false,
		"target@My-Project.iam.gserviceaccount.com":                                          false,
		"target@my_project.iam.gserviceaccount.com":                                          false,
		"target@my-project.iam.gserviceaccount.com.evil.com":                                 false,
		"target@@my-project.iam.gserviceaccount.com":                                         false,
		"target@my-project.iam.gserviceaccount.com\n":                                        false,
		"123456789012-compute@developer.gserviceaccount.com":                                 true,
		"-compute@developer.gserviceaccount.com":                                             false,
		"my-project@appspot.gserviceaccount.com":                                             true,
		"my@appspot.gserviceaccount.com":                                                     false,
		"":                                                                                   false,
	} {
		if err := gcp.ValidateServiceAccountEmail(email); (err == nil) != valid {
			t.Errorf("%q: valid %t, got %v", email, valid, err)
		}
	}
}
