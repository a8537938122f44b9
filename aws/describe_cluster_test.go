package aws_test

import (
	"context"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/aws"
)

// describingEKS answers DescribeCluster with cluster and nothing else.
type describingEKS struct {
	aws.Implementation
	cluster *ekstypes.Cluster
}

func (d describingEKS) DescribeCluster(context.Context, *eks.DescribeClusterInput, eks.Options) (*eks.DescribeClusterOutput, error) {
	return &eks.DescribeClusterOutput{Cluster: d.cluster}, nil
}

// A cluster still being created has no endpoint or CA yet; upstream would
// dereference them and crash the controller. The reply is refused instead,
// with what to do.
func TestNewRESTConfigRefusesAnIncompleteCluster(t *testing.T) {
	t.Parallel()
	expires := time.Now().Add(time.Hour)
	creds := &aws.Credentials{Credentials: types.Credentials{AccessKeyId: awssdk.String("ASIAEXAMPLE"),
		SecretAccessKey: awssdk.String("secret"), SessionToken: awssdk.String("session"), Expiration: &expires}}
	const cluster = "arn:aws:eks:us-east-1:123456789012:cluster/prod"
	for _, tt := range []struct {
		name    string
		cluster *ekstypes.Cluster
		wantErr string
	}{
		{name: "no cluster", wantErr: "failed to describe EKS cluster '" + cluster + "': EKS described the cluster " +
			"without an endpoint or CA data (status unknown): wait until the cluster is ACTIVE, or set the address " +
			"and CA data on the object"},
		{name: "creating", cluster: &ekstypes.Cluster{Status: ekstypes.ClusterStatusCreating},
			wantErr: "failed to describe EKS cluster '" + cluster + "': EKS described the cluster without an endpoint " +
				"or CA data (status CREATING): wait until the cluster is ACTIVE, or set the address and CA data on the object"},
		{name: "no CA", cluster: &ekstypes.Cluster{Endpoint: awssdk.String("https://prod.eks.example"), Status: ekstypes.ClusterStatusActive},
			wantErr: "failed to describe EKS cluster '" + cluster + "': EKS described the cluster without an endpoint " +
				"or CA data (status ACTIVE): wait until the cluster is ACTIVE, or set the address and CA data on the object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			p := aws.Provider{Implementation: describingEKS{cluster: tt.cluster}}
			conf, err := p.NewRESTConfig(context.Background(), []fluxauth.Token{creds}, fluxauth.WithClusterResource(cluster))
			g.Expect(conf).To(BeNil())
			g.Expect(err).To(MatchError(aws.ErrIncompleteCluster))
			g.Expect(err).To(MatchError(tt.wantErr))
		})
	}
}
