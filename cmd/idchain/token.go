package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"cloud.google.com/go/compute/metadata"
	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	fluxauth "github.com/fluxcd/pkg/auth"
	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/gcp"
)

// tokenResult is what token shows: never the token itself. Its JSON form
// is the -o json contract.
type tokenResult struct {
	Provider       string `json:"provider"`
	ServiceAccount string `json:"serviceAccount,omitempty"`
	Source         string `json:"source"`
	Target         string `json:"target,omitempty"`
	// Identity is who the token belongs to, and VerifiedBy how we know.
	Identity   string    `json:"identity"`
	VerifiedBy string    `json:"verifiedBy"`
	Expires    time.Time `json:"expires"`
}

func (a *app) newTokenCmd() *cobra.Command {
	var f chainFlags
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "token --provider aws|gcp|azure [--namespace NS --service-account SA] [--region R]",
		Short: "Run the chain from this environment and show who it became",
		Long: `Token runs the real chain, exactly as a Flux controller in this environment
would: the source credentials from the environment (EKS Pod Identity, IRSA,
GKE or Azure workload identity) or from the ServiceAccount's token, then the
impersonation its annotation asks for. It prints who the result belongs to
and when it expires. It never prints the token or any secret.

Run it where the controller runs, e.g. with kubectl debug in the
controller's pod, so it has the controller's identity. ServiceAccounts are
read, and their tokens requested, through the kubeconfig (--kubeconfig,
$KUBECONFIG, ~/.kube/config) or the in-cluster configuration.

On AWS the identity is verified with sts:GetCallerIdentity. On GCP and
Azure it is the identity the chain asked for (the controller's own is read
from the metadata server).

Azure impersonation (azure.auth.fluxcd.io/impersonate) needs the scopes the
object's controller asks for, such as --scopes
https://management.azure.com/.default: the library refuses it without.`,
		Example: `  # The controller's own identity
  idchain token --provider aws

  # What an object with .spec.serviceAccountName: my-app in namespace my-app gets
  idchain token --provider aws -n my-app --service-account my-app --region us-east-1

  # The same, as a controller with multi-tenancy lockdown
  idchain token --provider gcp -n my-app --service-account my-app --default-service-account default`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			var kube client.Client
			if f.needsServiceAccount() {
				c, err := a.kube(&f)
				if err != nil {
					return usageError("%w", err)
				}
				kube = c
			}
			p, err := a.providerFor(f.provider)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()

			chain, err := auth.Plan(ctx, p, f.options(kube)...)
			if err != nil {
				return fail(f.explainGate(err))
			}
			token, err := chain.Token(ctx)
			if err != nil {
				return fail(err)
			}
			r := tokenResult{Provider: chain.Provider, Source: chain.Source.String(), Expires: expiry(token)}
			if chain.Source.Kind == auth.SourceServiceAccount {
				r.ServiceAccount = chain.Source.ServiceAccount.String()
			}
			if chain.Impersonation != nil {
				r.Target = chain.Impersonation.Target
				r.ServiceAccount = chain.Impersonation.ServiceAccount.String()
			}
			r.Identity, r.VerifiedBy = whoAmI(ctx, chain, token, &f)

			if f.output == "json" {
				err = writeJSON(a.stdout, r)
			} else {
				err = a.printToken(a.stdout, r)
			}
			if err != nil {
				return fail(err)
			}
			return nil
		},
	}
	f.register(cmd, a.objectLevelDefault)
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up on the chain after this long")
	return cmd
}

// expiry reads the expiry of an upstream token type.
func expiry(t fluxauth.Token) time.Time {
	switch t := t.(type) {
	case *aws.Credentials:
		if t.Expiration != nil {
			return *t.Expiration
		}
	case *gcp.Token:
		return t.Expiry
	case *azure.Token:
		return t.ExpiresOn
	}
	return time.Now().Add(t.GetDuration())
}

// whoAmI says who a token belongs to and how that is known. A failure to
// verify is reported in place of the identity: the token itself is fine.
func whoAmI(ctx context.Context, c *auth.Chain, t fluxauth.Token, f *chainFlags) (identity, how string) {
	planned := func() (string, string) {
		switch {
		case c.Impersonation != nil:
			return c.Impersonation.Target, "the chain plan (the impersonated identity)"
		case c.Source.Kind == auth.SourceServiceAccount && c.Source.Identity != "":
			return c.Source.Identity, "the chain plan (the ServiceAccount's identity annotation)"
		case c.Source.Kind == auth.SourceServiceAccount:
			return "the federated principal of ServiceAccount " + c.Source.ServiceAccount.String(), "the chain plan (direct access)"
		}
		return "the controller identity", "the chain plan"
	}
	switch creds := t.(type) {
	case *aws.Credentials:
		arn, err := callerIdentity(ctx, creds, f)
		if err != nil {
			id, _ := planned()
			return id, "the chain plan; sts:GetCallerIdentity failed: " + err.Error()
		}
		return arn, "sts:GetCallerIdentity"
	case *gcp.Token:
		if c.Impersonation == nil && c.Source.Kind == auth.SourceController {
			email, err := metadata.EmailWithContext(ctx, "default")
			if err != nil {
				return "the controller identity", "the chain plan; the metadata server failed: " + err.Error()
			}
			return email, "the metadata server (the controller pod's Google service account)"
		}
	case *azure.Token:
		if id := os.Getenv("AZURE_CLIENT_ID"); id != "" && c.Source.Kind == auth.SourceController {
			return "client " + id, "AZURE_CLIENT_ID of this environment"
		}
	}
	return planned()
}

// callerIdentity asks STS whose credentials creds are, configured from the
// environment like the SDK does (AWS_REGION, AWS_ENDPOINT_URL_STS, proxy).
func callerIdentity(ctx context.Context, creds *aws.Credentials, f *chainFlags) (string, error) {
	static := credentials.NewStaticCredentialsProvider(awssdk.ToString(creds.AccessKeyId),
		awssdk.ToString(creds.SecretAccessKey), awssdk.ToString(creds.SessionToken))
	loadOpts := []func(*config.LoadOptions) error{config.WithCredentialsProvider(static)}
	if f.region != "" {
		loadOpts = append(loadOpts, config.WithRegion(f.region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return "", err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // any region answers GetCallerIdentity
	}
	out, err := sts.NewFromConfig(cfg, func(o *sts.Options) {
		if f.stsEndpoint != "" {
			o.BaseEndpoint = &f.stsEndpoint
		}
	}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", err
	}
	return awssdk.ToString(out.Arn), nil
}

func (a *app) printToken(w io.Writer, r tokenResult) error {
	s := a.style()
	t := table{}
	t.add(nil, "Provider:", r.Provider)
	if r.ServiceAccount != "" {
		t.add(nil, "ServiceAccount:", r.ServiceAccount)
	}
	t.add(nil, "Source:", r.Source)
	if r.Target != "" {
		t.add(nil, "Target:", r.Target)
	}
	t.add(s.green, "Became:", r.Identity)
	t.add(nil, "Verified by:", r.VerifiedBy)
	left := time.Until(r.Expires).Truncate(time.Second)
	t.add(nil, "Expires:", fmt.Sprintf("%s (in %s)", r.Expires.UTC().Format(time.RFC3339), left))
	return t.write(w, s)
}
