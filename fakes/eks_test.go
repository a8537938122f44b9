package fakes_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	. "github.com/onsi/gomega"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/identitychain/auth/fakes"
)

const (
	eksTestCluster     = "arn:aws:eks:eu-central-1:123456789012:cluster/prod"
	eksTestClusterName = "prod"
	eksTestSession     = "arn:aws:sts::123456789012:assumed-role/controller/fakes-issued"
)

// eksWorld is a fake STS and a fake EKS with the cluster eksTestCluster,
// open to awsTestRole, on one clock.
type eksWorld struct {
	clock *awsClock
	sts   *fakes.AWSSTS
	eks   *fakes.EKS
	api   *fakes.KubeAPIServer
}

func eksStart(t *testing.T) *eksWorld {
	t.Helper()
	clock := newAWSClock()
	s := awsStartSTS(t, fakes.AWSSTSOptions{Now: clock.Now})
	e := fakes.StartEKS(s)
	t.Cleanup(e.Close)
	return &eksWorld{clock: clock, sts: s, eks: e, api: e.AddCluster(eksTestCluster, awsTestRole)}
}

// describe calls DescribeCluster with the real SDK client, without retries.
func (w *eksWorld) describe(name string, region string, creds aws.CredentialsProvider) (*eks.DescribeClusterOutput, error) {
	return eks.New(eks.Options{
		Region: region, Credentials: creds, BaseEndpoint: aws.String(w.eks.URL), Retryer: aws.NopRetryer{},
	}).DescribeCluster(context.Background(), &eks.DescribeClusterInput{Name: aws.String(name)})
}

// token makes the EKS bearer token of roleARN for cluster, as upstream does.
func (w *eksWorld) token(t *testing.T, roleARN, cluster string) string {
	t.Helper()
	presigned := awsPresignCallerIdentity(t, w.sts, w.sts.IssueCredentials(roleARN), cluster)
	return "k8s-aws-v1." + base64.RawURLEncoding.EncodeToString([]byte(presigned))
}

// kubeWhoAmI asks api whose token is with client-go, which sends protobuf.
func kubeWhoAmI(t *testing.T, api *fakes.KubeAPIServer, token string) (authnv1.UserInfo, error) {
	t.Helper()
	return kubeReview(kubeClient(t, api, token))
}

// kubeClient is a client-go clientset for api presenting token.
func kubeClient(t *testing.T, api *fakes.KubeAPIServer, token string) kubernetes.Interface {
	t.Helper()
	rc := &rest.Config{Host: api.URL, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: api.CAData}}
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	client, err := kubernetes.NewForConfigAndClient(rc, hc)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// kubeReview creates a SelfSubjectReview, as kubectl auth whoami does.
func kubeReview(client kubernetes.Interface) (authnv1.UserInfo, error) {
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(context.Background(),
		&authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return authnv1.UserInfo{}, err
	}
	return review.Status.UserInfo, nil
}

func TestEKS_DescribeCluster(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		setup    func(w *eksWorld) (cluster, region string, creds aws.CredentialsProvider)
		wantARN  string // of the cluster described
		wantCode string
		wantMsg  string
	}{
		{
			name: "allowed",
			setup: func(w *eksWorld) (string, string, aws.CredentialsProvider) {
				return eksTestClusterName, awsTestRegion, awsStatic(w.sts.IssueCredentials(awsTestRole))
			},
			wantARN: eksTestCluster,
		},
		{
			name: "allowed, role with a path",
			setup: func(w *eksWorld) (string, string, aws.CredentialsProvider) {
				w.eks.AddCluster("arn:aws:eks:eu-central-1:210987654321:cluster/tenant", awsTestTenantRole)
				return "tenant", awsTestRegion, awsStatic(w.sts.IssueCredentials(awsTestTenantRole))
			},
			wantARN: "arn:aws:eks:eu-central-1:210987654321:cluster/tenant",
		},
		{
			name: "role not allowed",
			setup: func(w *eksWorld) (string, string, aws.CredentialsProvider) {
				return eksTestClusterName, awsTestRegion, awsStatic(w.sts.IssueCredentials(awsTestOtherRole))
			},
			wantCode: "AccessDeniedException",
			wantMsg: "User: arn:aws:sts::123456789012:assumed-role/other/fakes-issued is not authorized to perform: " +
				"eks:DescribeCluster on resource: " + eksTestCluster,
		},
		{
			name: "cluster of another account",
			setup: func(w *eksWorld) (string, string, aws.CredentialsProvider) {
				w.eks.AddCluster("arn:aws:eks:eu-central-1:210987654321:cluster/tenant", awsTestRole)
				return "tenant", awsTestRegion, awsStatic(w.sts.IssueCredentials(awsTestRole))
			},
			wantCode: "AccessDeniedException",
			wantMsg: "User: " + eksTestSession + " is not authorized to perform: " +
				"eks:DescribeCluster on resource: arn:aws:eks:eu-central-1:123456789012:cluster/tenant",
		},
		{
			name: "cluster of another region",
			setup: func(w *eksWorld) (string, string, aws.CredentialsProvider) {
				return eksTestClusterName, "us-east-1", awsStatic(w.sts.IssueCredentials(awsTestRole))
			},
			wantCode: "AccessDeniedException",
			wantMsg: "User: " + eksTestSession + " is not authorized to perform: " +
				"eks:DescribeCluster on resource: arn:aws:eks:us-east-1:123456789012:cluster/prod",
		},
		{
			name: "no such cluster",
			setup: func(w *eksWorld) (string, string, aws.CredentialsProvider) {
				return "staging", awsTestRegion, awsStatic(w.sts.IssueCredentials(awsTestRole))
			},
			wantCode: "AccessDeniedException",
		},
		{
			name: "credentials the fake STS did not issue",
			setup: func(w *eksWorld) (string, string, aws.CredentialsProvider) {
				return eksTestClusterName, awsTestRegion, credentials.NewStaticCredentialsProvider("ASIAOTHER", "secret", "token")
			},
			wantCode: "UnrecognizedClientException",
			wantMsg:  "The security token included in the request is invalid.",
		},
		{
			name: "expired credentials",
			setup: func(w *eksWorld) (string, string, aws.CredentialsProvider) {
				c := w.sts.IssueCredentials(awsTestRole)
				w.clock.Advance(2 * time.Hour)
				return eksTestClusterName, awsTestRegion, awsStatic(c)
			},
			wantCode: "ExpiredTokenException",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := eksStart(t)
			name, region, creds := tt.setup(w)

			out, err := w.describe(name, region, creds)
			calls := w.eks.Calls()
			g.Expect(calls).To(HaveLen(1))
			g.Expect(calls[0].Name).To(Equal(name))
			g.Expect(calls[0].Region).To(Equal(region))
			g.Expect(calls[0].Err).To(Equal(tt.wantCode))
			if tt.wantCode != "" {
				var apiErr smithy.APIError
				g.Expect(errors.As(err, &apiErr)).To(BeTrue(), "%v", err)
				g.Expect(apiErr.ErrorCode()).To(Equal(tt.wantCode))
				if tt.wantMsg != "" {
					g.Expect(apiErr.ErrorMessage()).To(Equal(tt.wantMsg))
				}
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(aws.ToString(out.Cluster.Arn)).To(Equal(tt.wantARN))
			g.Expect(aws.ToString(out.Cluster.Name)).To(Equal(name))
			g.Expect(aws.ToString(out.Cluster.Endpoint)).To(HavePrefix("https://127.0.0.1:"))
			ca, err := base64.StdEncoding.DecodeString(aws.ToString(out.Cluster.CertificateAuthority.Data))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(string(ca)).To(HavePrefix("-----BEGIN CERTIFICATE-----"))
			if tt.wantARN == eksTestCluster {
				g.Expect(aws.ToString(out.Cluster.Endpoint)).To(Equal(w.api.URL))
				g.Expect(ca).To(Equal(w.api.CAData))
			}
		})
	}
}

func TestEKS_AddClusterRefusesMistakes(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := eksStart(t)
	g.Expect(func() { w.eks.AddCluster("arn:aws:eks:eu-central-1:123456789012:cluster/" + eksTestClusterName) }).
		To(PanicWith("fakes: EKS.AddCluster: cluster '" + eksTestCluster + "' exists"))
	g.Expect(func() { w.eks.AddCluster("prod") }).
		To(PanicWith("fakes: EKS.AddCluster: invalid cluster ARN 'prod'"))
}

func TestEKS_Faults(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		fault    fakes.Fault
		wantCode string // "" for a deserialization error
	}{
		{fakes.Throttle(), "ThrottlingException"},
		{fakes.ServerError(500), "ServerException"},
		{fakes.ServerError(503), "ServiceUnavailableException"},
		{fakes.MalformedBody(), ""},
	} {
		t.Run(tt.fault.String(), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := eksStart(t)
			f := w.eks.InjectFault(tt.fault.Times(1).OnlyFor("/clusters/" + eksTestClusterName))
			creds := awsStatic(w.sts.IssueCredentials(awsTestRole))

			_, err := w.describe(eksTestClusterName, awsTestRegion, creds)
			if tt.wantCode == "" {
				var de *smithy.DeserializationError
				g.Expect(errors.As(err, &de)).To(BeTrue(), "%v", err)
			} else {
				var apiErr smithy.APIError
				g.Expect(errors.As(err, &apiErr)).To(BeTrue(), "%v", err)
				g.Expect(apiErr.ErrorCode()).To(Equal(tt.wantCode))
			}
			g.Expect(f.Hits()).To(Equal(1))
			g.Expect(w.eks.Attempts()).To(Equal(1))
			g.Expect(w.eks.Calls()).To(BeEmpty())

			_, err = w.describe(eksTestClusterName, awsTestRegion, creds)
			g.Expect(err).NotTo(HaveOccurred())
		})
	}
	t.Run("refused faults", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		w := eksStart(t)
		g.Expect(func() { w.eks.InjectFault(fakes.ExpiredCredentials()) }).
			To(PanicWith("fakes: ExpiredCredentials() can never apply: DescribeCluster returns no credentials"))
		g.Expect(func() { w.eks.InjectFault(fakes.Throttle().OnlyFor("DescribeCluster")) }).
			To(PanicWith("fakes: EKS.InjectFault: unknown operation 'DescribeCluster': want /clusters/<name>"))
	})
}

// TestEKS_APIServerAuthentication presents EKS tokens to a cluster's API
// server, made as upstream makes them, then forged, misdirected or
// stale the ways an attacker's or a broken client's would be.
func TestEKS_APIServerAuthentication(t *testing.T) {
	t.Parallel()
	// editURL rewrites the presigned URL inside a token.
	editURL := func(t *testing.T, token string, edit func(u *url.URL)) string {
		b, err := base64.RawURLEncoding.DecodeString(token[len("k8s-aws-v1."):])
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(string(b))
		if err != nil {
			t.Fatal(err)
		}
		edit(u)
		return "k8s-aws-v1." + base64.RawURLEncoding.EncodeToString([]byte(u.String()))
	}
	for _, tt := range []struct {
		name     string
		token    func(t *testing.T, w *eksWorld) string
		wantUser string // the API server's record, also on refusals
		wantErr  string
		wantSTS  bool // whether the API server asked STS
	}{
		{
			name:     "token of a role with an access entry",
			token:    func(t *testing.T, w *eksWorld) string { return w.token(t, awsTestRole, eksTestClusterName) },
			wantUser: eksTestSession,
			wantSTS:  true,
		},
		{
			name:     "token of a role without an access entry",
			token:    func(t *testing.T, w *eksWorld) string { return w.token(t, awsTestOtherRole, eksTestClusterName) },
			wantUser: "arn:aws:sts::123456789012:assumed-role/other/fakes-issued",
			wantErr:  "Unauthorized",
			wantSTS:  true,
		},
		{
			name:    "token for another cluster",
			token:   func(t *testing.T, w *eksWorld) string { return w.token(t, awsTestRole, "staging") },
			wantErr: "Unauthorized",
			wantSTS: true,
		},
		{
			name: "token of expired credentials",
			token: func(t *testing.T, w *eksWorld) string {
				token := w.token(t, awsTestRole, eksTestClusterName)
				w.clock.Advance(2 * time.Hour)
				return token
			},
			wantErr: "Unauthorized",
			wantSTS: true,
		},
		{
			name: "URL of another host",
			token: func(t *testing.T, w *eksWorld) string {
				return editURL(t, w.token(t, awsTestRole, eksTestClusterName), func(u *url.URL) { u.Host = "127.0.0.1:1" })
			},
			wantErr: "Unauthorized",
		},
		{
			name: "URL of another action",
			token: func(t *testing.T, w *eksWorld) string {
				return editURL(t, w.token(t, awsTestRole, eksTestClusterName), func(u *url.URL) {
					q := u.Query()
					q.Set("Action", "AssumeRole")
					u.RawQuery = q.Encode()
				})
			},
			wantErr: "Unauthorized",
		},
		{
			name: "URL not signed over the cluster name",
			token: func(t *testing.T, w *eksWorld) string {
				// A presigned URL of the SDK without upstream's EKS presigner.
				p, err := w.sts.Implementation().PresignGetCallerIdentity(context.Background(), nil,
					sts.Options{Region: awsTestRegion, Credentials: awsStatic(w.sts.IssueCredentials(awsTestRole))})
				if err != nil {
					t.Fatal(err)
				}
				return "k8s-aws-v1." + base64.RawURLEncoding.EncodeToString([]byte(p.URL))
			},
			wantErr: "Unauthorized",
		},
		{
			name:    "not an EKS token",
			token:   func(*testing.T, *eksWorld) string { return "ya29.not-aws" },
			wantErr: "Unauthorized",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := eksStart(t)
			token := tt.token(t, w)

			user, err := kubeWhoAmI(t, w.api, token)
			wantCode := http.StatusCreated
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				wantCode = http.StatusUnauthorized
			} else {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(user).To(Equal(authnv1.UserInfo{
					Username: eksTestSession,
					UID:      "aws-iam-authenticator:123456789012:" + user.UID[len("aws-iam-authenticator:123456789012:"):],
					Groups:   []string{"system:authenticated"},
					Extra: map[string]authnv1.ExtraValue{
						"arn":          {eksTestSession},
						"canonicalArn": {awsTestRole},
						"sessionName":  {"fakes-issued"},
						"accessKeyId":  user.Extra["accessKeyId"],
					},
				}))
				g.Expect(user.UID).To(MatchRegexp(`^aws-iam-authenticator:123456789012:AROA[A-Z2-7]{17}:fakes-issued$`))
				g.Expect(user.Extra["accessKeyId"]).To(ConsistOf(MatchRegexp(`^ASIA[A-Z2-7]{16}$`)))
			}
			g.Expect(w.api.Requests()).To(Equal([]fakes.KubeAPIRequest{{
				Method: http.MethodPost, Path: "/apis/authentication.k8s.io/v1/selfsubjectreviews",
				User: tt.wantUser, Code: wantCode,
			}}))
			if tt.wantSTS {
				g.Expect(w.sts.Count("GetCallerIdentity")).To(Equal(1))
			} else {
				g.Expect(w.sts.Attempts()).To(BeZero())
			}
		})
	}
}

// TestEKS_ThroughTheImplementation checks the wiring of
// AWSImplementation.WithEKS, which the library's provider calls.
func TestEKS_ThroughTheImplementation(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := eksStart(t)
	out, err := w.sts.Implementation().WithEKS(w.eks).DescribeCluster(context.Background(),
		&eks.DescribeClusterInput{Name: aws.String(eksTestClusterName)},
		eks.Options{Region: awsTestRegion, Credentials: awsStatic(w.sts.IssueCredentials(awsTestRole))})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(aws.ToString(out.Cluster.Endpoint)).To(Equal(w.api.URL))
}

// TestEKS_CloseDoesNotWaitForAHungSTS: an API server waiting on STS to
// verify a token is released when the EKS closes, as a real one would drop
// its connections, instead of holding Close for its client's timeout.
func TestEKS_CloseDoesNotWaitForAHungSTS(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	clock := newAWSClock()
	s := awsStartSTS(t, fakes.AWSSTSOptions{Now: clock.Now})
	e := fakes.StartEKS(s)
	w := &eksWorld{clock: clock, sts: s, eks: e, api: e.AddCluster(eksTestCluster, awsTestRole)}
	hang := s.InjectFault(fakes.Hang().OnlyFor("GetCallerIdentity"))
	client := kubeClient(t, w.api, w.token(t, awsTestRole, eksTestClusterName))

	done := make(chan error, 1)
	go func() {
		_, err := kubeReview(client)
		done <- err
	}()
	// Half the API server's 10s timeout for STS, so that only a Close that
	// releases the hung call passes.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.Expect(hang.WaitHits(ctx, 1)).To(Succeed())

	closed := make(chan struct{})
	go func() {
		defer close(closed)
		e.Close()
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close waited for the API server's call to a hung STS")
	}
	g.Expect(<-done).To(MatchError("Unauthorized"))
}
