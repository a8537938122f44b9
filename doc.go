// Package auth extends github.com/fluxcd/pkg/auth with impersonation between
// cloud identities: AWS STS AssumeRole, GCP IAM Credentials
// generateAccessToken, and Microsoft Entra ID client credentials of an app
// that trusts a managed identity, configured by annotations on the
// Kubernetes ServiceAccount a Flux object names.
//
// Controllers call GetAccessToken, GetArtifactRegistryCredentials or
// GetRESTConfig in place of the upstream functions, with the same options,
// and get back the upstream token types (*aws.Credentials, *gcp.Token,
// *azure.Token of fluxcd/pkg/auth), so everything downstream keeps working.
//
// # The chain
//
// Plan reads the ServiceAccount, parses its annotations and applies the
// lockdown rules without calling any cloud. Chain.Token then gets the source
// credentials the upstream way (the controller's own identity, or the
// ServiceAccount's token exchanged at the cloud's STS) and, when the
// ServiceAccount asks for it, impersonates the target identity with them.
//
// # Annotations
//
// Tenants write these annotations, so their values are read as a YAML
// subset with one meaning only, bounded before it is parsed: at most 32 KiB,
// one document, no anchors, aliases, merge keys, tags or nulls, booleans
// only true and false. Unknown fields, wrong types, duplicate fields and an
// empty value are errors that name the annotation and the ServiceAccount,
// and every error quotes tenant text escaped and cut. Role ARNs and service
// account emails are checked as AWS and Google define them.
//
//	aws.auth.fluxcd.io/assume-role: |
//	  roleARN: arn:aws:iam::222222222222:role/target   # required
//	  useServiceAccount: true                          # optional
//	  externalID: tenant-a-7f3a9c                      # optional, and the rest:
//	  duration: 30m                                    # sessionTags, transitiveTagKeys,
//	                                                   # policyARNs, policy
//
//	gcp.auth.fluxcd.io/impersonate: |
//	  gcpServiceAccount: target@project.iam.gserviceaccount.com   # required
//	  useServiceAccount: true                                      # optional
//	  delegates: [hop@middle-project.iam.gserviceaccount.com]      # optional
//	  lifetime: 30m                                                # optional
//	  scopes: [https://www.googleapis.com/auth/cloud-platform]     # optional
//
//	azure.auth.fluxcd.io/impersonate: |
//	  clientID: 00001111-aaaa-2222-bbbb-3333cccc4444   # required
//	  tenantID: contoso.onmicrosoft.com                # required, ID or verified domain
//	  useServiceAccount: true                          # optional
//
// useServiceAccount chooses the source: the ServiceAccount's own identity
// (true) or the controller's (false). Unset, it is true under multi-tenancy
// lockdown and false otherwise.
//
// # Multi-tenancy lockdown
//
// Lockdown is on when the call carries WithDefaultServiceAccount or when the
// process set it the upstream way (fluxauth.SetDefaultServiceAccount or
// SetDefaultKubeConfigServiceAccount, the controllers'
// --default-service-account flags). Under lockdown an object that names no
// ServiceAccount uses the default one, and the controller's identity is never
// the source of an impersonation: it belongs to no namespace, so it cannot be
// isolated per tenant. Refusals happen before any cloud call. As upstream,
// every ServiceAccount is refused while the ObjectLevelWorkloadIdentity
// feature gate is off.
//
// # Impersonation policy
//
// Without lockdown, WithImpersonationPolicy lets the platform team say who
// may become whom (ParseImpersonationPolicy): Plan refuses what no rule
// allows with ErrPolicyDenied, and AWS sessions can carry the tenant's
// namespace and ServiceAccount as session tags and a source identity.
//
// # Caching
//
// WithTokenCache caches source and target tokens under separate keys, so
// many targets reached from one source cost one source exchange per
// lifetime. A hit never waits on a network call, a valid token is served
// while its refresh runs, hangs or fails, a fetch is bounded (CacheFetchTimeout)
// and a hung one is not joined for long (CacheFetchHedgeDelay). Keys hold
// every input that decides whose token it is, so GetAccessToken,
// GetArtifactRegistryCredentials and GetRESTConfig of one chain share its
// tokens. WithCache, the upstream cache, keeps working for compatibility.
//
// # Failures
//
// Every wait is bounded by the caller's context; replies the clouds should
// not send (an expiry missing or past, empty credentials) are errors and are
// never cached; every error names the provider, the hop, the target and the
// region.
//
// # Required cloud permissions
//
// AWS: the target role's trust policy must allow sts:AssumeRole by the
// source role (the controller's Pod Identity or IRSA role, or the
// ServiceAccount's eks.amazonaws.com/role-arn), and the source role needs
// sts:AssumeRole on the target; the annotation's externalID and sessionTags
// need the trust policy's sts:ExternalId condition and sts:TagSession, and
// an impersonation policy's tenant tags and source identity need
// sts:TagSession and sts:SetSourceIdentity. GCP: the source identity needs
// roles/iam.serviceAccountTokenCreator on the target service account, and
// along the chain of the annotation's delegates. Azure: the target app
// registration must be multi-tenant and trust the source managed identity as
// a federated identity credential (issuer
// https://login.microsoftonline.com/<its tenant>/v2.0, subject its principal
// ID, audience api://AzureADTokenExchange), and have a service principal
// (admin consent) with the needed roles in the target tenant. Kubernetes: the controller needs get on serviceaccounts (list and watch
// with a cached client) and, when a ServiceAccount is the source, create on
// serviceaccounts/token; refusals name the rule to grant.
package auth
