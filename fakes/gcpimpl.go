package fakes

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"

	"github.com/fluxcd/pkg/auth/gcp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/google/externalaccount"
	"google.golang.org/api/container/v1"
)

// Hosts that upstream hard-codes and GCPImplementation redirects.
const (
	gcpSTSHost = "sts.googleapis.com"
	gcpIAMHost = "iamcredentials.googleapis.com"
)

// gkeBasePath is the base path of the container API client upstream makes.
const gkeBasePath = "https://container.googleapis.com/"

// ErrGCPNotFaked is returned by GCPImplementation.GetCluster when no fake
// GKE was wired in with WithGKE. Tests can instead pass the cluster address
// and CA (auth.WithClusterAddress, auth.WithCAData), which keep upstream
// from asking.
var ErrGCPNotFaked = errors.New("the GKE container API is not faked: wire a fake in with WithGKE, or pass the cluster address and CA data to skip GetCluster")

var _ gcp.Implementation = (*GCPImplementation)(nil)

// GCPImplementation implements github.com/fluxcd/pkg/auth/gcp.Implementation
// with the real Google libraries pointed at the fakes:
//
//   - DefaultTokenSource is google.DefaultTokenSource, which reaches the fake
//     Metadata through GCE_METADATA_HOST (see GCPEnv). It refuses to run when
//     that variable is unset or a credentials file would be used instead, so
//     a test can never fetch real credentials.
//   - NewTokenSource is externalaccount.NewTokenSource with the STS token URL,
//     the token info URL and the impersonation URL moved from
//     sts.googleapis.com and iamcredentials.googleapis.com to the fakes, path
//     kept. Any other host is refused rather than called.
//   - GetCluster calls clusters.get with the client upstream made, its
//     base path moved to the fake GKE wired in with WithGKE, and returns
//     ErrGCPNotFaked without one.
//
// GCPImplementation is immutable and safe for concurrent use.
type GCPImplementation struct {
	sts *GCPSTS
	iam *GCPIAMCredentials
	gke *GKE
}

// NewGCPImplementation returns an implementation that exchanges at sts and
// impersonates at iam. Both are required.
func NewGCPImplementation(sts *GCPSTS, iam *GCPIAMCredentials) *GCPImplementation {
	return &GCPImplementation{sts: sts, iam: iam}
}

// IAMCredentialsEndpoint is the endpoint for the library's own
// iamcredentials/v1 client (option.WithEndpoint); the trailing slash is
// required because the client resolves "v1/..." against it.
func (g *GCPImplementation) IAMCredentialsEndpoint() string {
	return g.iam.URL + "/"
}

// DefaultTokenSource implements gcp.Implementation.
func (g *GCPImplementation) DefaultTokenSource(ctx context.Context, scope ...string) (oauth2.TokenSource, error) {
	if os.Getenv("GCE_METADATA_HOST") == "" {
		return nil, errors.New("failed to find the fake metadata server: GCE_METADATA_HOST is not set. apply fakes.GCPEnv first")
	}
	if f := os.Getenv("GOOGLE_APPLICATION_CREDENTIALS"); f != "" {
		return nil, fmt.Errorf("refusing to use credentials file '%s' from GOOGLE_APPLICATION_CREDENTIALS: apply fakes.GCPEnv first", f)
	}
	if f := gcpWellKnownFile(); f != "" {
		if _, err := os.Stat(f); err == nil {
			return nil, fmt.Errorf("refusing to use gcloud credentials file '%s': apply fakes.GCPEnv first", f)
		}
	}
	return google.DefaultTokenSource(ctx, scope...)
}

// NewTokenSource implements gcp.Implementation.
func (g *GCPImplementation) NewTokenSource(ctx context.Context, conf externalaccount.Config) (oauth2.TokenSource, error) {
	var err error
	if conf.TokenURL, err = gcpRedirect(conf.TokenURL, gcpSTSHost, g.sts.URL, "/v1/token"); err != nil {
		return nil, fmt.Errorf("failed to redirect the STS token URL: %w", err)
	}
	if conf.TokenInfoURL != "" {
		if conf.TokenInfoURL, err = gcpRedirect(conf.TokenInfoURL, gcpSTSHost, g.sts.URL, ""); err != nil {
			return nil, fmt.Errorf("failed to redirect the STS token info URL: %w", err)
		}
	}
	if conf.ServiceAccountImpersonationURL != "" {
		if conf.ServiceAccountImpersonationURL, err = gcpRedirect(conf.ServiceAccountImpersonationURL, gcpIAMHost, g.iam.URL, ""); err != nil {
			return nil, fmt.Errorf("failed to redirect the service account impersonation URL: %w", err)
		}
	}
	return externalaccount.NewTokenSource(ctx, conf)
}

// WithGKE returns a copy of g whose GetCluster asks k.
func (g *GCPImplementation) WithGKE(k *GKE) *GCPImplementation {
	c := *g
	c.gke = k
	return &c
}

// GetCluster implements gcp.Implementation. It moves client, which upstream
// makes for this one call, from container.googleapis.com to the fake GKE,
// keeping its HTTP client and so the bearer token upstream gave it; a
// client pointed anywhere else is refused rather than called.
func (g *GCPImplementation) GetCluster(ctx context.Context, cluster string, client *container.Service) (*container.Cluster, error) {
	if g.gke == nil {
		return nil, ErrGCPNotFaked
	}
	if client == nil || client.BasePath != gkeBasePath {
		return nil, fmt.Errorf("unexpected container API client: only %s is faked", gkeBasePath)
	}
	client.BasePath = g.gke.URL + "/"
	return client.Projects.Locations.Clusters.Get(cluster).Context(ctx).Do()
}

// gcpRedirect moves raw from https://<host> to base, keeping path and query.
// An empty raw means the library default, which is defaultPath on host.
// externalaccount does not validate these URLs (it documents that it
// trusts them), so plain http to loopback works.
func gcpRedirect(raw, host, base, defaultPath string) (string, error) {
	if raw == "" {
		return base + defaultPath, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("invalid URL: %w", err)
	}
	if u.Scheme != "https" || u.Host != host {
		return "", fmt.Errorf("unexpected URL '%s': only https://%s is faked", raw, host)
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("invalid fake URL '%s': %w", base, err)
	}
	u.Scheme, u.Host = b.Scheme, b.Host
	return u.String(), nil
}

// gcpWellKnownFile mirrors golang.org/x/oauth2/google's lookup of gcloud's
// application default credentials, which outranks the metadata server.
func gcpWellKnownFile() string {
	const f = "application_default_credentials.json"
	if runtime.GOOS == "windows" {
		return filepath.Join(os.Getenv("APPDATA"), "gcloud", f)
	}
	home := os.Getenv("HOME")
	if home == "" {
		return ""
	}
	return filepath.Join(home, ".config", "gcloud", f)
}
