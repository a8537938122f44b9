package auth_test

import (
	"context"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

// The SDK adapters end to end: a real SDK client, configured with an
// adapter as upstream's are used, makes a request to a loopback fake that
// tells whose credentials signed it.

const targetSession = "arn:aws:sts::222222222222:assumed-role/target-account-role/my-app.my-app.fluxcd.io"

// callerARN is GetCallerIdentity by a real SDK client whose credentials
// come from creds.
func (w *awsWorld) callerARN(ctx context.Context, creds awssdk.CredentialsProvider) (string, error) {
	out, err := sts.New(sts.Options{Region: region, BaseEndpoint: &w.sts.URL, Credentials: creds}).
		GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", err
	}
	return awssdk.ToString(out.Arn), nil
}

// An SDK client signs as the target role of an aws.auth.fluxcd.io/assume-role
// ServiceAccount, and the lockdown rules hold through the adapter.
func TestAWSCredentialsProviderImpersonates(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		manifest string
		lockdown bool
		wantErr  string
	}{
		{name: "object-level IRSA source", manifest: "aws-object-irsa.yaml"},
		{name: "object-level IRSA source under lockdown", manifest: "aws-object-irsa.yaml", lockdown: true},
		{name: "controller source refused under lockdown", manifest: "aws-pod-identity.yaml", lockdown: true,
			wantErr: "failed to get provider identity from service account 'my-app/my-app' annotations: " +
				"the service account has no eks.amazonaws.com/role-arn annotation: add eks.amazonaws.com/role-arn " +
				"with the IAM role the service account's token is exchanged for (under multi-tenancy lockdown the " +
				"service account, not the controller, is the source of aws.auth.fluxcd.io/assume-role)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := newAWSWorld(t)
			w.sts.AllowWebIdentity(sourceRole, "my-app", "my-app")
			w.sts.AllowAssumeRole(sourceRole, targetRole)
			kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, tt.manifest))
			opts := myAppOptions(kube, auth.WithSTSRegion(region))
			if tt.lockdown {
				opts = append(opts, auth.WithDefaultServiceAccount("default"))
			}

			arn, err := w.callerARN(context.Background(), w.provider.NewCredentialsProvider(context.Background(), opts...))

			if tt.wantErr != "" {
				g.Expect(err).To(MatchError("operation error STS: GetCallerIdentity, get identity: get credentials: " + tt.wantErr))
				g.Expect(err).To(MatchError(aws.ErrNoServiceAccountRole))
				g.Expect(w.sts.Calls()).To(BeEmpty())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(arn).To(Equal(targetSession))
			g.Expect(w.sts.Calls()).To(Equal([]fakes.STSCall{
				{Action: "AssumeRoleWithWebIdentity", RoleARN: sourceRole, RoleSessionName: "my-app.my-app.us-east-1.fluxcd.io",
					Caller: "system:serviceaccount:my-app:my-app"},
				{Action: "AssumeRole", RoleARN: targetRole, RoleSessionName: "my-app.my-app.fluxcd.io", Caller: sourceRole, Region: region},
				{Action: "GetCallerIdentity", Caller: targetRole, Region: region},
			}))
		})
	}
}

// Through auth.WithTokenCache, Retrieve within the credentials' lifetime
// makes no cloud call, and past it refreshes through the whole chain:
// a new ServiceAccount token, source credentials and AssumeRole.
func TestAWSCredentialsProviderCachesAndRefreshes(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := newAWSWorld(t)
	w.sts.AllowWebIdentity(sourceRole, "my-app", "my-app")
	w.sts.AllowAssumeRole(sourceRole, targetRole)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-object-irsa.yaml"))
	clock := newAdapterClock()
	tc, err := auth.NewTokenCache(10, auth.WithClock(clock.Now))
	g.Expect(err).NotTo(HaveOccurred())
	creds := w.provider.NewCredentialsProvider(context.Background(), myAppOptions(kube, auth.WithSTSRegion(region),
		auth.WithTokenCache(tc, cache.InvolvedObject{Kind: "Bucket", Name: "app", Namespace: "my-app"}))...)
	calls := func() []int {
		return []int{int(kube.TokenRequests()), w.sts.Count("AssumeRoleWithWebIdentity"), w.sts.Count("AssumeRole")}
	}

	first, err := creds.Retrieve(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(calls()).To(Equal([]int{1, 1, 1}))

	clock.Add(10 * time.Minute)
	second, err := creds.Retrieve(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(second).To(Equal(first))
	g.Expect(calls()).To(Equal([]int{1, 1, 1}), "a hit makes no call")

	clock.Add(time.Hour)
	third, err := creds.Retrieve(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(third.AccessKeyID).NotTo(Equal(first.AccessKeyID))
	g.Expect(calls()).To(Equal([]int{2, 2, 2}), "both levels expired: the whole chain ran again")
	who, ok := w.sts.WhoAmI(third.AccessKeyID)
	g.Expect(ok).To(BeTrue())
	g.Expect(who).To(Equal(targetSession))
}

// adapterClock is a TokenCache clock that the test moves. It is safe for
// concurrent use.
type adapterClock struct {
	mu  sync.Mutex
	now time.Time // guarded by mu
}

func newAdapterClock() *adapterClock { return &adapterClock{now: time.Now()} }

func (c *adapterClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *adapterClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
