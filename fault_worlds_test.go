package auth_test

import (
	"os"
	"strings"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	fluxauth "github.com/fluxcd/pkg/auth"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

// The worlds of the fault tests: one chain, source → impersonation, per hop
// that a fault can hit. Each world is fresh, so the fakes' counters start
// at zero, and the hop under test is the only one a fault is injected into.

// faultHop is one hop of a chain that faults are driven through.
type faultHop struct {
	name string
	// env is set when the world sets process environment (t.Setenv): its
	// cases run one at a time.
	env bool
	// impersonation is set when the hop is the impersonation hop, reached
	// after a source hop that succeeds; otherwise it is the source hop.
	impersonation bool
	start         func(t *testing.T) *faultWorld
}

// faultWorld is a world of fakes with a chain whose hop under test can be
// made to fail.
type faultWorld struct {
	provider auth.Provider
	opts     []auth.Option
	// inject injects f into the hop under test only.
	inject func(f fakes.Fault) *fakes.InjectedFault
	// requests is how many HTTP requests reached the world's fakes, faulted
	// ones included.
	requests func() int
	// served is how many requests of the hop under test the fake handled
	// and answered with credentials, bad successes included; nil for the
	// hops whose fakes keep no record of them (Pod Identity, metadata).
	served func() int
	// check fails t unless token is the target's and was issued by the
	// fakes, and returns the secrets it holds.
	check func(t *testing.T, token fluxauth.Token) []string
	// secrets the world handed out that are in no token: the Pod Identity
	// agent's authorization token, a projected token.
	secrets []string
}

const (
	podIdentityPath   = "/v1/credentials"
	metadataTokenPath = "/computeMetadata/v1/instance/service-accounts/default/token"
	googleSTSPath     = "/v1/token"
	// wipProvider is a workload identity provider outside GKE, and
	// wipAudience its audience: with it, the GCP chain reads no metadata,
	// so it needs no process environment.
	wipProvider = "projects/123456789012/locations/global/workloadIdentityPools/flux/providers/k8s"
	wipAudience = "//iam.googleapis.com/" + wipProvider
	targetWho   = "arn:aws:sts::222222222222:assumed-role/target-account-role/my-app.my-app.fluxcd.io"
)

var iamTargetPath = "/v1/projects/-/serviceAccounts/" + targetGSA + ":generateAccessToken"

var (
	awsPodIdentityHop = &faultHop{name: "aws pod identity", env: true, start: func(t *testing.T) *faultWorld {
		w := newAWSWorld(t)
		agent := w.podIdentity(t)
		w.sts.AllowAssumeRole(controllerRole, targetRole)
		kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-pod-identity.yaml"))
		return w.faultWorld(kube, func(f fakes.Fault) *fakes.InjectedFault {
			return agent.InjectFault(f.OnlyFor(podIdentityPath))
		}, func() int { return agent.Attempts() + w.sts.Attempts() }, readFile(t, agent.TokenFile()))
	}}

	// awsControllerIRSAHop is the controller's IRSA: stscreds' web identity
	// provider, through the SDK's default chain.
	awsControllerIRSAHop = &faultHop{name: "aws controller irsa", env: true, start: func(t *testing.T) *faultWorld {
		w := newAWSWorld(t)
		env, err := fakes.IRSAEnv(t.TempDir(), region, w.sts, w.issuer, controllerRole, "flux-system", "source-controller")
		if err != nil {
			t.Fatal(err)
		}
		setEnv(t, env)
		w.sts.AllowWebIdentity(controllerRole, "flux-system", "source-controller")
		w.sts.AllowAssumeRole(controllerRole, targetRole)
		kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-controller-irsa.yaml"))
		return w.faultWorld(kube, func(f fakes.Fault) *fakes.InjectedFault {
			return w.sts.InjectFault(f.OnlyFor("AssumeRoleWithWebIdentity"))
		}, w.sts.Attempts, readFile(t, env["AWS_WEB_IDENTITY_TOKEN_FILE"]))
	}}

	awsWebIdentityHop = &faultHop{name: "aws web identity", start: func(t *testing.T) *faultWorld {
		return newObjectIRSAWorld(t).faultWorld("AssumeRoleWithWebIdentity")
	}}

	awsAssumeRoleHop = &faultHop{name: "aws assume role", impersonation: true, start: func(t *testing.T) *faultWorld {
		return newObjectIRSAWorld(t).faultWorld("AssumeRole")
	}}

	gcpMetadataHop = &faultHop{name: "gcp metadata", env: true, start: func(t *testing.T) *faultWorld {
		w := newGCPWorld(t)
		w.iam.AllowImpersonation(controllerGSA, targetGSA)
		kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "gcp-controller-wif.yaml"))
		return gcpFaultWorld(w.provider, w.iam, kube, func(f fakes.Fault) *fakes.InjectedFault {
			return w.metadata.InjectFault(f.OnlyFor(metadataTokenPath))
		}, func() int {
			return int(w.metadata.Requests(strings.TrimPrefix(metadataTokenPath, "/computeMetadata/v1/"))) + w.sts.Attempts() + w.iam.Attempts()
		})
	}}

	gcpGoogleSTSHop = &faultHop{name: "gcp google sts", start: func(t *testing.T) *faultWorld {
		w := newWIFWorld(t)
		return w.faultWorld(func(f fakes.Fault) *fakes.InjectedFault {
			return w.sts.InjectFault(f.OnlyFor(googleSTSPath))
		}, func() int { return int(w.sts.Exchanges()) })
	}}

	gcpIAMHop = &faultHop{name: "gcp iam credentials", impersonation: true, start: func(t *testing.T) *faultWorld {
		w := newWIFWorld(t)
		return w.faultWorld(func(f fakes.Fault) *fakes.InjectedFault {
			return w.iam.InjectFault(f.OnlyFor(iamTargetPath))
		}, func() int {
			n := 0
			for _, c := range w.iam.Calls() {
				if c.Err == "" {
					n++
				}
			}
			return n
		})
	}}

	faultHops = []*faultHop{awsPodIdentityHop, awsControllerIRSAHop, awsWebIdentityHop, awsAssumeRoleHop, gcpMetadataHop, gcpGoogleSTSHop, gcpIAMHop}
)

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// objectIRSAWorld is object-level IRSA to the target: the ServiceAccount's
// token for sourceRole (AssumeRoleWithWebIdentity), then AssumeRole, both
// at one fake STS, and no process environment.
type objectIRSAWorld struct {
	*awsWorld
	kube *fakes.KubeClient
}

func newObjectIRSAWorld(t *testing.T) *objectIRSAWorld {
	w := newAWSWorld(t)
	w.sts.AllowWebIdentity(sourceRole, "my-app", "my-app")
	w.sts.AllowAssumeRole(sourceRole, targetRole)
	return &objectIRSAWorld{awsWorld: w, kube: fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-object-irsa.yaml"))}
}

// faultWorld is the world with faults injected into action.
func (w *objectIRSAWorld) faultWorld(action string) *faultWorld {
	fw := w.awsWorld.faultWorld(w.kube, func(f fakes.Fault) *fakes.InjectedFault {
		return w.sts.InjectFault(f.OnlyFor(action))
	}, w.sts.Attempts)
	fw.served = func() int {
		n := 0
		for _, c := range w.sts.Calls() {
			if c.Action == action && c.Err == "" {
				n++
			}
		}
		return n
	}
	return fw
}

func (w *awsWorld) faultWorld(kube *fakes.KubeClient, inject func(fakes.Fault) *fakes.InjectedFault,
	requests func() int, secrets ...string) *faultWorld {
	return &faultWorld{
		provider: w.provider,
		opts:     myAppOptions(kube, auth.WithSTSRegion(region)),
		inject:   inject,
		requests: requests,
		secrets:  secrets,
		check: func(t *testing.T, token fluxauth.Token) []string {
			t.Helper()
			if who := w.whoAmI(t, token); who != targetWho {
				t.Fatalf("the token is for %q, want %q", who, targetWho)
			}
			c := token.(*aws.Credentials)
			return []string{awssdk.ToString(c.AccessKeyId), awssdk.ToString(c.SecretAccessKey), awssdk.ToString(c.SessionToken)}
		},
	}
}

// wifWorld is object-level workload identity federation outside GKE: the
// ServiceAccount's token exchanged at Google STS for wipAudience (direct
// access), whose federated token impersonates the target. It reads no
// metadata and sets no process environment.
type wifWorld struct {
	issuer *fakes.Issuer
	iam    *fakes.GCPIAMCredentials
	sts    *fakes.GCPSTS
	kube   *fakes.KubeClient
}

func newWIFWorld(t *testing.T) *wifWorld {
	t.Helper()
	issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	sts := fakes.StartGCPSTS(fakes.GCPSTSOptions{Issuer: issuer, IAM: iam})
	t.Cleanup(sts.Close)
	sts.AllowAudience(wipAudience)
	iam.AllowImpersonation(fakes.FederatedPrincipal(wipAudience, fakes.ServiceAccountSubject("my-app", "my-app")), targetGSA)
	kube := fakes.NewKubeClient(issuer, tenantSA("my-app", "my-app", map[string]string{
		gcp.WorkloadIdentityProviderAnnotation: wipProvider,
		gcp.ImpersonateAnnotation:              "gcpServiceAccount: " + targetGSA + "\nuseServiceAccount: true",
	}))
	return &wifWorld{issuer: issuer, iam: iam, sts: sts, kube: kube}
}

func (w *wifWorld) faultWorld(inject func(fakes.Fault) *fakes.InjectedFault, served func() int) *faultWorld {
	provider := gcp.Provider{Implementation: fakes.NewGCPImplementation(w.sts, w.iam)}
	fw := gcpFaultWorld(provider, w.iam, w.kube, inject, func() int { return w.sts.Attempts() + w.iam.Attempts() })
	fw.served = served
	return fw
}

func gcpFaultWorld(provider gcp.Provider, iam *fakes.GCPIAMCredentials, kube *fakes.KubeClient,
	inject func(fakes.Fault) *fakes.InjectedFault, requests func() int) *faultWorld {
	return &faultWorld{
		provider: provider,
		opts:     myAppOptions(kube),
		inject:   inject,
		requests: requests,
		check: func(t *testing.T, token fluxauth.Token) []string {
			t.Helper()
			tok, ok := token.(*gcp.Token)
			if !ok {
				t.Fatalf("token is %T, want *gcp.Token", token)
			}
			if who, ok := iam.WhoAmI(tok.AccessToken); !ok || who != targetGSA {
				t.Fatalf("the token is for %q (issued by the fake: %t), want %q", who, ok, targetGSA)
			}
			return []string{tok.AccessToken}
		},
	}
}
