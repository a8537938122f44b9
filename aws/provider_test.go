package aws_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

// stallingServer answers nothing until the client gives up or the test
// ends, like a credentials endpoint that accepted the connection and hung.
func stallingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var requests atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv, &requests
}

// The controller's credentials come from the SDK's default chain, whose
// container (EKS Pod Identity) and instance metadata providers honour the
// caller's context themselves: no goroutine of ours is needed to bound them.
// Not parallel: the chain is configured through the environment.
func TestNewControllerTokenHonoursTheDeadline(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  func(url string) map[string]string
	}{
		{name: "EKS Pod Identity agent", env: func(url string) map[string]string {
			return map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": url}
		}},
		{name: "EC2 instance metadata", env: func(url string) map[string]string {
			return map[string]string{"AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT": url}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			srv, requests := stallingServer(t)
			for k, v := range fakes.BaseAWSEnv(t.TempDir(), region) {
				t.Setenv(k, v)
			}
			for k, v := range tt.env(srv.URL) {
				t.Setenv(k, v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()

			start := time.Now()
			token, err := aws.Provider{}.NewControllerToken(ctx)

			g.Expect(token).To(BeNil())
			g.Expect(err).To(MatchError(context.DeadlineExceeded))
			g.Expect(requests.Load()).To(BeNumerically(">", 0), "the stalling endpoint was the one asked")
			// Generous: the point is that it is not the SDK's own timeouts
			// (seconds per attempt, several attempts) that end the call.
			g.Expect(time.Since(start)).To(BeNumerically("<", 2*time.Second))
		})
	}
}
