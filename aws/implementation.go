package aws

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	signerv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// defaultImplementation is the real AWS SDK, making exactly the calls
// upstream's makes when given no Implementation; upstream does not export
// its own, and this package must wrap it (see guardedImplementation).
type defaultImplementation struct{}

func (defaultImplementation) LoadDefaultConfig(ctx context.Context, optFns ...func(*config.LoadOptions) error) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx, optFns...)
}

func (defaultImplementation) AssumeRoleWithWebIdentity(ctx context.Context, params *sts.AssumeRoleWithWebIdentityInput,
	options sts.Options) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	return sts.New(options).AssumeRoleWithWebIdentity(ctx, params)
}

func (defaultImplementation) AssumeRole(ctx context.Context, params *sts.AssumeRoleInput, options sts.Options) (*sts.AssumeRoleOutput, error) {
	return sts.New(options).AssumeRole(ctx, params)
}

func (defaultImplementation) GetAuthorizationToken(ctx context.Context, cfg aws.Config) (any, error) {
	return ecr.NewFromConfig(cfg).GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
}

func (defaultImplementation) GetPublicAuthorizationToken(ctx context.Context, cfg aws.Config) (any, error) {
	return ecrpublic.NewFromConfig(cfg).GetAuthorizationToken(ctx, &ecrpublic.GetAuthorizationTokenInput{})
}

func (defaultImplementation) DescribeCluster(ctx context.Context, params *eks.DescribeClusterInput,
	options eks.Options) (*eks.DescribeClusterOutput, error) {
	return eks.New(options).DescribeCluster(ctx, params)
}

func (defaultImplementation) PresignGetCallerIdentity(ctx context.Context, optFn func(*sts.PresignOptions),
	options sts.Options) (*signerv4.PresignedHTTPRequest, error) {
	return sts.NewPresignClient(sts.New(options)).PresignGetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, optFn)
}
