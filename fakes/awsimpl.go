package fakes

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	signerv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// ErrAWSNotFaked is returned by the AWSImplementation methods for services
// whose fake was not wired in (WithECR, WithEKS).
var ErrAWSNotFaked = errors.New("aws service is not faked")

// AWSImplementation is the AWS SDK seam of the library's aws provider (the
// Implementation of github.com/fluxcd/pkg/auth/aws plus AssumeRole) wired to
// the real SDK with STS calls sent to a fake STS. Its method set matches
// that interface structurally; this package cannot import it without an
// import cycle in the provider's tests.
//
// ECR, ECR Public and EKS calls go to the fakes wired in with WithECR and
// WithEKS; without them they fail with ErrAWSNotFaked, never reaching AWS.
//
// AWSImplementation is immutable and safe for concurrent use.
type AWSImplementation struct {
	stsURL string
	ecr    *ECR
	eks    *EKS
}

// Implementation returns an AWSImplementation sending STS calls to s.
func (s *AWSSTS) Implementation() *AWSImplementation {
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

// WithECR returns a copy of i that sends ECR and ECR Public calls to e.
func (i *AWSImplementation) WithECR(e *ECR) *AWSImplementation {
	c := *i
	c.ecr = e
	return &c
}

// WithEKS returns a copy of i that sends EKS calls to e.
func (i *AWSImplementation) WithEKS(e *EKS) *AWSImplementation {
	c := *i
	c.eks = e
	return &c
}

// GetAuthorizationToken calls the fake ECR with the real SDK client, which
// signs the request with cfg.Credentials.
func (i *AWSImplementation) GetAuthorizationToken(ctx context.Context, cfg aws.Config) (any, error) {
	if i.ecr == nil {
		return nil, fmt.Errorf("failed to get ECR authorization token: %w: wire a fake in with WithECR", ErrAWSNotFaked)
	}
	return ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = aws.String(i.ecr.URL) }).
		GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
}

// GetPublicAuthorizationToken calls the fake ECR's ECR Public side with the
// real SDK client.
func (i *AWSImplementation) GetPublicAuthorizationToken(ctx context.Context, cfg aws.Config) (any, error) {
	if i.ecr == nil {
		return nil, fmt.Errorf("failed to get ECR Public authorization token: %w: wire a fake in with WithECR", ErrAWSNotFaked)
	}
	return ecrpublic.NewFromConfig(cfg, func(o *ecrpublic.Options) { o.BaseEndpoint = aws.String(i.ecr.URL) }).
		GetAuthorizationToken(ctx, &ecrpublic.GetAuthorizationTokenInput{})
}

// DescribeCluster calls the fake EKS with the real SDK client, which signs
// the request with options.Credentials.
func (i *AWSImplementation) DescribeCluster(ctx context.Context, params *eks.DescribeClusterInput, options eks.Options) (*eks.DescribeClusterOutput, error) {
	if i.eks == nil {
		return nil, fmt.Errorf("failed to describe EKS cluster: %w: wire a fake in with WithEKS", ErrAWSNotFaked)
	}
	return eks.New(options, func(o *eks.Options) { o.BaseEndpoint = aws.String(i.eks.URL) }).DescribeCluster(ctx, params)
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
