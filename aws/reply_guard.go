package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go/middleware"
)

// guardedImplementation refuses STS successes whose credentials cannot be
// used, inside the SDK client, before anything reads them. It has to be
// there: the SDK's stscreds providers dereference a missing Expiration, and
// for the controller's IRSA credentials they run inside aws.CredentialsCache,
// which re-raises the panic in a goroutine of its own, where no caller can
// recover it. Upstream reads the reply of AssumeRoleWithWebIdentity on the
// object-level path, and its tokens dereference every field later.
//
// The guard goes onto every client the provider makes that can call
// AssumeRoleWithWebIdentity or AssumeRole: through the configuration of
// LoadDefaultConfig, which the default credential chain's web identity and
// assume-role providers build their STS clients from, and through the
// options of the two direct calls.
type guardedImplementation struct {
	Implementation
}

func (i guardedImplementation) LoadDefaultConfig(ctx context.Context,
	optFns ...func(*config.LoadOptions) error) (aws.Config, error) {
	// Clip: appending must not write into the caller's array.
	optFns = append(slices.Clip(optFns), config.WithAPIOptions([]func(*middleware.Stack) error{guardSTSReplies}))
	return i.Implementation.LoadDefaultConfig(ctx, optFns...)
}

// The direct calls check the output again on return, for an
// Implementation that answers without an SDK client built from options.

func (i guardedImplementation) AssumeRoleWithWebIdentity(ctx context.Context, params *sts.AssumeRoleWithWebIdentityInput,
	options sts.Options) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	options.APIOptions = append(slices.Clip(options.APIOptions), guardSTSReplies)
	out, err := i.Implementation.AssumeRoleWithWebIdentity(ctx, params, options)
	if err == nil {
		err = checkSTSReply(out, time.Now())
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (i guardedImplementation) AssumeRole(ctx context.Context, params *sts.AssumeRoleInput,
	options sts.Options) (*sts.AssumeRoleOutput, error) {
	options.APIOptions = append(slices.Clip(options.APIOptions), guardSTSReplies)
	out, err := i.Implementation.AssumeRole(ctx, params, options)
	if err == nil {
		err = checkSTSReply(out, time.Now())
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ErrIncompleteCluster is returned when EKS describes a cluster without the
// endpoint or the CA a REST config needs, as it does while the cluster is
// still being created. Upstream would dereference the missing fields.
var ErrIncompleteCluster = errors.New("EKS described the cluster without an endpoint or CA data")

func (i guardedImplementation) DescribeCluster(ctx context.Context, params *eks.DescribeClusterInput,
	options eks.Options) (*eks.DescribeClusterOutput, error) {
	out, err := i.Implementation.DescribeCluster(ctx, params, options)
	if err != nil {
		return nil, err
	}
	c := out.Cluster
	if c == nil || aws.ToString(c.Endpoint) == "" || c.CertificateAuthority == nil ||
		aws.ToString(c.CertificateAuthority.Data) == "" {
		status := "unknown"
		if c != nil && c.Status != "" {
			status = string(c.Status)
		}
		return nil, fmt.Errorf("%w (status %s): wait until the cluster is ACTIVE, or set the address and CA data "+
			"on the object", ErrIncompleteCluster, status)
	}
	return out, nil
}

const stsReplyGuardID = "github.com/identitychain/auth/aws.STSReplyGuard"

// guardSTSReplies adds stsReplyGuard to stack once, outside the operation
// deserializer, so that it sees the decoded output. Its error is not one the
// SDK retries: STS said it succeeded, and asking again would mint more
// credentials from a service that is answering wrongly.
func guardSTSReplies(stack *middleware.Stack) error {
	if _, ok := stack.Deserialize.Get(stsReplyGuardID); ok {
		return nil // an Implementation that guards by itself, or a wrapped one
	}
	return stack.Deserialize.Add(stsReplyGuard{}, middleware.Before)
}

// stsReplyGuard turns an STS success with unusable credentials into an
// error; every other output passes untouched.
type stsReplyGuard struct{}

func (stsReplyGuard) ID() string { return stsReplyGuardID }

func (stsReplyGuard) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput,
	next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
	out, md, err := next.HandleDeserialize(ctx, in)
	if err != nil {
		return out, md, err
	}
	if err := checkSTSReply(out.Result, time.Now()); err != nil {
		out.Result = nil
		return out, md, err
	}
	return out, md, nil
}

// checkSTSReply checks the Credentials of an AssumeRoleWithWebIdentity or
// AssumeRole output with ValidateToken at now; it returns nil for any other
// result. The error wraps ErrInvalidCredentials, names the wrong fields and
// holds no secret.
func checkSTSReply(result any, now time.Time) error {
	var creds *types.Credentials
	switch r := result.(type) {
	case *sts.AssumeRoleWithWebIdentityOutput:
		if r != nil {
			creds = r.Credentials
		}
	case *sts.AssumeRoleOutput:
		if r != nil {
			creds = r.Credentials
		}
	default:
		return nil
	}
	if creds == nil {
		return fmt.Errorf("the reply holds %w: Credentials is missing", ErrInvalidCredentials)
	}
	if err := (Provider{}).ValidateToken(&Credentials{Credentials: *creds}, now); err != nil {
		return fmt.Errorf("the reply holds %w", err)
	}
	return nil
}
