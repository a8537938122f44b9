// Package auth extends github.com/fluxcd/pkg/auth with impersonation between
// cloud identities: AWS STS AssumeRole and GCP IAM Credentials
// generateAccessToken, configured by annotations on the Kubernetes
// ServiceAccount a Flux object names.
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
//
//	gcp.auth.fluxcd.io/impersonate: |
//	  gcpServiceAccount: target@project.iam.gserviceaccount.com   # required
//	  useServiceAccount: true                                      # optional
//
// azure.auth.fluxcd.io/impersonate is refused with what to do instead: Azure
// has no identity-to-identity impersonation, only workload identity
// federation, which upstream supports.
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
// # Caching
//
// WithTokenCache caches source and target tokens under separate keys, so
// many targets reached from one source cost one source exchange per
// lifetime. A hit never waits on a network call, a valid token is served
// while its refresh runs, hangs or fails, a fetch is bounded (WithFetchTimeout)
// and a hung one is not joined for long (WithFetchHedgeDelay). Keys hold
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
// sts:AssumeRole on the target. GCP: the source identity needs
// roles/iam.serviceAccountTokenCreator on the target service account.
// Kubernetes: the controller needs get on serviceaccounts (list and watch
// with a cached client) and, when a ServiceAccount is the source, create on
// serviceaccounts/token; refusals name the rule to grant.
package auth
