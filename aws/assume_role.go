package aws

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	fluxauth "github.com/fluxcd/pkg/auth"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/internal/quote"
)

// Impersonate implements auth.Provider: STS AssumeRole into imp.Target,
// signed with the source credentials, through the proxy-aware HTTP client
// (with its timeout) and the caller's context.
func (p Provider) Impersonate(ctx context.Context, source fluxauth.Token, imp auth.Impersonation,
	opts ...fluxauth.Option) (fluxauth.Token, error) {

	src, ok := source.(*Credentials)
	if !ok {
		return nil, fmt.Errorf("source credentials are %T, not AWS credentials", source)
	}
	var o fluxauth.Options
	o.Apply(opts...)
	if o.STSRegion == "" {
		return nil, fmt.Errorf("%w: set it with auth.WithSTSRegion", ErrRegionRequired)
	}

	stsOpts := sts.Options{
		Region:     o.STSRegion,
		HTTPClient: o.GetHTTPClient(),
		Credentials: credentials.NewStaticCredentialsProvider(
			aws.ToString(src.AccessKeyId), aws.ToString(src.SecretAccessKey), aws.ToString(src.SessionToken)),
	}
	if e := o.STSEndpoint; e != "" {
		if err := ValidateSTSEndpoint(e); err != nil {
			return nil, err
		}
		stsOpts.BaseEndpoint = &e
	}

	sessionName := RoleSessionName(imp.ServiceAccount)
	region := quote.Tenant(o.STSRegion)
	// The SDK's standard retryer (3 attempts, jittered exponential backoff,
	// bounded by ctx) already retries throttling, 5xx and connection errors:
	// no retry of our own, or one failure would cost up to 9 calls.
	out, err := p.assumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         &imp.Target,
		RoleSessionName: &sessionName,
	}, stsOpts)
	if err != nil {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode() == "AccessDenied" {
			return nil, fmt.Errorf("sts AssumeRole in region %s: %w. the trust policy of %s must allow "+
				"sts:AssumeRole by the source role, and the source role's policy must allow sts:AssumeRole on it",
				region, err, quote.Tenant(imp.Target))
		}
		return nil, fmt.Errorf("sts AssumeRole in region %s: %w", region, err)
	}
	if out.Credentials == nil {
		return nil, fmt.Errorf("sts AssumeRole in region %s returned %w: the reply has no Credentials",
			region, ErrInvalidCredentials)
	}
	creds := &Credentials{Credentials: *out.Credentials}
	// A success that cannot be used must not be cached or handed out.
	if err := p.ValidateToken(creds, time.Now()); err != nil {
		return nil, fmt.Errorf("sts AssumeRole in region %s returned %w", region, err)
	}
	return creds, nil
}
