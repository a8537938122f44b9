// Package aws impersonates AWS IAM roles with STS AssumeRole, on top of the
// upstream fluxcd/pkg/auth AWS provider, which supplies the source
// credentials: the controller's EKS Pod Identity or IRSA role, or the
// ServiceAccount's own role (eks.amazonaws.com/role-arn) exchanged with
// AssumeRoleWithWebIdentity.
//
// Provider{} is ready to use with the functions of package auth:
//
//	token, err := auth.GetAccessToken(ctx, aws.Provider{},
//		auth.WithClient(kubeClient),
//		auth.WithServiceAccountNamespace(obj.Namespace),
//		auth.WithServiceAccountName(obj.Spec.ServiceAccountName),
//		auth.WithSTSRegion(obj.Spec.Region))
//	creds := token.(*aws.Credentials)
//
// and NewCredentialsProvider gives an SDK client (S3, KMS) the same chain.
//
// # The annotation
//
// AssumeRoleAnnotation (aws.auth.fluxcd.io/assume-role) holds an
// AssumeRoleConfig: the role to assume, the source, and optional AssumeRole
// parameters (external ID, duration, session tags, session policies). Every
// field is checked against IAM's and STS's own rules when the annotation is
// read (ValidateRoleARN, ValidatePolicyARN), so a value STS would refuse
// costs no cloud call.
//
// # Sessions
//
// Every session made for a ServiceAccount is named RoleSessionName; with an
// impersonation policy that asks for it (auth.Attribution), it also carries
// TenantTagKeys as transitive session tags and a SourceIdentity.
//
// # Failures
//
// STS's refusals are translated into what to change (the trust policy, a
// parameter, a permission); replies without usable credentials are
// ErrInvalidCredentials and never cached.
package aws
