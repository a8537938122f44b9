package gcp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	. "github.com/onsi/gomega"
	"golang.org/x/oauth2"
)

// scripted is a RoundTripper that answers attempt n with steps[n], the
// last step repeating, and records when each attempt came and its body.
type scripted struct {
	steps []func() (*http.Response, error)

	mu     sync.Mutex // guards times and bodies
	times  []time.Time
	bodies []string
}

func (s *scripted) RoundTrip(req *http.Request) (*http.Response, error) {
	var body string
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		_ = req.Body.Close()
		body = string(b)
	}
	s.mu.Lock()
	s.times = append(s.times, time.Now())
	s.bodies = append(s.bodies, body)
	n := len(s.times) - 1
	s.mu.Unlock()
	return s.steps[min(n, len(s.steps)-1)]()
}

func (s *scripted) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.times)
}

func status(code int, header ...string) func() (*http.Response, error) {
	return func() (*http.Response, error) {
		h := http.Header{}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader("body"))}, nil
	}
}

func fail(err error) func() (*http.Response, error) {
	return func() (*http.Response, error) { return nil, err }
}

func syscallErr(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)}
}

func post(ctx context.Context) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://sts.googleapis.com/v1/token",
		strings.NewReader("grant_type=x"))
	return req
}

func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	ok := status(http.StatusOK)
	for _, tt := range []struct {
		name         string
		steps        []func() (*http.Response, error)
		wantAttempts int
		wantStatus   int
		wantErr      error
	}{
		{name: "success", steps: steps(ok), wantAttempts: 1, wantStatus: 200},
		{name: "503 twice", steps: steps(status(503), status(503), ok), wantAttempts: 3, wantStatus: 200},
		{name: "429", steps: steps(status(429), ok), wantAttempts: 2, wantStatus: 200},
		{name: "500", steps: steps(status(500), ok), wantAttempts: 2, wantStatus: 200},
		{name: "502", steps: steps(status(502), ok), wantAttempts: 2, wantStatus: 200},
		{name: "504", steps: steps(status(504), ok), wantAttempts: 2, wantStatus: 200},
		{name: "503 for ever", steps: steps(status(503)), wantAttempts: 4, wantStatus: 503},
		{name: "501 is final", steps: steps(status(501), ok), wantAttempts: 1, wantStatus: 501},
		{name: "400 is final", steps: steps(status(400), ok), wantAttempts: 1, wantStatus: 400},
		{name: "401 is final", steps: steps(status(401), ok), wantAttempts: 1, wantStatus: 401},
		{name: "403 is final", steps: steps(status(403), ok), wantAttempts: 1, wantStatus: 403},
		{name: "connection refused", steps: steps(fail(syscallErr("dial", syscall.ECONNREFUSED)), ok), wantAttempts: 2, wantStatus: 200},
		{name: "connection reset", steps: steps(fail(syscallErr("read", syscall.ECONNRESET)), ok), wantAttempts: 2, wantStatus: 200},
		{name: "EOF", steps: steps(fail(fmt.Errorf("read: %w", io.EOF)), ok), wantAttempts: 2, wantStatus: 200},
		{name: "unexpected EOF", steps: steps(fail(io.ErrUnexpectedEOF), ok), wantAttempts: 2, wantStatus: 200},
		{
			name: "refused for ever", steps: steps(fail(syscallErr("dial", syscall.ECONNREFUSED))), wantAttempts: 4,
			wantErr: syscall.ECONNREFUSED,
		},
		{
			name: "other errors are final", steps: steps(fail(&net.DNSError{Err: "no such host", IsNotFound: true}), ok),
			wantAttempts: 1, wantErr: &net.DNSError{Err: "no such host", IsNotFound: true},
		},
		{
			name: "Retry-After within bounds", steps: steps(status(429, "Retry-After", "5"), ok),
			wantAttempts: 2, wantStatus: 200,
		},
		{
			name: "Retry-After beyond bounds ends the retries", steps: steps(status(429, "Retry-After", "6"), ok),
			wantAttempts: 1, wantStatus: 429,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				g := NewWithT(t)
				base := &scripted{steps: tt.steps}

				resp, err := retrying(base).RoundTrip(post(context.Background()))

				g.Expect(base.attempts()).To(Equal(tt.wantAttempts))
				g.Expect(base.bodies).To(HaveEach("grant_type=x"), "every attempt sends the whole body")
				if tt.wantErr != nil {
					g.Expect(err).To(MatchError(tt.wantErr))
					g.Expect(resp).To(BeNil())
					return
				}
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(resp.StatusCode).To(Equal(tt.wantStatus))
			})
		})
	}
}

func steps(s ...func() (*http.Response, error)) []func() (*http.Response, error) { return s }

func TestRetryBackoff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := NewWithT(t)
		base := &scripted{steps: steps(status(503))}
		start := time.Now()

		resp, err := retrying(base).RoundTrip(post(context.Background()))

		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(resp.StatusCode).To(Equal(503))
		g.Expect(base.times).To(HaveLen(4))
		g.Expect(base.times[0]).To(Equal(start))
		for i, want := range []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second} {
			gap := base.times[i+1].Sub(base.times[i])
			g.Expect(gap).To(BeNumerically(">=", want), "wait %d", i+1)
			g.Expect(gap).To(BeNumerically("<", 2*want), "wait %d", i+1)
		}
	})
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, value string
		want        time.Duration
	}{
		{name: "seconds", value: "3", want: 3 * time.Second},
		// synctest's clock starts at midnight UTC, 2000-01-01.
		{name: "HTTP date", value: "Sat, 01 Jan 2000 00:00:04 GMT", want: 4 * time.Second},
		{name: "shorter than the backoff", value: "0", want: 250 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				g := NewWithT(t)
				base := &scripted{steps: steps(status(429, "Retry-After", tt.value), status(200))}

				_, err := retrying(base).RoundTrip(post(context.Background()))

				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(base.times).To(HaveLen(2))
				gap := base.times[1].Sub(base.times[0])
				g.Expect(gap).To(BeNumerically(">=", tt.want))
				g.Expect(gap).To(BeNumerically("<=", max(tt.want, 500*time.Millisecond)))
			})
		})
	}
}

func TestRetryStopsAtTheDeadline(t *testing.T) {
	t.Parallel()
	t.Run("a wait past the deadline returns the last answer at once", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			g := NewWithT(t)
			ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
			defer cancel()
			base := &scripted{steps: steps(status(503))}
			start := time.Now()

			resp, err := retrying(base).RoundTrip(post(ctx))

			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(resp.StatusCode).To(Equal(503))
			// The first wait, under 500ms, fits; the second, 500ms or more, does not.
			g.Expect(base.attempts()).To(Equal(2))
			g.Expect(time.Since(start)).To(BeNumerically("<", 600*time.Millisecond))
		})
	})
	t.Run("a cancellation during a wait ends it", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			g := NewWithT(t)
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			base := &scripted{steps: steps(status(503))}

			resp, err := retrying(base).RoundTrip(post(ctx))

			g.Expect(resp).To(BeNil())
			g.Expect(err).To(MatchError(context.Canceled))
			g.Expect(base.attempts()).To(Equal(1))
			g.Expect(time.Since(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))).To(Equal(100 * time.Millisecond))
		})
	})
}

func TestRetryNeedsAReplayableBody(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	base := &scripted{steps: steps(status(503))}
	req := post(context.Background())
	req.GetBody = nil

	resp, err := retrying(base).RoundTrip(req)

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.StatusCode).To(Equal(503))
	g.Expect(base.attempts()).To(Equal(1))
}

func TestRetriesAreNeverStacked(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	once := retrying(http.DefaultTransport)
	g.Expect(retrying(once)).To(BeIdenticalTo(once))
	g.Expect(retrying(nil)).To(Equal(&retryTransport{base: http.DefaultTransport}))
	// With or without an implementation, upstream's token sources retry.
	g.Expect(Provider{}.upstream().Implementation).To(Equal(retryingImplementation{defaultImplementation{}}))
	// And a client handed down twice still retries once.
	ctx := withRetries(withRetries(context.Background()))
	g.Expect(ctx.Value(oauth2.HTTPClient).(*http.Client).Transport).To(Equal(&retryTransport{base: http.DefaultTransport}))
}
