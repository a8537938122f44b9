// This file is the only one that touches the upstream provider, so moving
// to a newer fluxcd/pkg/auth changes this file alone.

package aws

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	fluxauth "github.com/fluxcd/pkg/auth"
	awsauth "github.com/fluxcd/pkg/auth/aws"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ProviderName is the name of the AWS provider.
const ProviderName = awsauth.ProviderName

// Credentials is the token type this provider returns: the upstream one, so
// ECR, EKS and S3 clients downstream keep working unchanged.
type Credentials = awsauth.Credentials

// Implementation is the seam to the AWS SDK: the upstream seam plus
// AssumeRole. Tests and the fakes package replace it to point the real SDK at
// local fakes.
type Implementation interface {
	awsauth.Implementation
	AssumeRole(ctx context.Context, params *sts.AssumeRoleInput, options sts.Options) (*sts.AssumeRoleOutput, error)
}

// Provider is the AWS provider. The zero value is ready to use and calls the
// real AWS APIs. It is safe for concurrent use.
type Provider struct {
	// Implementation replaces the AWS SDK calls. Optional. Defaults to the
	// real SDK.
	Implementation Implementation
}

// upstream is the upstream provider on our implementation, with STS
// replies checked whichever implementation it is.
func (p Provider) upstream() awsauth.Provider {
	return awsauth.Provider{Implementation: p.impl()}
}

func (p Provider) impl() Implementation {
	if p.Implementation == nil {
		return guardedImplementation{defaultImplementation{}}
	}
	return guardedImplementation{p.Implementation}
}

func (p Provider) assumeRole(ctx context.Context, in *sts.AssumeRoleInput, o sts.Options) (*sts.AssumeRoleOutput, error) {
	return p.impl().AssumeRole(ctx, in, o)
}

// GetName implements fluxauth.Provider.
func (Provider) GetName() string { return ProviderName }

// errCABundleWithCustomClient is the SDK's refusal to combine AWS_CA_BUNDLE
// with the proxy-aware HTTP client every call here uses.
const errCABundleWithCustomClient = "unable to add custom RootCAs HTTPClient"

// NewControllerToken implements fluxauth.Provider: the controller's own
// credentials (EKS Pod Identity or IRSA) from the SDK's default chain.
func (p Provider) NewControllerToken(ctx context.Context, opts ...fluxauth.Option) (fluxauth.Token, error) {
	token, err := p.upstream().NewControllerToken(ctx, opts...)
	if err != nil && strings.Contains(err.Error(), errCABundleWithCustomClient) && os.Getenv("AWS_CA_BUNDLE") != "" {
		return nil, fmt.Errorf("%w. the AWS SDK cannot use AWS_CA_BUNDLE with the controller's proxy-aware HTTP client: "+
			"unset AWS_CA_BUNDLE in the controller's environment and put the CA in SSL_CERT_FILE instead", err)
	}
	if creds, ok := token.(*Credentials); ok && longLived(creds) {
		return nil, ErrLongLivedControllerKeys
	}
	return token, err
}

// ErrLongLivedControllerKeys is returned when the controller's own AWS
// credentials are access keys without a session token or an expiry (e.g.
// AWS_ACCESS_KEY_ID in its environment): they cannot be cached or refreshed
// like the session credentials of every supported source.
var ErrLongLivedControllerKeys = errors.New("the controller's AWS credentials are long-lived access keys " +
	"without an expiry: give the controller EKS Pod Identity or IRSA instead, and remove AWS_ACCESS_KEY_ID " +
	"and AWS_SECRET_ACCESS_KEY from its environment")

func longLived(c *Credentials) bool {
	return c.AccessKeyId != nil && *c.AccessKeyId != "" && (c.SessionToken == nil || *c.SessionToken == "") &&
		(c.Expiration == nil || c.Expiration.IsZero())
}

// GetAudiences implements fluxauth.Provider.
func (p Provider) GetAudiences(ctx context.Context, sa corev1.ServiceAccount) ([]string, error) {
	return p.upstream().GetAudiences(ctx, sa)
}

// IdentityAnnotation implements auth.Provider.
func (Provider) IdentityAnnotation() string { return RoleARNAnnotation }

// GetIdentity implements fluxauth.Provider. A missing annotation gets its
// own error: upstream reports it as an invalid empty ARN.
func (p Provider) GetIdentity(sa corev1.ServiceAccount) (string, error) {
	if sa.Annotations[RoleARNAnnotation] == "" {
		return "", fmt.Errorf("%w: add %s with the IAM role the service account's token is exchanged for",
			ErrNoServiceAccountRole, RoleARNAnnotation)
	}
	return p.upstream().GetIdentity(sa)
}

// ErrNoServiceAccountRole is returned when the ServiceAccount is the source
// of the credentials but names no IAM role.
var ErrNoServiceAccountRole = errors.New("the service account has no " + RoleARNAnnotation + " annotation")

// NewTokenForServiceAccount implements fluxauth.Provider:
// AssumeRoleWithWebIdentity with the ServiceAccount's token. Its session is
// named as every session made for the ServiceAccount is (RoleSessionName),
// not as upstream names it ("<name>.<namespace>.<region>.fluxcd.io", which
// STS refuses beyond 64 characters), so CloudTrail shows one name per
// tenant on every hop.
func (p Provider) NewTokenForServiceAccount(ctx context.Context, oidcToken string,
	sa corev1.ServiceAccount, opts ...fluxauth.Option) (fluxauth.Token, error) {
	named := sessionNamed{Implementation: p.impl(), name: RoleSessionName(client.ObjectKey{Namespace: sa.Namespace, Name: sa.Name})}
	return awsauth.Provider{Implementation: named}.NewTokenForServiceAccount(ctx, oidcToken, sa, opts...)
}

// sessionNamed is an implementation whose AssumeRoleWithWebIdentity calls
// use one role session name.
type sessionNamed struct {
	Implementation
	name string
}

func (s sessionNamed) AssumeRoleWithWebIdentity(ctx context.Context, params *sts.AssumeRoleWithWebIdentityInput,
	options sts.Options) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	in := *params
	in.RoleSessionName = &s.name
	return s.Implementation.AssumeRoleWithWebIdentity(ctx, &in, options)
}

// GetAccessTokenOptionsForArtifactRepository implements auth.RegistryProvider.
func (p Provider) GetAccessTokenOptionsForArtifactRepository(repo string) ([]fluxauth.Option, error) {
	return p.upstream().GetAccessTokenOptionsForArtifactRepository(repo)
}

// ParseArtifactRepository implements auth.RegistryProvider.
func (p Provider) ParseArtifactRepository(repo string) (string, error) {
	return p.upstream().ParseArtifactRepository(repo)
}

// NewArtifactRegistryCredentials implements auth.RegistryProvider.
func (p Provider) NewArtifactRegistryCredentials(ctx context.Context, registryInput string,
	accessToken fluxauth.Token, opts ...fluxauth.Option) (*fluxauth.ArtifactRegistryCredentials, error) {
	return p.upstream().NewArtifactRegistryCredentials(ctx, registryInput, accessToken, opts...)
}

// GetAccessTokenOptionsForCluster implements auth.RESTConfigProvider.
func (p Provider) GetAccessTokenOptionsForCluster(opts ...fluxauth.Option) ([][]fluxauth.Option, error) {
	return p.upstream().GetAccessTokenOptionsForCluster(opts...)
}

// NewRESTConfig implements auth.RESTConfigProvider.
func (p Provider) NewRESTConfig(ctx context.Context, accessTokens []fluxauth.Token,
	opts ...fluxauth.Option) (*fluxauth.RESTConfig, error) {
	return p.upstream().NewRESTConfig(ctx, accessTokens, opts...)
}

// ValidateSTSEndpoint validates an STS endpoint exactly as upstream does.
func ValidateSTSEndpoint(endpoint string) error { return awsauth.ValidateSTSEndpoint(endpoint) }
