package auth_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"
	"google.golang.org/api/option"
	storage "google.golang.org/api/storage/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	auth "github.com/identitychain/auth"
	awsauth "github.com/identitychain/auth/aws"
	azureauth "github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/fakes"
	gcpauth "github.com/identitychain/auth/gcp"
)

// Flux controller call sites, written as source-controller v1.6 writes them
// for the Bucket API (createBucketProvider in bucket_controller.go, and the
// AWS, GCS and Azure Blob clients it builds) with the imports swapped from
// github.com/fluxcd/pkg/auth to this library. They must compile as they
// are, and they run on the zero providers, as in a controller, against the
// fakes the process environment points the SDKs at.

// bucket stands in for sourcev1.Bucket: the fields the call sites read.
type bucket struct {
	Name, Namespace string
	Spec            bucketSpec
}

type bucketSpec struct {
	ServiceAccountName string
	Region             string
	STS                *struct{ Endpoint string }
}

func (b *bucket) GetName() string      { return b.Name }
func (b *bucket) GetNamespace() string { return b.Namespace }

type bucketReconciler struct {
	client.Client
	TokenCache *cache.TokenCache
}

// authOptions is createBucketProvider's option building, verbatim.
func (r *bucketReconciler) authOptions(obj *bucket, proxyURL *url.URL) []auth.Option {
	authOpts := []auth.Option{
		auth.WithClient(r.Client),
		auth.WithServiceAccountNamespace(obj.GetNamespace()),
	}

	if obj.Spec.ServiceAccountName != "" {
		authOpts = append(authOpts, auth.WithServiceAccountName(obj.Spec.ServiceAccountName))
	}

	if r.TokenCache != nil {
		involvedObject := cache.InvolvedObject{
			Kind:      "Bucket",
			Name:      obj.GetName(),
			Namespace: obj.GetNamespace(),
			Operation: cache.OperationReconcile,
		}
		authOpts = append(authOpts, auth.WithCache(*r.TokenCache, involvedObject))
	}

	if proxyURL != nil {
		authOpts = append(authOpts, auth.WithProxyURL(*proxyURL))
	}

	if obj.Spec.Region != "" {
		authOpts = append(authOpts, auth.WithSTSRegion(obj.Spec.Region))
	}

	if sts := obj.Spec.STS; sts != nil {
		authOpts = append(authOpts, auth.WithSTSEndpoint(sts.Endpoint))
	}
	return authOpts
}

// newAWSCreds is the minio client's, returning the SDK credentials that it
// turns into static V4 credentials.
func newAWSCreds(ctx context.Context, authOpts []auth.Option) (awssdk.Credentials, error) {
	awsCredsProvider := awsauth.NewCredentialsProvider(ctx, authOpts...)
	awsCreds, err := awsCredsProvider.Retrieve(ctx)
	if err != nil {
		return awssdk.Credentials{}, fmt.Errorf("AWS authentication failed: %w", err)
	}
	return awsCreds, nil
}

// newGCSClientOptions is the GCS client's, without a secret or a proxy.
func newGCSClientOptions(ctx context.Context, authOpts []auth.Option) []option.ClientOption {
	var clientOpts []option.ClientOption
	tokenSource := gcpauth.NewTokenSource(ctx, authOpts...)
	clientOpts = append(clientOpts, option.WithTokenSource(tokenSource))
	return clientOpts
}

func TestBucketCallSites(t *testing.T) {
	upstreamCache, err := cache.NewTokenCache(10)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("aws: the controller's Pod Identity", func(t *testing.T) {
		g := NewWithT(t)
		w := newAWSWorld(t)
		agent := w.podIdentity(t)
		r := &bucketReconciler{Client: fakes.NewKubeClient(w.issuer), TokenCache: upstreamCache}
		obj := &bucket{Name: "podinfo", Namespace: "my-app", Spec: bucketSpec{Region: region}}

		for range 2 {
			creds, err := newAWSCreds(context.Background(), r.authOptions(obj, nil))
			g.Expect(err).NotTo(HaveOccurred())
			who, ok := w.sts.WhoAmI(creds.AccessKeyID)
			g.Expect(ok).To(BeTrue())
			g.Expect(who).To(Equal("arn:aws:sts::111111111111:assumed-role/flux-controller/fakes-issued"))
		}
		g.Expect(agent.Requests()).To(Equal(int64(1)), "the second reconcile hits upstream's cache")
	})

	t.Run("aws: impersonation refused before any call without a region", func(t *testing.T) {
		g := NewWithT(t)
		w := newAWSWorld(t)
		agent := w.podIdentity(t)
		r := &bucketReconciler{Client: fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-pod-identity.yaml"))}
		obj := &bucket{Name: "podinfo", Namespace: "my-app", Spec: bucketSpec{ServiceAccountName: "my-app"}}

		_, err := newAWSCreds(context.Background(), r.authOptions(obj, nil))

		g.Expect(err).To(MatchError(awsauth.ErrRegionRequired))
		g.Expect(err).To(MatchError("AWS authentication failed: an AWS region is required to assume a role: service " +
			"account 'my-app/my-app' asks to assume role 'arn:aws:iam::222222222222:role/target-account-role'. " +
			"set the region in the object spec (auth.WithSTSRegion)"))
		g.Expect(agent.Requests()).To(BeZero())
		g.Expect(w.sts.Calls()).To(BeEmpty())
	})

	t.Run("gcp: the controller's GKE workload identity", func(t *testing.T) {
		g := NewWithT(t)
		w := newGCPWorld(t)
		gcs := startGCS(t, w.iam)
		r := &bucketReconciler{Client: fakes.NewKubeClient(w.issuer)}
		obj := &bucket{Name: "podinfo", Namespace: "my-app"}

		ctx := context.Background()
		svc, err := storage.NewService(ctx, append(newGCSClientOptions(ctx, r.authOptions(obj, nil)),
			option.WithEndpoint(gcs.srv.URL+"/storage/v1/"))...)
		g.Expect(err).NotTo(HaveOccurred())
		_, err = svc.Buckets.Get("podinfo").Context(ctx).Do()
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(gcs.callers()).To(Equal([]string{controllerGSA}))
	})

	t.Run("azure: an invalid impersonation annotation is refused before any call", func(t *testing.T) {
		g := NewWithT(t)
		w := newAzureWorld(t)
		r := &bucketReconciler{Client: w.kube}
		obj := &bucket{Name: "podinfo", Namespace: "my-app", Spec: bucketSpec{ServiceAccountName: "bad"}}

		cred := azureauth.NewTokenCredential(context.Background(), r.authOptions(obj, nil)...)
		_, err := w.get(context.Background(), cred, "https://storage.azure.com/.default")

		g.Expect(err).To(MatchError(auth.ErrInvalidAnnotation))
		g.Expect(w.kube.TokenRequests()).To(BeZero())
	})
}
