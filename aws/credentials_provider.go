package aws

import (
	"context"
	"fmt"
	"slices"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"

	"github.com/identitychain/auth"
)

// NewCredentialsProvider returns credentials for AWS SDK clients (e.g.
// s3.Options.Credentials) that come from auth.GetAccessToken with the zero
// Provider: the chain of this library, impersonation, lockdown and
// auth.WithTokenCache included. It has the signature of upstream's, so a
// call site compiles by swapping the imports.
func NewCredentialsProvider(ctx context.Context, opts ...auth.Option) awssdk.CredentialsProvider {
	return Provider{}.NewCredentialsProvider(ctx, opts...)
}

// NewCredentialsProvider is the package-level NewCredentialsProvider with p
// as the provider, e.g. one whose Implementation points at fakes.
//
// As upstream's, the credentials are fetched with ctx, not with the context
// Retrieve is given: GCP's oauth2.TokenSource has no context of its own, and
// the three adapters behave alike. The wait is still bounded: the HTTP
// client of every cloud call has a timeout, and a TokenCache bounds each
// fetch.
func (p Provider) NewCredentialsProvider(ctx context.Context, opts ...auth.Option) awssdk.CredentialsProvider {
	// A copy: the caller may reuse its slice's backing array.
	return &credentialsProvider{ctx: ctx, provider: p, opts: slices.Clone(opts)}
}

// credentialsProvider is immutable and safe for concurrent use. Retrieve
// calls the chain every time, as upstream's does: caching is the
// TokenCache's job, or the SDK's aws.CredentialsCache's.
type credentialsProvider struct {
	ctx      context.Context // the adapter's signature puts it here; see NewCredentialsProvider
	provider Provider
	opts     []auth.Option
}

// Retrieve implements aws.CredentialsProvider. The credentials expire when
// the token does, so an aws.CredentialsCache in front asks again in time.
func (c *credentialsProvider) Retrieve(context.Context) (awssdk.Credentials, error) {
	token, err := auth.GetAccessToken(c.ctx, c.provider, c.opts...)
	if err != nil {
		return awssdk.Credentials{}, err
	}
	creds, ok := token.(*Credentials)
	if !ok || creds == nil {
		return awssdk.Credentials{}, fmt.Errorf("failed to cast token to AWS token: %T", token)
	}
	return awssdk.Credentials{
		AccessKeyID:     awssdk.ToString(creds.AccessKeyId),
		SecretAccessKey: awssdk.ToString(creds.SecretAccessKey),
		SessionToken:    awssdk.ToString(creds.SessionToken),
		CanExpire:       true,
		Expires:         awssdk.ToTime(creds.Expiration),
	}, nil
}
