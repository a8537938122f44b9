package gcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/google/externalaccount"
	"google.golang.org/api/container/v1"
)

// defaultImplementation is the real Google libraries, what upstream uses
// when given no Implementation; upstream does not export its own.
type defaultImplementation struct{}

func (defaultImplementation) DefaultTokenSource(ctx context.Context, scope ...string) (oauth2.TokenSource, error) {
	return google.DefaultTokenSource(ctx, scope...)
}

func (defaultImplementation) NewTokenSource(ctx context.Context, conf externalaccount.Config) (oauth2.TokenSource, error) {
	return externalaccount.NewTokenSource(ctx, conf)
}

func (defaultImplementation) GetCluster(ctx context.Context, cluster string, client *container.Service) (*container.Cluster, error) {
	return client.Projects.Locations.Clusters.Get(cluster).Context(ctx).Do()
}

// IAMCredentialsEndpoint is empty: the client's default endpoint.
func (defaultImplementation) IAMCredentialsEndpoint() string { return "" }

// retryingImplementation hands the token sources upstream creates an HTTP
// client that retries (see retry.go). Upstream puts its proxy-aware client
// into the context under oauth2.HTTPClient; the Google STS exchange of
// externalaccount, and the impersonation and credential-file sources behind
// google.DefaultTokenSource, all take it from there. The metadata server
// path of google.DefaultTokenSource uses a client of its own, which retries
// by itself. GetCluster is not retried, it is not a token endpoint, but its
// reply is checked.
type retryingImplementation struct {
	Implementation
}

func (i retryingImplementation) DefaultTokenSource(ctx context.Context, scope ...string) (oauth2.TokenSource, error) {
	return i.Implementation.DefaultTokenSource(withRetries(ctx), scope...)
}

func (i retryingImplementation) NewTokenSource(ctx context.Context, conf externalaccount.Config) (oauth2.TokenSource, error) {
	return i.Implementation.NewTokenSource(withRetries(ctx), conf)
}

// ErrIncompleteCluster is returned when GKE describes a cluster without the
// endpoint or the CA a REST config needs, as it does while the cluster is
// being created. Upstream would dereference the missing CA.
var ErrIncompleteCluster = errors.New("GKE described the cluster without an endpoint or CA certificate")

func (i retryingImplementation) GetCluster(ctx context.Context, cluster string,
	client *container.Service) (*container.Cluster, error) {
	c, err := i.Implementation.GetCluster(ctx, cluster, client)
	if err != nil {
		return nil, err
	}
	if c == nil || c.Endpoint == "" || c.MasterAuth == nil || c.MasterAuth.ClusterCaCertificate == "" {
		status := "unknown"
		if c != nil && c.Status != "" {
			status = c.Status
		}
		return nil, fmt.Errorf("%w (status %s): wait until the cluster is RUNNING, or set the address and CA "+
			"data on the object", ErrIncompleteCluster, status)
	}
	return c, nil
}

// withRetries returns ctx with its oauth2.HTTPClient replaced by a copy
// whose transport retries; oauth2's default client when there is none.
func withRetries(ctx context.Context) context.Context {
	hc, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if hc == nil {
		hc = http.DefaultClient
	}
	c := *hc
	c.Transport = retrying(hc.Transport)
	return context.WithValue(ctx, oauth2.HTTPClient, &c)
}
