// Package fakes provides fake cloud and Kubernetes services for tests and
// demos of workload identity: they serve the real wire protocols on
// 127.0.0.1, so code under test runs the real cloud SDKs against them, and
// they check what the real services check instead of accepting anything.
//
// All fakes are safe for concurrent use and record the calls they receive,
// so tests can assert how often the cloud was reached (for example that a
// cache absorbed concurrent requests).
//
// # Kubernetes
//
// Issuer signs service-account tokens like the TokenRequest API, and
// NewKubeClient returns a controller-runtime fake client whose
// SubResource("token").Create returns such tokens for existing
// ServiceAccounts.
//
// # AWS
//
// StartSTS serves AssumeRoleWithWebIdentity, AssumeRole and
// GetCallerIdentity. Web identity tokens must be signed by the configured
// Issuer for audience sts.amazonaws.com and their subject trusted by the role
// (AllowWebIdentity). AssumeRole must be SigV4-signed with credentials the
// fake issued, and the source role trusted by the target (AllowAssumeRole).
// Refusals use the error codes of real STS (AccessDenied,
// InvalidIdentityToken, ExpiredTokenException, InvalidClientTokenId,
// SignatureDoesNotMatch, ExpiredToken, ValidationError).
//
// StartPodIdentityAgent serves the EKS Pod Identity agent API.
// BaseAWSEnv, PodIdentityEnv and IRSAEnv return the environment with which
// the SDK's default credential chain uses them and nothing else from the
// machine. STS.Implementation returns the SDK seam of the library's aws
// provider, pointed at the fake STS.
//
// # Google Cloud
//
// The Google Cloud fakes (IAM Credentials, security token service and the
// metadata server) follow the same rules.
//
// # Secrets
//
// Issued credentials and tokens are random and never appear in error
// messages or logs of the fakes.
package fakes
