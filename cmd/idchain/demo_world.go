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

	aws aws.Provider
	gcp gcp.Provider

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
	return w, nil
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
}

func (w *demoWorld) tally() tally {
	return tally{
		podIdentity:   w.agent.Requests(),
		webIdentity:   int64(w.sts.Count("AssumeRoleWithWebIdentity")),
		assumeRole:    int64(w.sts.Count("AssumeRole")),
		metadataToken: w.metadata.Requests("instance/service-accounts/default/token"),
		googleSTS:     w.googleSTS.Exchanges(),
		iam:           int64(w.iam.Count()),
	}
}

func (t tally) minus(o tally) tally {
	return tally{t.podIdentity - o.podIdentity, t.webIdentity - o.webIdentity, t.assumeRole - o.assumeRole,
		t.metadataToken - o.metadataToken, t.googleSTS - o.googleSTS, t.iam - o.iam}
}

func (t tally) total() int64 {
	return t.podIdentity + t.webIdentity + t.assumeRole + t.metadataToken + t.googleSTS + t.iam
}

func (t tally) String() string {
	var parts []string
	for _, c := range []struct {
		name string
		n    int64
	}{
		{"PodIdentity", t.podIdentity}, {"AssumeRoleWithWebIdentity", t.webIdentity}, {"AssumeRole", t.assumeRole},
		{"metadata token", t.metadataToken}, {"STS exchange", t.googleSTS}, {"generateAccessToken", t.iam},
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
	if provider == aws.ProviderName {
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

// owner asks the fake cloud whose token t is, as GetCallerIdentity (AWS)
// or the IAM fake's own records (GCP) tell.
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
