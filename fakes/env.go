package fakes

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"
)

// awsIRSATokenTTL is the lifetime of the token IRSAEnv writes. EKS projects
// IRSA tokens for 24 hours; the file is never refreshed here, so it must
// outlive any test or demo run.
const awsIRSATokenTTL = 24 * time.Hour

// BaseAWSEnv returns environment variables that isolate the AWS SDK's
// default configuration chain from the machine it runs on: no shared config
// or credentials files (they point to paths under dir that do not exist), no
// EC2 instance metadata, no credentials, profile, role, container
// credentials or endpoint overrides from the environment, and region.
//
// AWS_CA_BUNDLE is set empty because the SDK treats an empty value as
// unset, while a non-empty one makes LoadDefaultConfig refuse any custom
// HTTP client (config.WithHTTPClient) with "unable to add custom RootCAs
// HTTPClient".
//
// Apply it with t.Setenv for each entry; empty values mean "unset".
func BaseAWSEnv(dir, region string) map[string]string {
	return map[string]string{
		"AWS_CONFIG_FILE":             filepath.Join(dir, "aws-config-does-not-exist"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "aws-credentials-does-not-exist"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CA_BUNDLE":               "",
		"AWS_REGION":                  region,
		"AWS_DEFAULT_REGION":          "",

		"AWS_ACCESS_KEY_ID":     "",
		"AWS_SECRET_ACCESS_KEY": "",
		"AWS_ACCESS_KEY":        "",
		"AWS_SECRET_KEY":        "",
		"AWS_SESSION_TOKEN":     "",
		"AWS_PROFILE":           "",
		"AWS_DEFAULT_PROFILE":   "",

		"AWS_ROLE_ARN":                "",
		"AWS_ROLE_SESSION_NAME":       "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "",

		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN":      "",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "",
		"AWS_ENDPOINT_URL":                       "",
		"AWS_ENDPOINT_URL_STS":                   "",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS":    "",
	}
}

// PodIdentityEnv returns BaseAWSEnv plus the variables with which the SDK
// finds the EKS Pod Identity agent a.
func PodIdentityEnv(dir, region string, a *PodIdentityAgent) map[string]string {
	env := BaseAWSEnv(dir, region)
	env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = a.URL
	env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = a.TokenFile()
	return env
}

// IRSAEnv returns BaseAWSEnv plus the variables EKS injects for IAM Roles for
// Service Accounts: the role to assume and a token file under dir holding a
// token issued for the service account namespace/name with audience
// sts.amazonaws.com, and AWS_ENDPOINT_URL_STS pointing the SDK at sts.
func IRSAEnv(dir, region string, sts *AWSSTS, issuer *Issuer, roleARN, namespace, name string) (map[string]string, error) {
	token, err := issuer.Sign(namespace, name, []string{awsSTSAudience}, awsIRSATokenTTL)
	if err != nil {
		return nil, fmt.Errorf("failed to issue IRSA token for '%s/%s': %w", namespace, name, err)
	}
	file := filepath.Join(dir, "eks.amazonaws.com-serviceaccount-token")
	if err := os.WriteFile(file, []byte(token), 0o600); err != nil {
		return nil, fmt.Errorf("failed to write IRSA token file: %w", err)
	}
	env := BaseAWSEnv(dir, region)
	maps.Copy(env, map[string]string{
		"AWS_ROLE_ARN":                roleARN,
		"AWS_WEB_IDENTITY_TOKEN_FILE": file,
		"AWS_ENDPOINT_URL_STS":        sts.URL,
	})
	return env, nil
}
