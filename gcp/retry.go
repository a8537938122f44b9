package gcp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// The retry policy of the two Google endpoints we call for tokens, IAM
// Credentials generateAccessToken and the Google STS token exchange. Both
// mint a token and change nothing, so a request can be sent again whatever
// became of the previous one.
//
// A request is tried at most retryAttempts times in all. It is tried again
// after 429 Too Many Requests, 500, 502, 503 and 504, and after the
// connection was refused, reset or closed early (EOF); never after any
// other answer or error, nor after the context is done. Between attempts
// it waits a jittered exponential backoff, [250ms, 500ms), [500ms, 1s) and
// [1s, 2s), or what Retry-After asks when that is longer and at most
// retryAfterMax; a longer Retry-After ends the retries. So does a wait that
// would run past the request's deadline (the caller's, or the HTTP client's
// 10s timeout): the caller gets the last answer at once rather than a
// deadline error later.
const (
	retryAttempts = 4
	retryAfterMax = 5 * time.Second
)

var retryBackoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 1, Steps: retryAttempts - 1}

// retryTransport retries requests by the policy above. It is only ever put
// on clients that call the two token endpoints.
type retryTransport struct {
	base http.RoundTripper
}

// retrying returns base with retries, base being http.DefaultTransport when
// nil. Retries are never stacked: a retrying base is returned as it is.
func retrying(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if _, ok := base.(*retryTransport); ok {
		return base
	}
	return &retryTransport{base: base}
}

// RoundTrip implements http.RoundTripper.
func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		// The body cannot be sent twice.
		return t.base.RoundTrip(req)
	}
	var (
		resp    *http.Response
		err     error
		attempt int
		next    time.Duration // the wait before the next attempt
	)
	backoff := retryBackoff.DelayFunc()
	// Sliding: the delay is asked for after each attempt, which sets it.
	waitErr := wait.DelayFunc(func() time.Duration { return next }).Until(req.Context(), true, true,
		func(ctx context.Context) (bool, error) {
			attempt++
			r := req
			if attempt > 1 {
				r = req.Clone(ctx)
				if req.GetBody != nil {
					if r.Body, err = req.GetBody(); err != nil {
						resp = nil
						return true, nil
					}
				}
			}
			resp, err = t.base.RoundTrip(r)
			if attempt == retryAttempts || !retryable(resp, err) {
				return true, nil
			}
			next = backoff()
			if after, ok := retryAfter(resp); ok {
				if after > retryAfterMax {
					return true, nil
				}
				next = max(next, after)
			}
			if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= next {
				return true, nil
			}
			discard(resp)
			return false, nil
		})
	if waitErr != nil {
		// The context ended during a wait; the last answer is discarded.
		return nil, waitErr
	}
	return resp, err
}

// retryable says whether an attempt that ended so is worth repeating.
func retryable(resp *http.Response, err error) bool {
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
			errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryAfter reads the Retry-After header, in seconds or as an HTTP date.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp == nil {
		return 0, false
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(time.Until(at), 0), true
	}
	return 0, false
}

// discard drains a little of a response nobody reads, so its connection
// can be reused, and closes it.
func discard(resp *http.Response) {
	if resp == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
}
