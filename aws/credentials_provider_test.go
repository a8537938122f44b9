package aws_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

// The adapter on the controller's own identity, which needs no
// ServiceAccount and so no feature gate: impersonation through it is
// tested end to end in the root package (adapters_e2e_test.go).

const controllerRole = "arn:aws:iam::111111111111:role/flux-controller"

// controllerKeys is the fakes' SDK seam with the controller's credentials
// issued by the fake STS, as EKS Pod Identity would hand them out, without
// touching the process environment. It counts how often they are loaded.
type controllerKeys struct {
	*fakes.AWSImplementation
	sts   *fakes.AWSSTS
	err   error
	loads atomic.Int64

	mu     sync.Mutex
	issued []awssdk.Credentials // guarded by mu
}

func newControllerKeys(t *testing.T, loadErr error) *controllerKeys {
	t.Helper()
	s := fakes.StartAWSSTS(fakes.AWSSTSOptions{})
	t.Cleanup(s.Close)
	return &controllerKeys{AWSImplementation: s.Implementation(), sts: s, err: loadErr}
}

func (c *controllerKeys) LoadDefaultConfig(_ context.Context, optFns ...func(*config.LoadOptions) error) (awssdk.Config, error) {
	c.loads.Add(1)
	if c.err != nil {
		return awssdk.Config{}, c.err
	}
	var lo config.LoadOptions
	for _, fn := range optFns {
		if err := fn(&lo); err != nil {
			return awssdk.Config{}, err
		}
	}
	creds := c.sts.IssueCredentials(controllerRole)
	c.mu.Lock()
	c.issued = append(c.issued, creds)
	c.mu.Unlock()
	return awssdk.Config{Region: lo.Region, Credentials: awssdk.CredentialsProviderFunc(
		func(context.Context) (awssdk.Credentials, error) { return creds, nil })}, nil
}

func (c *controllerKeys) lastIssued() awssdk.Credentials {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.issued[len(c.issued)-1]
}

// whoAmI is a real SDK client's GetCallerIdentity, signed with creds.
func (c *controllerKeys) whoAmI(ctx context.Context, creds awssdk.CredentialsProvider) (string, error) {
	out, err := sts.New(sts.Options{Region: region, BaseEndpoint: &c.sts.URL, Credentials: creds}).
		GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", err
	}
	return awssdk.ToString(out.Arn), nil
}

// An SDK client signs its requests with what the chain returns, asking the
// chain on every request unless a cache sits in front: the SDK's
// aws.CredentialsCache (as config.LoadDefaultConfig adds) or our TokenCache.
func TestCredentialsProviderSignsSDKRequests(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		tokenCache bool
		sdkCache   bool
		wantLoads  int64
	}{
		{name: "no cache: every request asks the chain", wantLoads: 3},
		{name: "auth.WithTokenCache", tokenCache: true, wantLoads: 1},
		{name: "aws.CredentialsCache in front", sdkCache: true, wantLoads: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			keys := newControllerKeys(t, nil)
			opts := []auth.Option{auth.WithSTSRegion(region)}
			if tt.tokenCache {
				tc, err := auth.NewTokenCache(10)
				g.Expect(err).NotTo(HaveOccurred())
				opts = append(opts, auth.WithTokenCache(tc, cache.InvolvedObject{}))
			}
			var creds awssdk.CredentialsProvider = aws.Provider{Implementation: keys}.NewCredentialsProvider(context.Background(), opts...)
			if tt.sdkCache {
				creds = awssdk.NewCredentialsCache(creds)
			}

			for range 3 {
				arn, err := keys.whoAmI(context.Background(), creds)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(arn).To(Equal("arn:aws:sts::111111111111:assumed-role/flux-controller/fakes-issued"))
			}
			g.Expect(keys.loads.Load()).To(Equal(tt.wantLoads))
			g.Expect(keys.sts.Count("GetCallerIdentity")).To(Equal(3))
		})
	}
}

// Retrieve returns the chain's credentials as the SDK type, with their
// expiry, as upstream's does.
func TestCredentialsProviderRetrieve(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	keys := newControllerKeys(t, nil)

	got, err := aws.Provider{Implementation: keys}.
		NewCredentialsProvider(context.Background(), auth.WithSTSRegion(region)).Retrieve(context.Background())

	g.Expect(err).NotTo(HaveOccurred())
	issued := keys.lastIssued()
	g.Expect(got).To(Equal(awssdk.Credentials{
		AccessKeyID:     issued.AccessKeyID,
		SecretAccessKey: issued.SecretAccessKey,
		SessionToken:    issued.SessionToken,
		CanExpire:       true,
		Expires:         issued.Expires,
	}))
}

// The chain's errors reach the caller unchanged, and through an SDK client
// still match with errors.Is.
func TestCredentialsProviderErrors(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	errNoAgent := errors.New("no EKS Pod Identity agent")
	keys := newControllerKeys(t, errNoAgent)
	creds := aws.Provider{Implementation: keys}.NewCredentialsProvider(context.Background(), auth.WithSTSRegion(region))

	_, err := creds.Retrieve(context.Background())
	g.Expect(err).To(MatchError("failed to get aws source credentials of the controller identity in region 'us-east-1': " +
		"no EKS Pod Identity agent"))
	g.Expect(err).To(MatchError(errNoAgent))

	_, err = keys.whoAmI(context.Background(), creds)
	g.Expect(err).To(MatchError(errNoAgent))
	g.Expect(keys.sts.Calls()).To(BeEmpty(), "nothing is sent unsigned")
}

// The options are the caller's at the time of the call: reusing the slice
// afterwards changes nothing.
func TestCredentialsProviderCopiesOptions(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	keys := newControllerKeys(t, nil)
	opts := []auth.Option{auth.WithSTSRegion(region)}
	creds := aws.Provider{Implementation: keys}.NewCredentialsProvider(context.Background(), opts...)
	opts[0] = auth.WithSTSEndpoint("https://not-an-sts-endpoint.example.com")

	_, err := creds.Retrieve(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
}
