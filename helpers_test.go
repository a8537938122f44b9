package auth_test

import (
	"context"
	"os"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	fluxauth "github.com/fluxcd/pkg/auth"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

const (
	region         = "us-east-1"
	controllerRole = "arn:aws:iam::111111111111:role/flux-controller"
	sourceRole     = "arn:aws:iam::111111111111:role/source-account-role"
	targetRole     = "arn:aws:iam::222222222222:role/target-account-role"
)

func TestMain(m *testing.M) {
	// Object-level workload identity is opt-in upstream; the tests that need
	// it off turn it off and back on, sequentially.
	fluxauth.EnableObjectLevelWorkloadIdentity()
	goleak.VerifyTestMain(m)
}

// loadServiceAccount reads a ServiceAccount manifest from testdata.
func loadServiceAccount(t *testing.T, name string) *corev1.ServiceAccount {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var sa corev1.ServiceAccount
	if err := yaml.UnmarshalStrict(b, &sa); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &sa
}

// awsWorld is a fake AWS: STS, the Kubernetes token issuer it trusts, and a
// provider that points the real SDK at it.
type awsWorld struct {
	issuer   *fakes.Issuer
	sts      *fakes.AWSSTS
	provider aws.Provider
}

func newAWSWorld(t *testing.T) *awsWorld {
	t.Helper()
	issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	s := fakes.StartAWSSTS(fakes.AWSSTSOptions{Issuer: issuer})
	t.Cleanup(s.Close)
	return &awsWorld{issuer: issuer, sts: s, provider: aws.Provider{Implementation: s.Implementation()}}
}

// setEnv applies env for the rest of the test (so the test cannot be parallel).
func setEnv(t *testing.T, env map[string]string) {
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// podIdentity makes the controller's own credentials come from a fake EKS
// Pod Identity agent for controllerRole.
func (w *awsWorld) podIdentity(t *testing.T) *fakes.PodIdentityAgent {
	t.Helper()
	agent, err := fakes.StartPodIdentityAgent(w.sts, controllerRole)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Close)
	setEnv(t, fakes.PodIdentityEnv(t.TempDir(), region, agent))
	return agent
}

// whoAmI asks the fake STS which role creds belong to, with the real SDK.
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
	out, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	return *out.Arn
}

// applyOptions applies opts to o in order, as every call of the library does.
func applyOptions(o *auth.Options, opts ...auth.Option) {
	for _, opt := range opts {
		opt(o)
	}
}
