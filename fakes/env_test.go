package fakes_test

import (
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

// TestBaseAWSEnv_CABundle proves that the empty AWS_CA_BUNDLE of BaseAWSEnv
// lets the SDK take a custom HTTP client, which a non-empty one forbids.
// Not parallel: it sets env.
func TestBaseAWSEnv_CABundle(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	awsSetenv(t, fakes.BaseAWSEnv(dir, awsTestRegion))

	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithHTTPClient(&http.Client{}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg.Region).To(Equal(awsTestRegion))

	bundle := dir + "/ca.pem"
	g.Expect(os.WriteFile(bundle, []byte("not a certificate"), 0o600)).To(Succeed())
	t.Setenv("AWS_CA_BUNDLE", bundle)
	_, err = config.LoadDefaultConfig(context.Background(), config.WithHTTPClient(&http.Client{}))
	g.Expect(err).To(MatchError(ContainSubstring("unable to add custom RootCAs HTTPClient")))
}

// TestBaseAWSEnv_NoCredentials proves the machine leaks no credentials into
// the SDK. Not parallel: it sets env.
func TestBaseAWSEnv_NoCredentials(t *testing.T) {
	g := NewWithT(t)
	awsSetenv(t, fakes.BaseAWSEnv(t.TempDir(), awsTestRegion))
	cfg, err := config.LoadDefaultConfig(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	_, err = cfg.Credentials.Retrieve(context.Background())
	g.Expect(err).To(MatchError(ContainSubstring("AWS_EC2_METADATA_DISABLED")))
}

// TestIRSAEnv_DefaultConfig runs the SDK's web identity provider from the
// environment EKS injects for IRSA. Not parallel: it sets env.
func TestIRSAEnv_DefaultConfig(t *testing.T) {
	for _, tt := range []struct {
		name     string
		trusted  bool
		wantCode string
	}{
		{name: "trusted service account", trusted: true},
		{name: "untrusted service account", wantCode: "AccessDenied"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			issuer := awsSharedIssuer()
			s := awsStartSTS(t, fakes.AWSSTSOptions{Issuer: issuer})
			if tt.trusted {
				s.AllowWebIdentity(awsTestRole, awsTestNamespace, awsTestSA)
			}
			s.AllowAssumeRole(awsTestRole, awsTestTenantRole)
			env, err := fakes.IRSAEnv(t.TempDir(), awsTestRegion, s, issuer, awsTestRole, awsTestNamespace, awsTestSA)
			g.Expect(err).NotTo(HaveOccurred())
			token, err := os.ReadFile(env["AWS_WEB_IDENTITY_TOKEN_FILE"])
			g.Expect(err).NotTo(HaveOccurred())
			sub, err := issuer.Verify(string(token), "sts.amazonaws.com")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(sub).To(Equal("system:serviceaccount:flux-system:source-controller"))
			awsSetenv(t, env)

			cfg, err := s.Implementation().LoadDefaultConfig(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			creds, err := cfg.Credentials.Retrieve(ctx)
			g.Expect(s.Count("AssumeRoleWithWebIdentity")).To(Equal(1))
			call := s.Calls()[0]
			g.Expect(call.RoleARN).To(Equal(awsTestRole))
			g.Expect(call.Caller).To(Equal("system:serviceaccount:flux-system:source-controller"))
			if tt.wantCode != "" {
				g.Expect(awsErrorCode(err)).To(Equal(tt.wantCode))
				g.Expect(call.Err).To(Equal(tt.wantCode))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(call.Err).To(BeEmpty())

			// The controller's credentials can hop to a tenant role.
			_, err = s.Implementation().AssumeRole(ctx, &sts.AssumeRoleInput{
				RoleArn:         aws.String(awsTestTenantRole),
				RoleSessionName: aws.String(awsTestSession),
			}, sts.Options{Region: cfg.Region, Credentials: aws.NewCredentialsCache(awsStatic(creds))})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.Calls()[1].Caller).To(Equal(awsTestRole))
		})
	}
}
