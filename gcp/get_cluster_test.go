package gcp_test

import (
	"context"
	"testing"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"
	"golang.org/x/oauth2"
	"google.golang.org/api/container/v1"

	"github.com/identitychain/auth/gcp"
)

// describingGKE answers GetCluster with cluster and nothing else.
type describingGKE struct {
	gcp.Implementation
	cluster *container.Cluster
}

func (d describingGKE) GetCluster(context.Context, string, *container.Service) (*container.Cluster, error) {
	return d.cluster, nil
}

// A cluster being created has no endpoint or CA yet; upstream would
// dereference the missing CA and crash the controller. The reply is refused
// instead, with what to do.
func TestNewRESTConfigRefusesAnIncompleteCluster(t *testing.T) {
	t.Parallel()
	token := &gcp.Token{Token: oauth2.Token{AccessToken: "token", Expiry: time.Now().Add(time.Hour)}}
	const cluster = "projects/p/locations/l/clusters/c"
	for _, tt := range []struct {
		name    string
		cluster *container.Cluster
		status  string
	}{
		{name: "no cluster", status: "unknown"},
		{name: "provisioning", cluster: &container.Cluster{Status: "PROVISIONING"}, status: "PROVISIONING"},
		{name: "no CA", cluster: &container.Cluster{Endpoint: "10.0.0.1", Status: "RUNNING"}, status: "RUNNING"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			p := gcp.Provider{Implementation: describingGKE{cluster: tt.cluster}}
			conf, err := p.NewRESTConfig(context.Background(), []fluxauth.Token{token}, fluxauth.WithClusterResource(cluster))
			g.Expect(conf).To(BeNil())
			g.Expect(err).To(MatchError(gcp.ErrIncompleteCluster))
			g.Expect(err.Error()).To(HaveSuffix("GKE described the cluster without an endpoint or CA certificate (status " +
				tt.status + "): wait until the cluster is RUNNING, or set the address and CA data on the object"))
		})
	}
}
