// Package gcp impersonates GCP service accounts with IAM Credentials
// generateAccessToken, on top of the upstream fluxcd/pkg/auth GCP provider,
// which supplies the source token: GKE workload identity for the
// controller, or the ServiceAccount's token exchanged at Google STS, through
// its iam.gke.io/gcp-service-account or by direct-access federation.
//
// Provider{} is ready to use with the functions of package auth:
//
//	token, err := auth.GetAccessToken(ctx, gcp.Provider{},
//		auth.WithClient(kubeClient),
//		auth.WithServiceAccountNamespace(obj.Namespace),
//		auth.WithServiceAccountName(obj.Spec.ServiceAccountName))
//	tok := token.(*gcp.Token)
//
// and NewTokenSource gives an SDK client (GCS, KMS) the same chain.
//
// # The annotation
//
// ImpersonateAnnotation (gcp.auth.fluxcd.io/impersonate) holds an
// ImpersonateConfig: the service account to impersonate, the source, and
// optional delegates, lifetime and scopes. Every field is checked against
// Google's own rules when the annotation is read
// (ValidateServiceAccountEmail), so a value Google would refuse costs no
// cloud call.
//
// # Failures
//
// IAM Credentials and Google STS are retried on throttling, server errors
// and broken connections; refusals name the role to grant along the chain,
// or the organization policy a long lifetime needs; replies without a
// usable token are ErrInvalidToken and never cached.
package gcp
