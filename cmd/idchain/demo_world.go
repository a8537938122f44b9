package main

import (
	"context"
	"embed"
	"fmt"
	"os"
	"path"
	"strings"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	fluxauth "github.com/fluxcd/pkg/auth"
	corev1 "k8s.io/api/core/v1"

	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

// The demo's manifests: copies of the seed scenarios of the repository's
// testdata/ (a test keeps them identical) plus the refusal cases.
//
//go:embed demo/*.yaml
var demoManifests embed.FS

// The identities of the demo world. The seed manifests name the
// ServiceAccount my-app/my-app, the source and target roles and service
// accounts; the controller's own identities are the demo's.
const (
	demoRegion         = "us-east-1"
	demoNamespace      = "my-app"
	demoName           = "my-app"
	demoControllerRole = "arn:aws:iam::111111111111:role/flux-controller"
	demoSourceRole     = "arn:aws:iam::111111111111:role/source-account-role"
	demoTargetRole     = "arn:aws:iam::222222222222:role/target-account-role"

	// The GKE metadata must be the same for every fake metadata server of a
	// process: upstream caches it in a package variable.
	demoGCPProject       = "flux-project"
	demoGCPLocation      = "europe-west1"
	demoGCPCluster       = "flux"
	demoControllerGSA    = "flux-controller@flux-project.iam.gserviceaccount.com"
	demoSourceGSA        = "source-sa@source-project.iam.gserviceaccount.com"
	demoTargetGSA        = "target-sa@target-project.iam.gserviceaccount.com"
	demoIssuerURL        = "https://kubernetes.default.svc.cluster.local"
	demoControllerNS     = "flux-system"
	demoControllerSAName = "source-controller"
)

// The request parameters cases (aws-assume-role-params.yaml and
// gcp-impersonate-delegates.yaml): the external ID the target role's trust
// requires, the managed policy the session names, and the service account
// between the controller and the target.
const (
	demoExternalID  = "my-app-7f3a9c"
	demoECRReadOnly = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
	demoDelegateGSA = "hop-sa@middle-project.iam.gserviceaccount.com"
)

// The Azure cases (azure-impersonate.yaml and azure-object-impersonate.yaml):
// the manifests fix the home tenant, where the managed identities and the
// multi-tenant app registration live, the ServiceAccount's managed
// identity, the app and the tenant its token is issued in (by ID, and by
// verified domain); the controller's managed identity and the principal
// IDs are the demo's.
const (
	demoAzureHomeTenant          = "11111111-1111-4111-8111-111111111111"
	demoAzureTargetTenant        = "22222222-2222-4222-8222-222222222222"
	demoAzureTargetDomain        = "contoso.onmicrosoft.com"
	demoAzureApp                 = "33333333-3333-4333-8333-333333333333"
	demoAzureControllerMI        = "44444444-4444-4444-8444-444444444444"
	demoAzureControllerPrincipal = "55555555-5555-4555-8555-555555555555"
	demoAzureMyAppMI             = "66666666-6666-4666-8666-666666666666"
	demoAzureMyAppPrincipal      = "77777777-7777-4777-8777-777777777777"
	// demoAzureScope is what the demo asks of the app, as a controller
	// reconciling an Azure object asks for ARM's scope.
	demoAzureScope = "https://management.azure.com/.default"
)

// demoAzureTenantOf is the ID of the tenant name names in the demo's
// Entra: name itself, or the tenant of a verified domain.
func demoAzureTenantOf(name string) string {
	if strings.EqualFold(name, demoAzureTargetDomain) {
		return demoAzureTargetTenant
	}
	return name
}

// How the SOURCE and TARGET columns name Azure identities: the managed
// identity whose token was the client assertion, and the app, in the
// tenant Entra issued its token in.
const (
	demoAzureControllerSource = "MI " + demoAzureControllerMI
	demoAzureMyAppSource      = "MI " + demoAzureMyAppMI
	demoAzureTarget           = "app " + demoAzureApp + " in " + demoAzureTargetTenant
)

// demoGKEAudience is the Google STS audience upstream builds from the GKE
// metadata.
var demoGKEAudience = fmt.Sprintf(
	"identitynamespace:%s.svc.id.goog:https://container.googleapis.com/v1/projects/%s/locations/%s/clusters/%s",
	demoGCPProject, demoGCPProject, demoGCPLocation, demoGCPCluster)

// demoWorld is every fake cloud of the demo, started in process on
// loopback, with the trust policies and IAM grants of the proposal's cases.
type demoWorld struct {
	dir    string
	issuer *fakes.Issuer

	sts     *fakes.AWSSTS
	agent   *fakes.PodIdentityAgent
	podEnv  map[string]string // the controller's credentials from Pod Identity
	irsaEnv map[string]string // the controller's credentials from IRSA

	iam       *fakes.GCPIAMCredentials
	googleSTS *fakes.GCPSTS
	metadata  *fakes.GCPMetadata
	gcpEnv    map[string]string

	entra *fakes.Entra

	aws   aws.Provider
	gcp   gcp.Provider
	azure azure.Provider

	closers []func()
}

func startDemoWorld() (*demoWorld, error) {
	w := &demoWorld{}
	var err error
	if w.dir, err = os.MkdirTemp("", "idchain-demo-"); err != nil {
		return nil, err
	}
	w.closers = append(w.closers, func() { _ = os.RemoveAll(w.dir) })
	if w.issuer, err = fakes.NewIssuer(demoIssuerURL); err != nil {
		w.close()
		return nil, err
	}

	w.sts = fakes.StartAWSSTS(fakes.AWSSTSOptions{Issuer: w.issuer})
	w.closers = append(w.closers, w.sts.Close)
	if w.agent, err = fakes.StartPodIdentityAgent(w.sts, demoControllerRole); err != nil {
		w.close()
		return nil, err
	}
	w.closers = append(w.closers, w.agent.Close)
	w.podEnv = fakes.PodIdentityEnv(w.dir, demoRegion, w.agent)
	w.irsaEnv, err = fakes.IRSAEnv(w.dir, demoRegion, w.sts, w.issuer, demoControllerRole, demoControllerNS, demoControllerSAName)
	if err != nil {
		w.close()
		return nil, err
	}
	// The trust policies of the proposal: the controller's role (Pod
	// Identity or IRSA) and the ServiceAccount's role may assume the target.
	w.sts.AllowWebIdentity(demoControllerRole, demoControllerNS, demoControllerSAName)
	w.sts.AllowWebIdentity(demoSourceRole, demoNamespace, demoName)
	w.sts.AllowAssumeRole(demoControllerRole, demoTargetRole)
	w.sts.AllowAssumeRole(demoSourceRole, demoTargetRole)
	// A second statement of the target's trust for the parameters case:
	// only it allows sts:TagSession, which session tags need, and only
	// with the external ID, so the tagged request passes only when the
	// library sends both. The managed policy its PolicyArns names exists.
	w.sts.AllowAssumeRole(demoSourceRole, demoTargetRole, fakes.RequireExternalID(demoExternalID), fakes.AllowTagSession())
	w.sts.DefineManagedPolicy(demoECRReadOnly,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:Get*","ecr:BatchGet*","ecr:Describe*","ecr:List*"],"Resource":"*"}]}`)
	w.aws = aws.Provider{Implementation: w.sts.Implementation()}

	w.iam = fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	w.closers = append(w.closers, w.iam.Close)
	w.metadata = fakes.StartGCPMetadata(fakes.GCPMetadataOptions{
		ProjectID: demoGCPProject, ClusterLocation: demoGCPLocation, ClusterName: demoGCPCluster,
		ServiceAccountEmail: demoControllerGSA, IAM: w.iam,
	})
	w.closers = append(w.closers, w.metadata.Close)
	w.googleSTS = fakes.StartGCPSTS(fakes.GCPSTSOptions{Issuer: w.issuer, IAM: w.iam})
	w.closers = append(w.closers, w.googleSTS.Close)
	w.googleSTS.AllowAudience(demoGKEAudience)
	w.gcpEnv = fakes.GCPEnv(w.dir, w.metadata)
	// roles/iam.serviceAccountTokenCreator grants of the proposal: the
	// controller's and the ServiceAccount's identities on the target, and
	// the ServiceAccount's federated principal on its own GSA.
	federated := demoFederatedPrincipal()
	w.iam.AllowImpersonation(demoControllerGSA, demoTargetGSA)
	w.iam.AllowImpersonation(federated, demoSourceGSA)
	w.iam.AllowImpersonation(demoSourceGSA, demoTargetGSA)
	w.iam.AllowImpersonation(federated, demoTargetGSA)
	// The delegation chain of the delegates case: the controller on
	// hop-sa, hop-sa on the target. The fake walks every link.
	w.iam.AllowImpersonation(demoControllerGSA, demoDelegateGSA)
	w.iam.AllowImpersonation(demoDelegateGSA, demoTargetGSA)
	w.gcp = gcp.Provider{Implementation: fakes.NewGCPImplementation(w.googleSTS, w.iam)}

	w.startAzure()
	return w, nil
}

// startAzure starts the fake Entra ID with the grants of the Azure cases:
// each managed identity trusts its Kubernetes ServiceAccount (workload
// identity: the controller's, and my-app/my-app), the app registration
// trusts both managed identities as federated identity credentials, and
// has a service principal in the target tenant (admin consent).
func (w *demoWorld) startAzure() {
	w.entra = fakes.StartEntra(fakes.EntraOptions{})
	w.closers = append(w.closers, w.entra.Close)
	w.entra.AddTenant(demoAzureHomeTenant)
	w.entra.AddTenant(demoAzureTargetTenant, demoAzureTargetDomain)
	w.entra.TrustIssuer(w.issuer)
	w.entra.AddManagedIdentity(demoAzureHomeTenant, demoAzureControllerMI, demoAzureControllerPrincipal)
	w.entra.AllowFederatedCredential(demoAzureControllerMI, w.issuer.URL(),
		fakes.ServiceAccountSubject(demoControllerNS, demoControllerSAName))
	w.entra.AddManagedIdentity(demoAzureHomeTenant, demoAzureMyAppMI, demoAzureMyAppPrincipal)
	w.entra.AllowFederatedCredential(demoAzureMyAppMI, w.issuer.URL(), fakes.ServiceAccountSubject(demoNamespace, demoName))
	w.entra.AddApp(demoAzureHomeTenant, demoAzureApp)
	w.entra.AllowFederatedCredential(demoAzureApp, fakes.EntraIssuer(demoAzureHomeTenant), demoAzureControllerPrincipal)
	w.entra.AllowFederatedCredential(demoAzureApp, fakes.EntraIssuer(demoAzureHomeTenant), demoAzureMyAppPrincipal)
	w.entra.Consent(demoAzureApp, demoAzureTargetTenant)
	w.azure = azure.Provider{Implementation: w.entra.Implementation().WithController(fakes.AzureWorkloadIdentity{
		Issuer: w.issuer, Namespace: demoControllerNS, Name: demoControllerSAName,
		TenantID: demoAzureHomeTenant, ClientID: demoAzureControllerMI,
	})}
}

func demoFederatedPrincipal() string {
	return fakes.FederatedPrincipal(demoGKEAudience, fakes.ServiceAccountSubject(demoNamespace, demoName))
}

func (w *demoWorld) close() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
}

// tally counts the calls the fake clouds received.
type tally struct {
	podIdentity, webIdentity, assumeRole int64
	metadataToken, googleSTS, iam        int64
	// entraMI counts the tokens asked of Entra for a managed identity (a
	// Kubernetes token as the assertion), entraApp those for the app (a
	// managed identity's token as the assertion).
	entraMI, entraApp int64
}

func (w *demoWorld) tally() tally {
	mi, app := w.entraCalls()
	return tally{
		podIdentity:   w.agent.Requests(),
		webIdentity:   int64(w.sts.Count("AssumeRoleWithWebIdentity")),
		assumeRole:    int64(w.sts.Count("AssumeRole")),
		metadataToken: w.metadata.Requests("instance/service-accounts/default/token"),
		googleSTS:     w.googleSTS.Exchanges(),
		iam:           int64(w.iam.Count()),
		entraMI:       mi,
		entraApp:      app,
	}
}

// entraCalls counts the token requests the fake Entra recorded, by who
// asked: a managed identity, whose client assertion a Kubernetes issuer
// signed, or the app, whose client assertion is an Entra token.
func (w *demoWorld) entraCalls() (mi, app int64) {
	for _, c := range w.entra.Calls() {
		if c.AssertionIssuer == w.issuer.URL() {
			mi++
		} else {
			app++
		}
	}
	return mi, app
}

func (t tally) minus(o tally) tally {
	return tally{t.podIdentity - o.podIdentity, t.webIdentity - o.webIdentity, t.assumeRole - o.assumeRole,
		t.metadataToken - o.metadataToken, t.googleSTS - o.googleSTS, t.iam - o.iam,
		t.entraMI - o.entraMI, t.entraApp - o.entraApp}
}

func (t tally) total() int64 {
	return t.podIdentity + t.webIdentity + t.assumeRole + t.metadataToken + t.googleSTS + t.iam + t.entraMI + t.entraApp
}

func (t tally) String() string {
	var parts []string
	for _, c := range []struct {
		name string
		n    int64
	}{
		{"PodIdentity", t.podIdentity}, {"AssumeRoleWithWebIdentity", t.webIdentity}, {"AssumeRole", t.assumeRole},
		{"metadata token", t.metadataToken}, {"STS exchange", t.googleSTS}, {"generateAccessToken", t.iam},
		{"Entra MI token", t.entraMI}, {"Entra app token", t.entraApp},
	} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c.name, c.n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// lastCaller is who made the last impersonation call: the source identity
// as the cloud saw it.
func (w *demoWorld) lastCaller(provider string) string {
	switch provider {
	case azure.ProviderName:
		return w.lastAzureCaller()
	case aws.ProviderName:
		calls := w.sts.Calls()
		for i := len(calls) - 1; i >= 0; i-- {
			if calls[i].Action == "AssumeRole" {
				return calls[i].Caller
			}
		}
		return ""
	}
	calls := w.iam.Calls()
	if len(calls) == 0 {
		return ""
	}
	return calls[len(calls)-1].Caller
}

// lastAzureCaller is the managed identity whose token was the client
// assertion of the last request for an app's token: Entra saw its principal
// ID as the assertion's subject, and its directory names the managed
// identity of that principal.
func (w *demoWorld) lastAzureCaller() string {
	calls := w.entra.Calls()
	for i := len(calls) - 1; i >= 0; i-- {
		c := calls[i]
		if c.AssertionIssuer == w.issuer.URL() {
			continue // a managed identity's own exchange
		}
		for _, mi := range []string{demoAzureControllerMI, demoAzureMyAppMI} {
			principal, ok := w.entra.ServicePrincipalID(mi, demoAzureHomeTenant)
			if ok && c.AssertionIssuer == fakes.EntraIssuer(demoAzureHomeTenant) && c.AssertionSubject == principal {
				return "MI " + mi
			}
		}
		return "principal " + c.AssertionSubject
	}
	return ""
}

// owner asks the fake cloud whose token t is, as GetCallerIdentity (AWS)
// or the IAM fake's and Entra's own records (GCP, Azure) tell.
func (w *demoWorld) owner(ctx context.Context, t fluxauth.Token) (string, error) {
	switch t := t.(type) {
	case *aws.Credentials:
		client := sts.New(sts.Options{
			Region:       demoRegion,
			BaseEndpoint: &w.sts.URL,
			Credentials: awssdk.CredentialsProviderFunc(func(context.Context) (awssdk.Credentials, error) {
				return awssdk.Credentials{AccessKeyID: awssdk.ToString(t.AccessKeyId),
					SecretAccessKey: awssdk.ToString(t.SecretAccessKey), SessionToken: awssdk.ToString(t.SessionToken)}, nil
			}),
		})
		out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return "", err
		}
		return awssdk.ToString(out.Arn), nil
	case *gcp.Token:
		if p, ok := w.iam.WhoAmI(t.AccessToken); ok {
			return p, nil
		}
		return "", fmt.Errorf("the fake IAM does not know the token")
	case *azure.Token:
		who, ok := w.entra.WhoIs(t.Token)
		if !ok {
			return "", fmt.Errorf("the fake Entra does not know the token")
		}
		if who.ManagedIdentity {
			return "MI " + who.ClientID + " in " + who.TenantID, nil
		}
		return "app " + who.ClientID + " in " + who.TenantID, nil
	}
	return "", fmt.Errorf("unexpected token type %T", t)
}

// demoServiceAccount reads one of the embedded manifests.
func demoServiceAccount(name string) (*corev1.ServiceAccount, error) {
	data, err := demoManifests.ReadFile(path.Join("demo", name))
	if err != nil {
		return nil, err
	}
	m := &manifests{}
	m.parse(name, data)
	if len(m.problems) > 0 || len(m.serviceAccounts) != 1 {
		return nil, fmt.Errorf("demo manifest '%s' must hold one valid ServiceAccount", name)
	}
	return &m.serviceAccounts[0].sa, nil
}

// setEnv applies env to the process and returns what undoes it: the SDKs
// read their configuration from the environment, as in a controller pod.
func setEnv(envs ...map[string]string) (restore func()) {
	type saved struct {
		value string
		ok    bool
	}
	old := map[string]saved{}
	for _, env := range envs {
		for k, v := range env {
			if _, done := old[k]; !done {
				val, ok := os.LookupEnv(k)
				old[k] = saved{val, ok}
			}
			_ = os.Setenv(k, v)
		}
	}
	return func() {
		for k, s := range old {
			if s.ok {
				_ = os.Setenv(k, s.value)
			} else {
				_ = os.Unsetenv(k)
			}
		}
	}
}
