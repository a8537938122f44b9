//go:build integration

package integration

import (
	"context"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	fluxauth "github.com/fluxcd/pkg/auth"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

// The identities of the proposal's cases, as in the unit tests.
const (
	region         = "us-east-1"
	controllerRole = "arn:aws:iam::111111111111:role/flux-controller"
	sourceRole     = "arn:aws:iam::111111111111:role/source-account-role"
	targetRole     = "arn:aws:iam::222222222222:role/target-account-role"

	gkeProject    = "flux-project"
	gkeAudience   = "identitynamespace:flux-project.svc.id.goog:https://container.googleapis.com/v1/projects/flux-project/locations/us-central1/clusters/flux"
	controllerGSA = "flux-controller@flux-project.iam.gserviceaccount.com"
	sourceGSA     = "source-sa@source-project.iam.gserviceaccount.com"
	targetGSA     = "target-sa@target-project.iam.gserviceaccount.com"
	cloudPlatform = "https://www.googleapis.com/auth/cloud-platform"
)

// awsWorld is a fake AWS whose STS trusts the API server's tokens. Its
// controller identity is set per instance, not through the environment, so
// AWS tests run in parallel.
type awsWorld struct {
	sts *fakes.AWSSTS
	// agent is the controller's EKS Pod Identity agent, for controllerRole.
	agent    *fakes.PodIdentityAgent
	provider aws.Provider
}

// newAWSWorld starts a fake AWS whose controller identity is EKS Pod
// Identity for controllerRole.
func newAWSWorld(t *testing.T) *awsWorld {
	t.Helper()
	s := fakes.StartAWSSTS(fakes.AWSSTSOptions{Issuer: issuer})
	t.Cleanup(s.Close)
	agent, err := fakes.StartPodIdentityAgent(s, controllerRole)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Close)
	return &awsWorld{sts: s, agent: agent, provider: aws.Provider{Implementation: s.ImplementationAs(agent.Credentials())}}
}

// irsa makes the controller's identity IRSA for controllerRole instead,
// with a token of flux-system/source-controller minted by the API server's
// TokenRequest API, as EKS projects it into the controller's pod.
func (w *awsWorld) irsa(t *testing.T) {
	t.Helper()
	tr := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		Audiences: []string{"sts.amazonaws.com"}, ExpirationSeconds: ptr.To[int64](3600),
	}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "source-controller"}}
	if err := admin.SubResource("token").Create(context.Background(), sa, tr); err != nil {
		t.Fatalf("failed to request the controller's IRSA token: %v", err)
	}
	w.sts.AllowWebIdentity(controllerRole, "flux-system", "source-controller")
	w.provider = aws.Provider{Implementation: w.sts.ImplementationAs(
		w.sts.WebIdentityCredentials(controllerRole, fakes.StaticIdentityToken(tr.Status.Token)))}
}

// whoAmI asks the fake STS whose credentials token holds, with the real SDK.
func (w *awsWorld) whoAmI(t *testing.T, token fluxauth.Token) string {
	t.Helper()
	creds, ok := token.(*aws.Credentials)
	if !ok {
		t.Fatalf("token is %T, want *aws.Credentials", token)
	}
	client := sts.New(sts.Options{
		Region:       region,
		BaseEndpoint: &w.sts.URL,
		Credentials: awssdk.NewCredentialsCache(awssdk.CredentialsProviderFunc(func(context.Context) (awssdk.Credentials, error) {
			return awssdk.Credentials{
				AccessKeyID:     *creds.AccessKeyId,
				SecretAccessKey: *creds.SecretAccessKey,
				SessionToken:    *creds.SessionToken,
			}, nil
		})),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	return *out.Arn
}

// targetSession is the identity STS reports for the target role assumed
// for the ServiceAccount ns/my-app.
func targetSession(ns string) string {
	return "arn:aws:sts::222222222222:assumed-role/target-account-role/" + sessionName(ns)
}

// sessionName is the role session name of ns/my-app.
func sessionName(ns string) string { return ns + ".my-app.fluxcd.io" }

// gcpWorld is a fake GCP (metadata server, Google STS trusting the API
// server's tokens, IAM Credentials) for a GKE cluster.
type gcpWorld struct {
	iam      *fakes.GCPIAMCredentials
	sts      *fakes.GCPSTS
	metadata *fakes.GCPMetadata
	provider gcp.Provider
}

// newGCPWorld starts a fake GCP found through the environment, as upstream
// finds GKE's metadata (project, location, cluster) for object-level
// workload identity: such tests cannot run in parallel.
func newGCPWorld(t *testing.T) *gcpWorld {
	t.Helper()
	w := startGCP(t)
	setEnv(t, fakes.GCPEnv(t.TempDir(), w.metadata))
	w.provider = gcp.Provider{Implementation: fakes.NewGCPImplementation(w.sts, w.iam)}
	return w
}

// newGCPController starts a fake GCP whose controller identity is set per
// instance, for controller-level tests, which can run in parallel.
func newGCPController(t *testing.T) *gcpWorld {
	t.Helper()
	w := startGCP(t)
	w.provider = gcp.Provider{Implementation: fakes.NewGCPControllerImplementation(w.sts, w.iam, w.metadata)}
	return w
}

func startGCP(t *testing.T) *gcpWorld {
	t.Helper()
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	s := fakes.StartGCPSTS(fakes.GCPSTSOptions{Issuer: issuer, IAM: iam})
	t.Cleanup(s.Close)
	s.AllowAudience(gkeAudience)
	md := fakes.StartGCPMetadata(fakes.GCPMetadataOptions{
		ProjectID: gkeProject, ClusterLocation: "us-central1", ClusterName: "flux",
		ServiceAccountEmail: controllerGSA, IAM: iam,
	})
	t.Cleanup(md.Close)
	return &gcpWorld{iam: iam, sts: s, metadata: md}
}

func (w *gcpWorld) whoAmI(t *testing.T, token fluxauth.Token) string {
	t.Helper()
	tok, ok := token.(*gcp.Token)
	if !ok {
		t.Fatalf("token is %T, want *gcp.Token", token)
	}
	who, ok := w.iam.WhoAmI(tok.AccessToken)
	if !ok {
		t.Fatal("the returned token was not issued by the fake IAM Credentials")
	}
	return who
}
