package aws_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them, except
// the AWS SDK's own credential retrieval: aws.CredentialsCache runs it on a
// context detached from the caller (by design, so one caller giving up does
// not fail the others), and after a test's deadline it ends on the SDK's
// own timeouts and retries, seconds later.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/aws/aws-sdk-go-v2/aws.(*CredentialsCache).singleRetrieve"))
}
