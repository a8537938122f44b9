package fakes_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	fluxaws "github.com/fluxcd/pkg/auth/aws"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

// awsProviderImplementation is the seam of the library's aws provider: the
// upstream Implementation plus AssumeRole.
type awsProviderImplementation interface {
	fluxaws.Implementation
	AssumeRole(ctx context.Context, params *sts.AssumeRoleInput, options sts.Options) (*sts.AssumeRoleOutput, error)
}

var _ awsProviderImplementation = (*fakes.AWSImplementation)(nil)

func TestAWSImplementation_RedirectsSTS(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	issuer := awsSharedIssuer()
	s := awsStartSTS(t, fakes.AWSSTSOptions{Issuer: issuer})
	s.AllowWebIdentity(awsTestRole, awsTestNamespace, awsTestSA)
	impl := s.Implementation()
	// A real endpoint in the options must not escape to AWS.
	opts := sts.Options{Region: awsTestRegion, BaseEndpoint: aws.String("https://sts.eu-central-1.amazonaws.com")}

	out, err := impl.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(awsTestRole),
		RoleSessionName:  aws.String(awsTestSession),
		WebIdentityToken: aws.String(awsSign(t, issuer, awsTestNamespace, awsTestSA, "sts.amazonaws.com")),
	}, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.Count("AssumeRoleWithWebIdentity")).To(Equal(1))

	c := out.Credentials
	opts.Credentials = awsStatic(aws.Credentials{
		AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey), SessionToken: aws.ToString(c.SessionToken),
	})
	presigned, err := impl.PresignGetCallerIdentity(ctx, nil, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.HasPrefix(presigned.URL, s.URL+"/?")).To(BeTrue(), presigned.URL)
	g.Expect(presigned.URL).To(ContainSubstring("Action=GetCallerIdentity"))
}

func TestAWSImplementation_NotFaked(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	impl := s.Implementation()

	_, err := impl.GetAuthorizationToken(ctx, aws.Config{})
	g.Expect(err).To(MatchError("failed to get ECR authorization token: aws service is not faked: wire a fake in with WithECR"))
	g.Expect(errors.Is(err, fakes.ErrAWSNotFaked)).To(BeTrue())
	_, err = impl.GetPublicAuthorizationToken(ctx, aws.Config{})
	g.Expect(err).To(MatchError("failed to get ECR Public authorization token: aws service is not faked: wire a fake in with WithECR"))
	g.Expect(errors.Is(err, fakes.ErrAWSNotFaked)).To(BeTrue())
	_, err = impl.DescribeCluster(ctx, &eks.DescribeClusterInput{}, eks.Options{})
	g.Expect(err).To(MatchError("failed to describe EKS cluster: aws service is not faked: wire a fake in with WithEKS"))
	g.Expect(errors.Is(err, fakes.ErrAWSNotFaked)).To(BeTrue())
	g.Expect(s.Calls()).To(BeEmpty())

	// Wiring one fake in leaves the other unfaked, and the original as it was.
	e := fakes.StartECR(s, fakes.ECROptions{})
	t.Cleanup(e.Close)
	_, err = impl.WithECR(e).DescribeCluster(ctx, &eks.DescribeClusterInput{}, eks.Options{})
	g.Expect(errors.Is(err, fakes.ErrAWSNotFaked)).To(BeTrue())
	_, err = impl.GetAuthorizationToken(ctx, aws.Config{})
	g.Expect(errors.Is(err, fakes.ErrAWSNotFaked)).To(BeTrue())
}
