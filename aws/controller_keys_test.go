package aws_test

import (
	"context"
	"testing"

	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

// Long-lived access keys in the controller's environment have no expiry,
// so they could be neither cached nor refreshed: they are refused with what
// to use instead. Sets process environment, so not parallel.
func TestNewControllerTokenRefusesLongLivedKeys(t *testing.T) {
	g := NewWithT(t)
	for k, v := range fakes.BaseAWSEnv(t.TempDir(), "us-east-1") {
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")

	token, err := aws.Provider{}.NewControllerToken(context.Background(), fluxauth.WithSTSRegion("us-east-1"))

	g.Expect(token).To(BeNil())
	g.Expect(err).To(MatchError(aws.ErrLongLivedControllerKeys))
	g.Expect(err).To(MatchError("the controller's AWS credentials are long-lived access keys without an expiry: " +
		"give the controller EKS Pod Identity or IRSA instead, and remove AWS_ACCESS_KEY_ID and " +
		"AWS_SECRET_ACCESS_KEY from its environment"))
	g.Expect(err.Error()).NotTo(ContainSubstring("AKIAIOSFODNN7EXAMPLE"))
}
