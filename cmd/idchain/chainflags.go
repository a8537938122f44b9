package main

import (
	"errors"
	"fmt"

	fluxauth "github.com/fluxcd/pkg/auth"
	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/gcp"
)

// chainFlags are the inputs of a chain, shared by explain and token: the
// same options a Flux controller passes to the library.
type chainFlags struct {
	provider       string
	namespace      string
	serviceAccount string
	kubeconfig     string
	defaultSA      string
	region         string
	stsEndpoint    string
	scopes         []string
	audiences      []string
	objectLevel    bool
	output         string
}

func (f *chainFlags) register(cmd *cobra.Command, objectLevelDefault bool) {
	fs := cmd.Flags()
	fs.StringVar(&f.provider, "provider", "", "cloud provider: aws, gcp or azure (required)")
	fs.StringVarP(&f.namespace, "namespace", "n", "",
		"namespace of the Flux object (default: the kubeconfig context's namespace)")
	fs.StringVar(&f.serviceAccount, "service-account", "",
		"the object's .spec.serviceAccountName; empty means the controller's own identity")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "",
		"kubeconfig to read ServiceAccounts with (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
	fs.StringVar(&f.defaultSA, "default-service-account", "",
		"turn on multi-tenancy lockdown with this default ServiceAccount, as the controllers' flag of the same name")
	fs.StringVar(&f.region, "region", "", "AWS STS region, the object's .spec region (required for AWS impersonation)")
	fs.StringVar(&f.stsEndpoint, "sts-endpoint", "", "AWS STS endpoint, the object's .spec.sts.endpoint")
	fs.StringSliceVar(&f.scopes, "scopes", nil, "scopes of the token (GCP defaults to cloud-platform; required for Azure impersonation)")
	fs.StringSliceVar(&f.audiences, "audiences", nil,
		"audiences of the ServiceAccount token (default: the provider's)")
	fs.BoolVar(&f.objectLevel, "object-level-workload-identity", objectLevelDefault,
		"the controllers' ObjectLevelWorkloadIdentity feature gate (off by default, as in the controllers); "+
			"without it every ServiceAccount is refused")
	fs.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
}

// validate checks what pflag cannot, before anything is read.
func (f *chainFlags) validate() error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	switch f.provider {
	case aws.ProviderName, gcp.ProviderName, azure.ProviderName:
	case "":
		return usageError("--provider is required: aws, gcp or azure")
	default:
		return usageError("invalid provider '%s': must be aws, gcp or azure", f.provider)
	}
	if f.stsEndpoint != "" && f.provider == aws.ProviderName {
		if err := aws.ValidateSTSEndpoint(f.stsEndpoint); err != nil {
			return usageError("%w", err)
		}
	}
	return nil
}

// needsServiceAccount reports whether the chain reads a ServiceAccount, and
// so needs a Kubernetes client.
func (f *chainFlags) needsServiceAccount() bool {
	return f.serviceAccount != "" || f.defaultSA != ""
}

// options are the library options a controller would pass for these flags.
func (f *chainFlags) options(kube client.Client) []auth.Option {
	setObjectLevelWorkloadIdentity(f.objectLevel)
	opts := []auth.Option{
		auth.WithServiceAccountNamespace(f.namespace),
		auth.WithServiceAccountName(f.serviceAccount),
	}
	if kube != nil {
		opts = append(opts, auth.WithClient(kube))
	}
	if f.defaultSA != "" {
		opts = append(opts, auth.WithDefaultServiceAccount(f.defaultSA))
	}
	if f.region != "" {
		opts = append(opts, auth.WithSTSRegion(f.region))
	}
	if f.stsEndpoint != "" {
		opts = append(opts, auth.WithSTSEndpoint(f.stsEndpoint))
	}
	if len(f.scopes) > 0 {
		opts = append(opts, auth.WithScopes(f.scopes...))
	}
	if len(f.audiences) > 0 {
		opts = append(opts, auth.WithAudiences(f.audiences...))
	}
	return opts
}

// providerFor returns the provider a name stands for: the real one, whose
// zero value is ready to use, unless a test injected another.
func (a *app) providerFor(name string) (auth.Provider, error) {
	if a.provider != nil {
		return a.provider(name)
	}
	switch name {
	case aws.ProviderName:
		return aws.Provider{}, nil
	case gcp.ProviderName:
		return gcp.Provider{}, nil
	case azure.ProviderName:
		return azure.Provider{}, nil
	}
	return nil, usageError("invalid provider '%s': must be aws, gcp or azure", name)
}

// kube returns the client that reads ServiceAccounts and requests their
// tokens, and fills the namespace from the kubeconfig context when the
// flags name none, as kubectl does.
func (a *app) kube(f *chainFlags) (client.Client, error) {
	if a.kubeClient != nil {
		return a.kubeClient, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	if f.namespace == "" {
		ns, _, err := cc.Namespace()
		if err != nil {
			return nil, fmt.Errorf("failed to read the namespace from the kubeconfig: %w", err)
		}
		f.namespace = ns
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("failed to load the kubeconfig (use --kubeconfig, or -f for explain): %w", err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, fmt.Errorf("failed to create the Kubernetes client: %w", err)
	}
	return c, nil
}

// explainGate adds to a refusal by the feature gate that the gate, not the
// ServiceAccount, decided it, and how to explain a controller that runs
// with the gate on.
func (f *chainFlags) explainGate(err error) error {
	if f.objectLevel || !errors.Is(err, fluxauth.ErrObjectLevelWorkloadIdentityNotEnabled) {
		return err
	}
	return fmt.Errorf("%w (idchain: the gate decided this; it is off unless the controller runs with "+
		"--feature-gates=%s=true: then pass --object-level-workload-identity)",
		err, fluxauth.FeatureGateObjectLevelWorkloadIdentity)
}

// setObjectLevelWorkloadIdentity sets the upstream feature gate, which is
// process-wide, so the command line, not an earlier call, decides. It
// writes only on a change: concurrent commands (tests) that agree on the
// gate then only read it.
func setObjectLevelWorkloadIdentity(on bool) {
	switch {
	case on && !fluxauth.IsObjectLevelWorkloadIdentityEnabled():
		fluxauth.EnableObjectLevelWorkloadIdentity()
	case !on && fluxauth.IsObjectLevelWorkloadIdentityEnabled():
		fluxauth.DisableObjectLevelWorkloadIdentity()
	}
}
