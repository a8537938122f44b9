package auth_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/smithy-go"
	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"
	"google.golang.org/api/googleapi"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

const (
	// eksCluster is in the target role's account: DescribeCluster only
	// sees the clusters of the caller's account.
	eksCluster     = "arn:aws:eks:us-east-1:222222222222:cluster/prod"
	eksClusterName = "prod"
	gkeClusterName = "projects/target-project/locations/us-central1/clusters/prod"
)

// clusterWhoAmI builds a Kubernetes client from conf (host, CA, bearer
// token), as a Flux controller does, and asks the cluster whose the token
// is (kubectl auth whoami).
func clusterWhoAmI(t *testing.T, conf *fluxauth.RESTConfig) (authnv1.UserInfo, error) {
	t.Helper()
	rc := &rest.Config{
		Host:            conf.Host,
		BearerToken:     conf.BearerToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: conf.CAData},
	}
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	client, err := kubernetes.NewForConfigAndClient(rc, hc)
	if err != nil {
		t.Fatal(err)
	}
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(context.Background(),
		&authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return authnv1.UserInfo{}, err
	}
	return review.Status.UserInfo, nil
}

// startEKS starts a fake EKS on w's STS with the cluster eksCluster, which
// roles may describe and use, and a provider that uses it.
func (w *awsWorld) startEKS(t *testing.T, roles ...string) (*fakes.EKS, *fakes.KubeAPIServer, aws.Provider) {
	t.Helper()
	eks := fakes.StartEKS(w.sts)
	t.Cleanup(eks.Close)
	api := eks.AddCluster(eksCluster, roles...)
	return eks, api, aws.Provider{Implementation: w.sts.Implementation().WithEKS(eks)}
}

// startGKE starts a fake GKE on w's IAM Credentials with the cluster
// gkeClusterName, which principals may get and use, and a provider that
// uses it.
func (w *gcpWorld) startGKE(t *testing.T, principals ...string) (*fakes.GKE, *fakes.KubeAPIServer, gcp.Provider) {
	t.Helper()
	gke := fakes.StartGKE(w.iam)
	t.Cleanup(gke.Close)
	api := gke.AddCluster(gkeClusterName, principals...)
	return gke, api, gcp.Provider{Implementation: fakes.NewGCPImplementation(w.sts, w.iam).WithGKE(gke)}
}

// TestEKSRESTConfigIsTheTargetRole: with no address, the library describes
// the cluster as the target role, and the cluster's API server, verifying
// the token at STS, takes the client for the target role.
func TestEKSRESTConfigIsTheTargetRole(t *testing.T) {
	for _, m := range awsManifests {
		t.Run(m.manifest, func(t *testing.T) {
			g := NewWithT(t)
			w := newAWSWorld(t)
			m.world(t, w)
			eks, api, provider := w.startEKS(t, targetRole)
			kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, m.manifest))

			conf, err := auth.GetRESTConfig(context.Background(), provider,
				myAppOptions(kube, auth.WithClusterResource(eksCluster))...)
			g.Expect(err).NotTo(HaveOccurred())

			g.Expect(eks.Calls()).To(Equal([]fakes.EKSCall{{Name: eksClusterName, Caller: targetRole, Region: region}}))
			g.Expect(conf.Host).To(Equal(api.URL))
			g.Expect(conf.CAData).To(Equal(api.CAData))
			g.Expect(conf.BearerToken).To(HavePrefix("k8s-aws-v1."))

			user, err := clusterWhoAmI(t, conf)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(user.Username).To(Equal(targetSession))
			g.Expect(user.Extra["canonicalArn"]).To(ConsistOf(targetRole))
			g.Expect(api.Requests()).To(Equal([]fakes.KubeAPIRequest{{
				Method: http.MethodPost, Path: "/apis/authentication.k8s.io/v1/selfsubjectreviews",
				User: targetSession, Code: http.StatusCreated,
			}}))
			calls := w.sts.Calls()
			g.Expect(calls[len(calls)-1]).To(Equal(fakes.AWSSTSCall{
				Action: "GetCallerIdentity", Caller: targetRole, Region: region,
			}), "the API server verifies the token at STS")
		})
	}
}

// TestEKSRESTConfigRefusals: the source's access is no use to the target,
// whether to describe the cluster or to use its API.
func TestEKSRESTConfigRefusals(t *testing.T) {
	t.Run("target may not describe the cluster", func(t *testing.T) {
		g := NewWithT(t)
		w := newAWSWorld(t)
		awsManifests[0].world(t, w)
		eks, _, provider := w.startEKS(t, controllerRole)
		kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, awsManifests[0].manifest))

		_, err := auth.GetRESTConfig(context.Background(), provider,
			myAppOptions(kube, auth.WithClusterResource(eksCluster))...)
		g.Expect(err).To(MatchError(MatchRegexp(awsAPIErrorPattern(
			"failed to get aws access to cluster '"+eksCluster+"': failed to describe EKS cluster '"+eksCluster+
				"': operation error EKS: DescribeCluster", 403,
			"AccessDeniedException: User: "+targetSession+" is not authorized to perform: eks:DescribeCluster on resource: "+eksCluster))))
		var apiErr smithy.APIError
		g.Expect(errors.As(err, &apiErr)).To(BeTrue())
		g.Expect(apiErr.ErrorCode()).To(Equal("AccessDeniedException"))
		g.Expect(eks.Calls()).To(Equal([]fakes.EKSCall{{
			Name: eksClusterName, Caller: targetRole, Region: region, Err: "AccessDeniedException",
		}}))
	})
	t.Run("target has no access entry", func(t *testing.T) {
		g := NewWithT(t)
		w := newAWSWorld(t)
		awsManifests[0].world(t, w)
		_, api, provider := w.startEKS(t, controllerRole)
		kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, awsManifests[0].manifest))

		// With the address and CA given, the library does not describe the
		// cluster: the API server alone decides.
		conf, err := auth.GetRESTConfig(context.Background(), provider, myAppOptions(kube,
			auth.WithClusterResource(eksCluster), auth.WithClusterAddress(api.URL), auth.WithCAData(string(api.CAData)))...)
		g.Expect(err).NotTo(HaveOccurred())
		_, err = clusterWhoAmI(t, conf)
		g.Expect(err).To(MatchError("Unauthorized"))
		g.Expect(api.Requests()).To(Equal([]fakes.KubeAPIRequest{{
			Method: http.MethodPost, Path: "/apis/authentication.k8s.io/v1/selfsubjectreviews",
			User: targetSession, Code: http.StatusUnauthorized,
		}}))
	})
}

// TestGKERESTConfigIsTheTargetServiceAccount: with no address, the library
// gets the cluster as the target service account, and the cluster's API
// server takes the client for it.
func TestGKERESTConfigIsTheTargetServiceAccount(t *testing.T) {
	for _, m := range gcpManifests {
		t.Run(m.manifest, func(t *testing.T) {
			g := NewWithT(t)
			w := newGCPWorld(t)
			m.grant(w)
			gke, api, provider := w.startGKE(t, targetGSA)
			kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, m.manifest))

			conf, err := auth.GetRESTConfig(context.Background(), provider,
				myAppOptions(kube, auth.WithClusterResource(gkeClusterName))...)
			g.Expect(err).NotTo(HaveOccurred())

			g.Expect(gke.Calls()).To(Equal([]fakes.GKECall{{Cluster: gkeClusterName, Caller: targetGSA}}))
			g.Expect("https://"+conf.Host).To(Equal(api.URL), "GKE gives the address without a scheme")
			g.Expect(conf.CAData).To(Equal(api.CAData))

			user, err := clusterWhoAmI(t, conf)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(user.Username).To(Equal(targetGSA))
			g.Expect(api.Requests()).To(Equal([]fakes.KubeAPIRequest{{
				Method: http.MethodPost, Path: "/apis/authentication.k8s.io/v1/selfsubjectreviews",
				User: targetGSA, Code: http.StatusCreated,
			}}))
		})
	}
}

func TestGKERESTConfigRefusals(t *testing.T) {
	t.Run("target may not get the cluster", func(t *testing.T) {
		g := NewWithT(t)
		w := newGCPWorld(t)
		gcpManifests[0].grant(w)
		gke, _, provider := w.startGKE(t, controllerGSA)
		kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, gcpManifests[0].manifest))

		_, err := auth.GetRESTConfig(context.Background(), provider,
			myAppOptions(kube, auth.WithClusterResource(gkeClusterName))...)
		g.Expect(err).To(MatchError("failed to get gcp access to cluster '" + gkeClusterName + "': " +
			"failed to describe GKE cluster '" + gkeClusterName + "': googleapi: Error 403: " +
			`Required "container.clusters.get" permission(s) for "` + gkeClusterName + `".`))
		var apiErr *googleapi.Error
		g.Expect(errors.As(err, &apiErr)).To(BeTrue())
		g.Expect(apiErr.Code).To(Equal(http.StatusForbidden))
		g.Expect(gke.Calls()).To(Equal([]fakes.GKECall{{Cluster: gkeClusterName, Caller: targetGSA, Err: "PERMISSION_DENIED"}}))
	})
	t.Run("target has no access to the API", func(t *testing.T) {
		g := NewWithT(t)
		w := newGCPWorld(t)
		gcpManifests[0].grant(w)
		_, api, provider := w.startGKE(t, controllerGSA)
		kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, gcpManifests[0].manifest))

		conf, err := auth.GetRESTConfig(context.Background(), provider, myAppOptions(kube,
			auth.WithClusterResource(gkeClusterName), auth.WithClusterAddress(api.URL), auth.WithCAData(string(api.CAData)))...)
		g.Expect(err).NotTo(HaveOccurred())
		_, err = clusterWhoAmI(t, conf)
		g.Expect(err).To(MatchError(`selfsubjectreviews.authentication.k8s.io is forbidden: User "` + targetGSA +
			`" cannot create resource "selfsubjectreviews" in API group "authentication.k8s.io" at the cluster scope`))
	})
}
