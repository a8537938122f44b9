// Package fakes provides fake cloud and Kubernetes services for tests and
// demos of workload identity: they serve the real wire protocols on
// 127.0.0.1, so code under test runs the real cloud SDKs against them, and
// they check what the real services check instead of accepting anything.
//
// All fakes are safe for concurrent use and record the calls they receive,
// so tests can assert how often the cloud was reached (for example that a
// cache absorbed concurrent requests). STS, PodIdentityAgent, Metadata,
// GCPSTS, IAMCredentials, ECR, EKS and GKE also count every HTTP request
// in Attempts, including those an injected fault answered.
//
// # Kubernetes
//
// Issuer signs service-account tokens like the TokenRequest API, and
// NewKubeClient returns a controller-runtime fake client whose
// SubResource("token").Create returns such tokens for existing
// ServiceAccounts. NewExternalIssuer and DiscoverIssuer make an Issuer that
// trusts a real issuer's keys instead (a kube-apiserver's, whose discovery
// document and JWKS DiscoverIssuer reads), so that STS and GCPSTS verify
// the tokens of the real TokenRequest API.
//
// # AWS
//
// StartAWSSTS serves AssumeRoleWithWebIdentity, AssumeRole and
// GetCallerIdentity. Web identity tokens must be signed by the configured
// Issuer for audience sts.amazonaws.com and their subject trusted by the role
// (AllowWebIdentity). AssumeRole must be SigV4-signed with credentials the
// fake issued, and the source role trusted by the target (AllowAssumeRole).
// GetCallerIdentity is also served from presigned URLs, whose query carries
// the signature, as in EKS authentication tokens. Beyond who may assume
// what, STS checks what real STS checks of AssumeRole's session:
//
//   - parameters: the declared constraints of every one, and
//     DurationSeconds against the role chaining limit;
//   - session policies (Policy, PolicyArns): well-formed, and defined
//     (DefineManagedPolicy); the sessions, and the fake ECR and EKS, then
//     obey them;
//   - session tags: sts:TagSession in the trust (AllowTagSession),
//     transitive tags inherited along role chains and never overridden,
//     at most 50 in all, and trust conditions on them (RequireRequestTag);
//   - source identity: sts:SetSourceIdentity in the trust
//     (AllowSetSourceIdentity), kept along role chains and never changed,
//     and trust conditions on it (RequireSourceIdentity).
//
// Refusals use the error codes of real STS (AccessDenied,
// InvalidIdentityToken, ExpiredTokenException, InvalidClientTokenId,
// SignatureDoesNotMatch, ExpiredToken, ValidationError,
// InvalidParameterValue, MalformedPolicyDocument, PackedPolicyTooLarge).
//
// StartECR serves GetAuthorizationToken of ECR and ECR Public, to callers
// whose requests are SigV4-signed with credentials the fake STS issued and
// whose role is allowed (Allow, AllowPublic); ECR.WhoAmI tells whose a
// registry password is.
//
// StartEKS serves DescribeCluster to callers so signed whose role may
// describe the cluster (AddCluster). Each cluster has a KubeAPIServer, whose
// URL and CA DescribeCluster returns, and which authenticates EKS bearer
// tokens (presigned GetCallerIdentity URLs) by calling them at the fake STS
// and answers `kubectl auth whoami` with the identity STS returned.
//
// StartPodIdentityAgent serves the EKS Pod Identity agent API;
// StartPodIdentityAgentWith gives its sessions Pod Identity's transitive
// session tags.
// BaseAWSEnv, PodIdentityEnv and IRSAEnv return the environment with which
// the SDK's default credential chain uses them and nothing else from the
// machine. AWSSTS.Implementation returns the SDK seam of the library's aws
// provider, pointed at the fake STS; WithECR and WithEKS add the fake ECR
// and EKS. AWSSTS.ImplementationAs does the same with the controller's
// identity given per instance (PodIdentityAgent.Credentials,
// AWSSTS.WebIdentityCredentials) instead of through the environment, so tests
// with different controller identities can run in parallel.
//
// # Google Cloud
//
// The Google Cloud fakes (IAM Credentials, security token service and the
// metadata server) follow the same rules. StartGKE serves clusters.get of
// the GKE API to bearer tokens of the fake IAM Credentials whose principal
// may get the cluster (AddCluster); each cluster has a KubeAPIServer taking
// the same tokens. GCPImplementation.WithGKE points upstream's GetCluster
// at it. NewGCPControllerImplementation takes the controller's tokens from
// one Metadata per instance instead of through GCE_METADATA_HOST (GCPEnv),
// so controller-level tests can run in parallel; object-level ones on GKE
// still need GCPEnv.
//
// # Azure
//
// StartEntra, StartACR and StartAKS fake Microsoft Entra ID (managed
// identities as federated credentials of apps across tenants), ACR's token
// exchange and AKS; Entra.Implementation points the real Azure SDK at them.
//
// # Fault injection
//
// STS, PodIdentityAgent, Metadata, GCPSTS, IAMCredentials, ECR, EKS and
// GKE fail on demand, in the wire format of the service, so that tests can check how
// code under test copes with the cloud misbehaving. A Fault says what to do:
//
//   - Throttle, ServerError(status): refuse as the rate-limited or failing
//     service does (STS: 400 Throttling, which the AWS SDK retries; Google:
//     429 RESOURCE_EXHAUSTED).
//   - ResetConnection: reset the TCP connection (ECONNRESET).
//   - Hang: never answer, until the client gives up or the fake closes.
//   - MalformedBody: 200 with a truncated XML or JSON document.
//   - ExpiredCredentials, MissingExpiry, EmptyCredentials, ClockSkew(d):
//     a success whose credentials the SDKs parse but the code under test
//     must refuse or handle.
//
// Times(n) limits a fault to the next n requests it applies to, and
// OnlyFor(op) to one operation (an STS Action, or a URL path). InjectFault
// returns an InjectedFault; faults compose in the order they were
// injected, the first that applies winning. Remove takes effect for the
// next request at once, while a request already hung stays hung, as on a
// half-dead connection, so a test can show that a library does not keep
// waiting for it. Hits and WaitHits tell how many requests a fault met.
//
//	sts.InjectFault(fakes.Throttle().Times(2).OnlyFor("AssumeRole"))
//	hang := iam.InjectFault(fakes.Hang())
//	go refresh(ctx) // the code under test
//	_ = hang.WaitHits(ctx, 1) // its request now hangs
//	hang.Remove()             // the next request succeeds
//
// # Secrets
//
// Issued credentials and tokens are random and never appear in error
// messages or logs of the fakes.
package fakes
