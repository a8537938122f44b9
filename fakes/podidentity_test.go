package fakes_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

func awsStartPodIdentityAgent(t *testing.T, s *fakes.AWSSTS, roleARN string) *fakes.PodIdentityAgent {
	t.Helper()
	a, err := fakes.StartPodIdentityAgent(s, roleARN)
	if err != nil {
		t.Fatalf("failed to start pod identity agent: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

func awsSetenv(t *testing.T, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// TestPodIdentity_DefaultConfig runs the SDK's default credential chain
// against the agent, then uses the credentials it got to call AssumeRole,
// which the fake STS verifies by signature. Not parallel: it sets env.
func TestPodIdentity_DefaultConfig(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	s.AllowAssumeRole(awsTestRole, awsTestTenantRole)
	agent := awsStartPodIdentityAgent(t, s, awsTestRole)
	awsSetenv(t, fakes.PodIdentityEnv(t.TempDir(), awsTestRegion, agent))

	cfg, err := config.LoadDefaultConfig(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg.Region).To(Equal(awsTestRegion))
	creds, err := cfg.Credentials.Retrieve(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(creds.AccessKeyID).To(MatchRegexp(`^ASIA[A-Z0-9]{16}$`))
	g.Expect(creds.AccountID).To(Equal("123456789012"))
	g.Expect(creds.CanExpire).To(BeTrue())
	// The SDK wraps container credentials in a cache with a five-minute
	// expiry window, which it subtracts from the reported expiry.
	g.Expect(creds.Expires).To(BeTemporally("~", time.Now().Add(55*time.Minute), time.Minute))
	g.Expect(agent.Requests()).To(Equal(int64(1)))

	out, err := s.Implementation().AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String(awsTestTenantRole),
		RoleSessionName: aws.String(awsTestSession),
	}, sts.Options{Region: cfg.Region, Credentials: cfg.Credentials, HTTPClient: cfg.HTTPClient})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(aws.ToString(out.AssumedRoleUser.Arn)).To(Equal("arn:aws:sts::210987654321:assumed-role/tenant-a/flux-session"))
	g.Expect(s.Calls()).To(Equal([]fakes.AWSSTSCall{{
		Action:          "AssumeRole",
		RoleARN:         awsTestTenantRole,
		RoleSessionName: awsTestSession,
		Caller:          awsTestRole,
		Region:          awsTestRegion,
	}}))
	// The SDK caches the agent's credentials.
	g.Expect(agent.Requests()).To(Equal(int64(1)))
}

// TestPodIdentity_WrongToken points the SDK at a token file with another
// token. Not parallel: it sets env.
func TestPodIdentity_WrongToken(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	agent := awsStartPodIdentityAgent(t, s, awsTestRole)
	dir := t.TempDir()
	env := fakes.PodIdentityEnv(dir, awsTestRegion, agent)
	wrong := filepath.Join(dir, "wrong-token")
	g.Expect(os.WriteFile(wrong, []byte("not-the-token"), 0o600)).To(Succeed())
	env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = wrong
	awsSetenv(t, env)

	cfg, err := config.LoadDefaultConfig(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = cfg.Credentials.Retrieve(ctx)
	g.Expect(awsErrorCode(err)).To(Equal("AccessDeniedException"))
	g.Expect(agent.Requests()).To(BeNumerically(">=", 1))
}

func TestPodIdentityAgent_HTTP(t *testing.T) {
	t.Parallel()
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	agent := awsStartPodIdentityAgent(t, s, awsTestRole)
	token, err := os.ReadFile(agent.TokenFile())
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name       string
		method     string
		url        string
		auth       string
		wantStatus int
	}{
		{name: "valid token", auth: string(token), wantStatus: http.StatusOK},
		{name: "missing token", wantStatus: http.StatusUnauthorized},
		{name: "wrong token", auth: strings.ToLower(string(token)), wantStatus: http.StatusForbidden},
		{name: "wrong method", method: http.MethodPost, auth: string(token), wantStatus: http.StatusMethodNotAllowed},
		{name: "wrong path", url: strings.TrimSuffix(agent.URL, "/v1/credentials") + "/v2/credentials", auth: string(token), wantStatus: http.StatusNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			method, url := http.MethodGet, agent.URL
			if tt.method != "" {
				method = tt.method
			}
			if tt.url != "" {
				url = tt.url
			}
			req, err := http.NewRequest(method, url, nil)
			g.Expect(err).NotTo(HaveOccurred())
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			g.Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			g.Expect(resp.StatusCode).To(Equal(tt.wantStatus))
			if tt.wantStatus != http.StatusOK {
				return
			}
			var body map[string]string
			g.Expect(json.NewDecoder(resp.Body).Decode(&body)).To(Succeed())
			g.Expect(body).To(HaveKeyWithValue("AccountId", "123456789012"))
			g.Expect(body).To(HaveKeyWithValue("AccessKeyId", MatchRegexp(`^ASIA[A-Z0-9]{16}$`)))
			g.Expect(body).To(HaveKeyWithValue("SecretAccessKey", HaveLen(40)))
			g.Expect(body).To(HaveKey("Token"))
			exp, err := time.Parse(time.RFC3339, body["Expiration"])
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(exp).To(BeTemporally("~", time.Now().Add(time.Hour), time.Minute))
		})
	}
}

func TestPodIdentityAgent_CloseRemovesTokenFile(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	agent, err := fakes.StartPodIdentityAgent(s, awsTestRole)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(agent.TokenFile()).To(BeAnExistingFile())
	agent.Close()
	g.Expect(agent.TokenFile()).NotTo(BeAnExistingFile())
}

func TestStartPodIdentityAgent_InvalidRole(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	s := awsStartSTS(t, fakes.AWSSTSOptions{})
	_, err := fakes.StartPodIdentityAgent(s, "controller")
	g.Expect(err).To(MatchError("failed to start pod identity agent: invalid role ARN 'controller'"))
}
