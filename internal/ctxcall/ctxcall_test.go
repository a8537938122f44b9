package ctxcall_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/internal/ctxcall"
)

var errCall = errors.New("call failed")

func TestDo(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		// takes is how long the call takes, ignoring its context.
		takes     time.Duration
		deadline  time.Duration
		value     string
		err       error
		wantValue string
		wantErr   string
	}{
		{name: "returns in time", takes: time.Second, deadline: 3 * time.Second, value: "v", wantValue: "v"},
		{name: "fails in time", takes: time.Second, deadline: 3 * time.Second, err: errCall, wantErr: "call failed"},
		{
			name: "ignores the deadline", takes: 30 * time.Second, deadline: 3 * time.Second, value: "late",
			wantErr: "gave up on the GKE metadata server after 3s: context deadline exceeded",
		},
		{
			name: "sub-second deadline", takes: time.Minute, deadline: 1500 * time.Microsecond,
			wantErr: "gave up on the GKE metadata server after 2ms: context deadline exceeded",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				g := NewWithT(t)
				ctx, cancel := context.WithTimeout(context.Background(), tt.deadline)
				defer cancel()
				var finished atomic.Bool

				v, err := ctxcall.Do(ctx, "the GKE metadata server", func(context.Context) (string, error) {
					time.Sleep(tt.takes) // a call that ignores its context
					finished.Store(true)
					return tt.value, tt.err
				})

				if tt.wantErr != "" {
					g.Expect(err).To(MatchError(tt.wantErr))
				} else {
					g.Expect(err).NotTo(HaveOccurred())
				}
				g.Expect(v).To(Equal(tt.wantValue))
				if errors.Is(err, context.DeadlineExceeded) {
					g.Expect(finished.Load()).To(BeFalse(), "the caller returned at its deadline")
				}
				// The abandoned call ends on its own and leaves nothing behind
				// (synctest.Test fails on a goroutine left blocked).
				time.Sleep(tt.takes)
				synctest.Wait()
				g.Expect(finished.Load()).To(BeTrue())
			})
		})
	}
}

func TestDoCancelled(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := NewWithT(t)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		release := make(chan struct{})
		defer close(release)

		_, err := ctxcall.Do(ctx, "Google STS", func(context.Context) (int, error) {
			<-release
			return 1, nil
		})

		g.Expect(err).To(MatchError("gave up on Google STS after 1s: context canceled"))
		g.Expect(err).To(MatchError(context.Canceled))
	})
}

func TestDoDoesNotStartWhenDone(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var calls atomic.Int32

	_, err := ctxcall.Do(ctx, "x", func(context.Context) (int, error) { calls.Add(1); return 1, nil })

	g.Expect(err).To(MatchError("gave up on x after 0s: context canceled"))
	g.Expect(calls.Load()).To(BeZero())
}

func TestDoPassesTheContext(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")

	v, err := ctxcall.Do(ctx, "x", func(ctx context.Context) (any, error) { return ctx.Value(key{}), nil })

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal("v"))
}

func TestDoPanics(t *testing.T) {
	t.Parallel()
	t.Run("while the caller waits, in the caller", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		g.Expect(func() {
			_, _ = ctxcall.Do(context.Background(), "x", func(context.Context) (int, error) { panic("boom") })
		}).To(PanicWith("boom"))
	})
	t.Run("after the caller gave up, nowhere", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			g := NewWithT(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := ctxcall.Do(ctx, "x", func(context.Context) (int, error) {
				time.Sleep(time.Minute)
				panic("boom")
			})
			g.Expect(err).To(MatchError(context.DeadlineExceeded))
			time.Sleep(2 * time.Minute) // fake time: the panic happens, and must not crash
		})
	})
}

func TestGroupSharesOneCall(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := NewWithT(t)
		var group ctxcall.Group[string]
		var calls atomic.Int32
		var sawDone atomic.Bool
		call := func(ctx context.Context) (string, error) {
			calls.Add(1)
			time.Sleep(10 * time.Second) // ignores its context
			sawDone.Store(ctx.Err() != nil)
			return "loaded", nil
		}

		type result struct {
			v   string
			err error
		}
		results := make([]chan result, 3)
		for i, deadline := range []time.Duration{time.Second, 20 * time.Second, time.Minute} {
			results[i] = make(chan result, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				v, err := group.Do(ctx, "gke", "the GKE metadata server", call)
				results[i] <- result{v, err}
			}()
		}

		first := <-results[0]
		g.Expect(first.err).To(MatchError("gave up on the GKE metadata server after 1s: context deadline exceeded"))
		for _, r := range results[1:] {
			got := <-r
			g.Expect(got.err).NotTo(HaveOccurred())
			g.Expect(got.v).To(Equal("loaded"))
		}
		g.Expect(calls.Load()).To(Equal(int32(1)))
		g.Expect(sawDone.Load()).To(BeFalse(), "the first caller giving up does not cancel the shared call")

		// The flight is over: the next caller starts a new one.
		v, err := group.Do(context.Background(), "gke", "the GKE metadata server", call)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(v).To(Equal("loaded"))
		g.Expect(calls.Load()).To(Equal(int32(2)))
	})
}

func TestGroupPanics(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	var group ctxcall.Group[int]
	g.Expect(func() {
		_, _ = group.Do(context.Background(), "k", "x", func(context.Context) (int, error) { panic("boom") })
	}).To(PanicWith("boom"))
}

// A call that honours its context fails with its own error when the
// deadline passes, which need not wrap ctx.Err(); the caller's error does.
func TestDoReportsAFailureAtTheDeadlineAsGivingUp(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := NewWithT(t)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()

		_, err := ctxcall.Do(ctx, "Google STS", func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, fmt.Errorf("oauth2/google: invalid response from Secure Token Server: %v", ctx.Err())
		})

		g.Expect(err).To(MatchError("gave up on Google STS after 3s: context deadline exceeded"))
		g.Expect(err).To(MatchError(context.DeadlineExceeded))
	})
}
