package auth_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/fakes"
)

func podIdentityCase(t *testing.T) (*awsWorld, []auth.Option) {
	w := newAWSWorld(t)
	w.podIdentity(t)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-pod-identity.yaml"))
	return w, []auth.Option{auth.WithClient(kube), auth.WithServiceAccountNamespace("my-app"),
		auth.WithServiceAccountName("my-app"), auth.WithSTSRegion(region)}
}

func TestAWSAssumeRoleErrorNamesTargetAndSource(t *testing.T) {
	g := NewWithT(t)
	w, opts := podIdentityCase(t) // no trust from the controller role to the target

	_, err := auth.GetAccessToken(context.Background(), w.provider, opts...)

	g.Expect(err).To(MatchError(HavePrefix("failed to get aws credentials of '" + targetRole +
		"' impersonated from the controller identity in region 'us-east-1': sts AssumeRole in region 'us-east-1': " +
		"operation error STS: AssumeRole")))
	var apiErr smithy.APIError
	g.Expect(errors.As(err, &apiErr)).To(BeTrue())
	g.Expect(apiErr.ErrorCode()).To(Equal("AccessDenied"))
	g.Expect(err).To(MatchError(HaveSuffix(". the trust policy of '" + targetRole + "' must allow sts:AssumeRole " +
		"by the source role, and the source role's policy must allow sts:AssumeRole on it")))
}

func TestAWSAssumeRoleThroughProxy(t *testing.T) {
	g := NewWithT(t)
	w, opts := podIdentityCase(t)
	w.sts.AllowAssumeRole(controllerRole, targetRole)

	stsURL, _ := url.Parse(w.sts.URL)
	proxyURL, proxied := countingProxy(t, stsURL.Host)

	_, err := auth.GetAccessToken(context.Background(), w.provider, append(opts, auth.WithProxyURL(*proxyURL))...)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(proxied.Load()).To(Equal(int64(1)), "AssumeRole must go through the proxy")
	g.Expect(w.sts.Count("AssumeRole")).To(Equal(1))
}

func TestAWSAssumeRoleHonoursContext(t *testing.T) {
	g := NewWithT(t)
	issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
	g.Expect(err).NotTo(HaveOccurred())
	slow := fakes.StartAWSSTS(fakes.AWSSTSOptions{Issuer: issuer, Latency: time.Minute})
	t.Cleanup(slow.Close)
	w := &awsWorld{issuer: issuer, sts: slow}
	w.provider.Implementation = slow.Implementation()
	w.podIdentity(t)
	w.sts.AllowAssumeRole(controllerRole, targetRole)
	kube := fakes.NewKubeClient(issuer, loadServiceAccount(t, "aws-pod-identity.yaml"))

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = auth.GetAccessToken(ctx, w.provider, auth.WithClient(kube), auth.WithServiceAccountNamespace("my-app"),
		auth.WithServiceAccountName("my-app"), auth.WithSTSRegion(region))
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
}

func TestAWSCABundleErrorSaysWhatToDo(t *testing.T) {
	g := NewWithT(t)
	w, opts := podIdentityCase(t)
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	g.Expect(os.WriteFile(bundle, []byte("not used"), 0o600)).To(Succeed())
	t.Setenv("AWS_CA_BUNDLE", bundle)

	_, err := auth.GetAccessToken(context.Background(), w.provider, opts...)
	g.Expect(err).To(MatchError(HaveSuffix("the AWS SDK cannot use AWS_CA_BUNDLE with the controller's proxy-aware HTTP client: " +
		"unset AWS_CA_BUNDLE in the controller's environment and put the CA in SSL_CERT_FILE instead")))
	g.Expect(w.sts.Calls()).To(BeEmpty())
}
