package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

	params, ok := imp.Request.(*assumeRoleParams)
	if imp.Request != nil && !ok {
		return nil, fmt.Errorf("the impersonation's request is %T, not AWS AssumeRole parameters", imp.Request)
	}
	sessionName := RoleSessionName(imp.ServiceAccount)
	in := &sts.AssumeRoleInput{RoleArn: &imp.Target, RoleSessionName: &sessionName}
	params.apply(in)
	region := quote.Tenant(o.STSRegion)
	// The SDK's standard retryer (3 attempts, jittered exponential backoff,
	// bounded by ctx) already retries throttling, 5xx and connection errors:
	// no retry of our own, or one failure would cost up to 9 calls.
	out, err := p.assumeRole(ctx, in, stsOpts)
	if err != nil {
		return nil, fmt.Errorf("sts AssumeRole in region %s: %w%s", region, err, assumeRoleHint(err, imp.Target, params))
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

// assumeRoleHint says what to change when STS refuses an AssumeRole, or ""
// when the refusal needs no words of ours. STS's AccessDenied never says
// which condition of a trust policy failed, so the hint names every one
// the annotation's parameters bring in.
func assumeRoleHint(err error, target string, params *assumeRoleParams) string {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return ""
	}
	role := quote.Tenant(target)
	msg := apiErr.ErrorMessage()
	switch code := apiErr.ErrorCode(); {
	case code == "AccessDenied" && strings.Contains(msg, "sts:SetSourceIdentity"):
		return fmt.Sprintf(". the impersonation policy sets a SourceIdentity: the trust policy of %s must allow "+
			"sts:SetSourceIdentity by the source role, and the source role's policy must allow "+
			"sts:SetSourceIdentity on it", role)
	case code == "AccessDenied" && strings.Contains(msg, "sts:TagSession"):
		why := "the source session carries transitive tags"
		switch {
		case params != nil && params.tenantTags:
			why = "the impersonation policy adds tenant session tags"
		case params != nil && params.tags != nil:
			why = "the annotation sets sessionTags"
		}
		return fmt.Sprintf(". %s: the trust policy of %s must allow sts:TagSession by the source role, and the "+
			"source role's policy must allow sts:TagSession on it", why, role)
	case code == "AccessDenied":
		hint := fmt.Sprintf(". the trust policy of %s must allow sts:AssumeRole by the source role, and the "+
			"source role's policy must allow sts:AssumeRole on it", role)
		if params != nil && params.externalID != nil {
			hint += "; the annotation sends externalID, so the trust policy's sts:ExternalId condition must " +
				"equal it (STS does not say which condition failed)"
		}
		return hint
	case code == "InvalidParameterValue" && strings.Contains(msg, "transitive tag"):
		return ". the source session already carries that key as a transitive tag (EKS Pod Identity sets " +
			"kubernetes-namespace, kubernetes-service-account and others), and STS does not let a chained " +
			"session set it again: rename the key in the annotation's sessionTags"
	case code == "PackedPolicyTooLarge":
		return ". the annotation's sessionTags and policy, with any tags the source session carries, are too " +
			"large for STS once packed: use fewer or shorter tags, or move the policy into policyARNs"
	case code == "MalformedPolicyDocument":
		return ". STS refused the session policy: check the annotation's policy and that every ARN of " +
			"policyARNs names an existing managed policy"
	case code == "ValidationError" && strings.Contains(msg, "DurationSeconds"):
		return ". lower the annotation's duration: a role assumed from another role's session lasts at most 1h, " +
			"and never longer than the role's maximum session duration"
	}
	return ""
}
