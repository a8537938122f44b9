package fakes_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

// awsControllerARN loads the controller configuration as upstream's
// NewControllerToken does and asks STS whose credentials it holds.
func awsControllerARN(t *testing.T, s *fakes.AWSSTS, impl *fakes.AWSControllerImplementation, optFns ...func(*config.LoadOptions) error) string {
	t.Helper()
	g := NewWithT(t)
	cfg, err := impl.LoadDefaultConfig(context.Background(), append([]func(*config.LoadOptions) error{
		config.WithRegion(awsTestRegion)}, optFns...)...)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg.Region).To(Equal(awsTestRegion))
	creds, err := cfg.Credentials.Retrieve(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	out, err := awsSTSClient(s, awsStatic(creds)).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	g.Expect(err).NotTo(HaveOccurred())
	return *out.Arn
}

// Controllers with different identities side by side, in parallel, none
// configured through the environment.
func TestSTS_ImplementationAs(t *testing.T) {
	t.Parallel()
	issuer := awsSharedIssuer()
	s := awsStartSTS(t, fakes.AWSSTSOptions{Issuer: issuer})
	s.AllowWebIdentity(awsTestRole, awsTestNamespace, awsTestSA)
	agent, err := fakes.StartPodIdentityAgent(s, awsTestOtherRole)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Close)
	token := awsSign(t, issuer, awsTestNamespace, awsTestSA, "sts.amazonaws.com")

	tests := []struct {
		name    string
		creds   aws.CredentialsProvider
		wantARN string
	}{
		{"pod identity", agent.Credentials(), "arn:aws:sts::123456789012:assumed-role/other/fakes-issued"},
		{"web identity", s.WebIdentityCredentials(awsTestRole, fakes.StaticIdentityToken(token)), "arn:aws:sts::123456789012:assumed-role/controller/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			g.Expect(awsControllerARN(t, s, s.ImplementationAs(tt.creds))).To(HavePrefix(tt.wantARN))
		})
	}
}

// Credentials that the caller passes win over the instance's, as they win
// over the default chain in config.LoadDefaultConfig.
func TestSTS_ImplementationAs_CallerCredentials(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	agent, err := fakes.StartPodIdentityAgent(s, awsTestOtherRole)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(agent.Close)
	issued := s.IssueCredentials(awsTestTenantRole)

	arn := awsControllerARN(t, s, s.ImplementationAs(agent.Credentials()), config.WithCredentialsProvider(
		credentials.NewStaticCredentialsProvider(issued.AccessKeyID, issued.SecretAccessKey, issued.SessionToken)))
	g.Expect(arn).To(Equal("arn:aws:sts::210987654321:assumed-role/tenant-a/fakes-issued"))
	g.Expect(agent.Requests()).To(BeZero())
}

func TestSTS_ImplementationAs_Refusals(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	s := awsStartSTS(t, fakes.AWSSTSOptions{Issuer: awsSharedIssuer()})
	g.Expect(func() { s.ImplementationAs(nil) }).To(PanicWith("fakes: AWSSTS.ImplementationAs: creds is required"))

	// An untrusted subject is refused as under IRSA.
	token := awsSign(t, awsSharedIssuer(), awsTestNamespace, awsTestSA, "sts.amazonaws.com")
	cfg, err := s.ImplementationAs(s.WebIdentityCredentials(awsTestRole, fakes.StaticIdentityToken(token))).
		LoadDefaultConfig(context.Background(), config.WithRegion(awsTestRegion))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = cfg.Credentials.Retrieve(context.Background())
	g.Expect(awsErrorCode(err)).To(Equal("AccessDenied"))

	// Without a token there is nothing to exchange.
	cfg, err = s.ImplementationAs(s.WebIdentityCredentials(awsTestRole, nil)).
		LoadDefaultConfig(context.Background(), config.WithRegion(awsTestRegion))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = cfg.Credentials.Retrieve(context.Background())
	g.Expect(err).To(MatchError(ContainSubstring("fakes: AWSSTS.WebIdentityCredentials: no token retriever")))
	g.Expect(s.Count("AssumeRoleWithWebIdentity")).To(Equal(1))
}
