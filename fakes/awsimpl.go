package fakes

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	signerv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// ErrAWSNotFaked is returned by the AWSImplementation methods for services
// this package does not fake (ECR, ECR Public, EKS).
var ErrAWSNotFaked = errors.New("aws service is not faked")

// AWSImplementation is the AWS SDK seam of the library's aws provider (the
// Implementation of github.com/fluxcd/pkg/auth/aws plus AssumeRole) wired to
// the real SDK with STS calls sent to a fake STS. Its method set matches
// that interface structurally; this package cannot import it without an
// import cycle in the provider's tests.
//
// AWSImplementation is safe for concurrent use.
type AWSImplementation struct {
	stsURL string
}

// Implementation returns an AWSImplementation sending STS calls to s.
func (s *STS) Implementation() *AWSImplementation {
	return &AWSImplementation{stsURL: s.URL}
}

// LoadDefaultConfig is config.LoadDefaultConfig unchanged. It does not set
// a base endpoint: that would also redirect ECR, EKS and every other
// service. The environment from IRSAEnv already points the web identity
// provider at the fake with AWS_ENDPOINT_URL_STS, and the Pod Identity
// provider does not call STS.
func (i *AWSImplementation) LoadDefaultConfig(ctx context.Context, optFns ...func(*config.LoadOptions) error) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx, optFns...)
}

// AssumeRoleWithWebIdentity calls the fake STS with the real SDK client.
func (i *AWSImplementation) AssumeRoleWithWebIdentity(ctx context.Context, params *sts.AssumeRoleWithWebIdentityInput, options sts.Options) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	return sts.New(options, i.redirect).AssumeRoleWithWebIdentity(ctx, params)
}

// AssumeRole calls the fake STS with the real SDK client, which signs the
// request with options.Credentials.
func (i *AWSImplementation) AssumeRole(ctx context.Context, params *sts.AssumeRoleInput, options sts.Options) (*sts.AssumeRoleOutput, error) {
	return sts.New(options, i.redirect).AssumeRole(ctx, params)
}

// GetAuthorizationToken is not faked.
func (i *AWSImplementation) GetAuthorizationToken(context.Context, aws.Config) (any, error) {
	return nil, fmt.Errorf("failed to get ECR authorization token: %w", ErrAWSNotFaked)
}

// GetPublicAuthorizationToken is not faked.
func (i *AWSImplementation) GetPublicAuthorizationToken(context.Context, aws.Config) (any, error) {
	return nil, fmt.Errorf("failed to get ECR Public authorization token: %w", ErrAWSNotFaked)
}

// DescribeCluster is not faked.
func (i *AWSImplementation) DescribeCluster(context.Context, *eks.DescribeClusterInput, eks.Options) (*eks.DescribeClusterOutput, error) {
	return nil, fmt.Errorf("failed to describe EKS cluster: %w", ErrAWSNotFaked)
}

// PresignGetCallerIdentity presigns with the real SDK against the fake STS
// URL. Presigning is local; the fake STS then serves the presigned URL,
// as the fake API servers of EKS clusters call it (see EKS.AddCluster).
func (i *AWSImplementation) PresignGetCallerIdentity(ctx context.Context, optFn func(*sts.PresignOptions), options sts.Options) (*signerv4.PresignedHTTPRequest, error) {
	client := sts.New(options, i.redirect)
	var optFns []func(*sts.PresignOptions)
	if optFn != nil {
		optFns = append(optFns, optFn)
	}
	return sts.NewPresignClient(client).PresignGetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, optFns...)
}

func (i *AWSImplementation) redirect(o *sts.Options) {
	o.BaseEndpoint = aws.String(i.stsURL)
}
