// Package azure reaches a Microsoft Entra ID app registration, usually in
// another tenant, from a managed identity that the app trusts as a
// federated identity credential, on top of the upstream fluxcd/pkg/auth
// Azure provider, which supplies the managed identity's token (the
// controller's AKS workload identity, or the ServiceAccount's own through
// object-level workload identity). That token, for the audience
// api://AzureADTokenExchange, is the client assertion of a client
// credentials request for the app: cross-account becomes cross-tenant, with
// no secret anywhere.
//
// Provider{} is ready to use with the functions of package auth; Azure
// impersonation needs the scopes of the token:
//
//	token, err := auth.GetAccessToken(ctx, azure.Provider{},
//		auth.WithClient(kubeClient),
//		auth.WithServiceAccountNamespace(obj.Namespace),
//		auth.WithServiceAccountName(obj.Spec.ServiceAccountName),
//		auth.WithScopes("https://management.azure.com/.default"))
//
// and NewTokenCredential gives an SDK client (Blob, Key Vault) the same
// chain.
//
// # The annotation
//
// ImpersonateAnnotation (azure.auth.fluxcd.io/impersonate) holds an
// ImpersonateConfig: the app's client ID, the target tenant and the
// source. Entra's refusals are translated into the federated identity
// credential to create or the admin consent to grant.
package azure
