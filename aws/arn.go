package aws

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/identitychain/auth/internal/quote"
)

// Partitions are the AWS partitions an ARN may name: the commercial
// regions, China, GovCloud, the isolated regions and the European
// Sovereign Cloud. An ARN naming another is refused, so that a look-alike
// such as arn:aws-evil:... never reaches a policy or a log as if it were
// an AWS identity.
var Partitions = []string{"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"}

const (
	roleNameMax = 64
	iamPathMax  = 512
)

var (
	accountIDRegex = regexp.MustCompile(`^[0-9]{12}$`)
	// IAM's own character sets: names of [\w+=,.@-], paths of printable
	// ASCII between slashes.
	iamNameRegex = regexp.MustCompile(`^[\w+=,.@-]+$`)
	iamPathRegex = regexp.MustCompile(`^/([\x21-\x7e]*/)?$`)
)

// ValidateRoleARN checks that arn is an IAM role ARN as IAM defines one:
// arn:<partition>:iam::<12-digit account>:role/<path><name>, a partition
// from Partitions, a path of at most 512 printable ASCII characters
// between slashes, and a name of 1 to 64 characters of letters, digits and
// +=,.@_-. The error says which part is wrong; the ARN in it is quoted,
// escaped and cut.
func ValidateRoleARN(arn string) error { return roleARN.validate(arn) }

// ValidatePolicyARN checks that arn is an IAM managed policy ARN:
// arn:<partition>:iam::<12-digit account or "aws">:policy/<path><name>,
// a partition from Partitions, a path as for roles and a name of 1 to 128
// characters of letters, digits and +=,.@_-.
func ValidatePolicyARN(arn string) error { return policyARN.validate(arn) }

// iamARN is one kind of IAM resource ARN: arn:<partition>:iam::<account>:
// <resource>/<path><name>.
type iamARN struct {
	resource string // "role" or "policy"
	example  string
	nameMax  int
	// awsAccount allows the account "aws", as AWS managed policies have.
	awsAccount bool
}

var (
	roleARN   = iamARN{resource: "role", example: "arn:aws:iam::123456789012:role/name", nameMax: roleNameMax}
	policyARN = iamARN{resource: "policy", nameMax: policyNameMax, awsAccount: true,
		example: "arn:aws:iam::aws:policy/ReadOnlyAccess or arn:aws:iam::123456789012:policy/name"}
)

func (kind iamARN) validate(arn string) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s %s", quote.Tenant(arn), fmt.Sprintf(format, args...))
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return fail("is not an IAM %s ARN: it must look like %s", kind.resource, kind.example)
	}
	partition, service, region, account, resource := parts[1], parts[2], parts[3], parts[4], parts[5]
	switch {
	case !slices.Contains(Partitions, partition):
		return fail("names partition %s, which AWS does not have: use one of %s",
			quote.Tenant(partition), strings.Join(Partitions, ", "))
	case service != "iam" || region != "":
		return fail("is not an IAM %s ARN: it must look like %s (service iam, no region)", kind.resource, kind.example)
	case kind.awsAccount && account != "aws" && !accountIDRegex.MatchString(account):
		return fail("has account %s: it must be 'aws' for an AWS managed policy, or a 12-digit account ID",
			quote.Tenant(account))
	case !kind.awsAccount && !accountIDRegex.MatchString(account):
		return fail("has account %s: an AWS account ID is 12 digits", quote.Tenant(account))
	}
	rest, ok := strings.CutPrefix(resource, kind.resource+"/")
	if !ok {
		return fail("is not an IAM %s ARN: its resource must start with '%s/', as in %s",
			kind.resource, kind.resource, kind.example)
	}
	path, name := "/", rest
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		path, name = "/"+rest[:i+1], rest[i+1:]
	}
	switch {
	case name == "" || len(name) > kind.nameMax || !iamNameRegex.MatchString(name):
		return fail("has %s name %s: it must be 1 to %d characters of letters, digits and +=,.@_-",
			kind.resource, quote.Tenant(name), kind.nameMax)
	case len(path) > iamPathMax || !iamPathRegex.MatchString(path):
		return fail("has %s path %s: it must be at most %d characters of printable ASCII between slashes",
			kind.resource, quote.Tenant(path), iamPathMax)
	}
	return nil
}
