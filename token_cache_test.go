package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

// cacheTestT0 is on a whole second, so the wall-clock deadline (truncated to
// the second, as upstream) equals the monotonic one unless a test says not.
var cacheTestT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var errCacheTestFetch = errors.New("sts unavailable")

type cacheTestToken struct {
	id string
	d  time.Duration
}

func (t *cacheTestToken) GetDuration() time.Duration { return t.d }

func tokenID(t fluxauth.Token) string {
	if t == nil {
		return ""
	}
	return t.(*cacheTestToken).id
}

// cacheTestClock is the injected clock: time moves only when a test says so.
type cacheTestClock struct {
	mu  sync.Mutex
	now time.Time
}

func newCacheTestClock() *cacheTestClock { return &cacheTestClock{now: cacheTestT0} }

func (c *cacheTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *cacheTestClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// fetchToken returns a fetch that counts its calls and returns token id.
func fetchToken(calls *atomic.Int32, id string, d time.Duration) func(context.Context) (fluxauth.Token, error) {
	return func(context.Context) (fluxauth.Token, error) {
		calls.Add(1)
		return &cacheTestToken{id: id, d: d}, nil
	}
}

func fetchError(calls *atomic.Int32) func(context.Context) (fluxauth.Token, error) {
	return func(context.Context) (fluxauth.Token, error) {
		calls.Add(1)
		return nil, errCacheTestFetch
	}
}

type cacheTestResult struct {
	token fluxauth.Token
	hit   bool
	err   error
}

func TestNewTokenCache_Errors(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name     string
		capacity int
		opts     []TokenCacheOption
		wantErr  string
	}{
		{name: "zero capacity", capacity: 0, wantErr: "invalid token cache capacity '0': must be greater than zero"},
		{name: "negative capacity", capacity: -1, wantErr: "invalid token cache capacity '-1': must be greater than zero"},
		{name: "zero max duration", capacity: 1, opts: []TokenCacheOption{CacheMaxDuration(0)},
			wantErr: "invalid token cache max duration '0s': must be greater than zero"},
		{name: "zero fetch timeout", capacity: 1, opts: []TokenCacheOption{CacheFetchTimeout(0)},
			wantErr: "invalid token cache fetch timeout '0s': must be greater than zero"},
		{name: "negative fetch timeout", capacity: 1, opts: []TokenCacheOption{CacheFetchTimeout(-time.Second)},
			wantErr: "invalid token cache fetch timeout '-1s': must be greater than zero"},
		{name: "zero fetch hedge delay", capacity: 1, opts: []TokenCacheOption{CacheFetchHedgeDelay(0)},
			wantErr: "invalid token cache fetch hedge delay '0s': must be greater than zero"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			c, err := NewTokenCache(tt.capacity, tt.opts...)
			g.Expect(err).To(MatchError(tt.wantErr))
			g.Expect(c).To(BeNil())
		})
	}
}

func TestNewTokenCache_MetricsConflict(t *testing.T) {
	t.Parallel()

	t.Run("two caches with one prefix", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		reg := prometheus.NewPedanticRegistry()
		_, err := NewTokenCache(1, CacheMetricsRegisterer(reg), CacheMetricsPrefix("gotk_"))
		g.Expect(err).NotTo(HaveOccurred())

		_, err = NewTokenCache(1, CacheMetricsRegisterer(reg), CacheMetricsPrefix("gotk_"))
		g.Expect(err).To(MatchError(HavePrefix("failed to register token cache metrics with prefix 'gotk_': ")))
		var are prometheus.AlreadyRegisteredError
		g.Expect(errors.As(err, &are)).To(BeTrue())

		_, err = NewTokenCache(1, CacheMetricsRegisterer(reg), CacheMetricsPrefix("other_"))
		g.Expect(err).NotTo(HaveOccurred())
	})

	t.Run("a failed registration registers nothing", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		reg := prometheus.NewPedanticRegistry()
		// Registered after several of ours, so those must be rolled back.
		squatter := prometheus.NewGauge(prometheus.GaugeOpts{Name: "gotk_cache_evictions_total", Help: "x"})
		g.Expect(reg.Register(squatter)).To(Succeed())

		_, err := NewTokenCache(1, CacheMetricsRegisterer(reg), CacheMetricsPrefix("gotk_"))
		g.Expect(err).To(MatchError(HavePrefix("failed to register token cache metrics with prefix 'gotk_': ")))

		// Identical collectors register only if ours are gone.
		g.Expect(reg.Register(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gotk_cache_events_total",
			Help: "Total number of cache retrieval events for a Gitops Toolkit resource reconciliation.",
		}, []string{"event_type", "kind", "name", "namespace", "operation"}))).To(Succeed())
		g.Expect(reg.Register(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gotk_cache_requests_total",
			Help: "Total number of cache requests partioned by success or failure.",
		}, []string{"status"}))).To(Succeed())
		g.Expect(reg.Register(prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gotk_cached_items",
			Help: "Total number of items in the cache.",
		}))).To(Succeed())
	})
}

func TestTokenCache_HitAfterMiss(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	c, err := NewTokenCache(1, CacheClock(newCacheTestClock().Now))
	g.Expect(err).NotTo(HaveOccurred())
	var calls atomic.Int32

	tok, hit, err := c.getOrFetch(ctx, "k", cache.InvolvedObject{}, fetchToken(&calls, "a", time.Hour))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hit).To(BeFalse())
	g.Expect(tokenID(tok)).To(Equal("a"))

	tok, hit, err = c.getOrFetch(ctx, "k", cache.InvolvedObject{}, fetchToken(&calls, "b", time.Hour))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hit).To(BeTrue())
	g.Expect(tokenID(tok)).To(Equal("a"))
	g.Expect(calls.Load()).To(Equal(int32(1)))
	g.Expect(c.Len()).To(Equal(1))
}

func TestTokenCache_NilTokenIsAnError(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	c, err := NewTokenCache(1)
	g.Expect(err).NotTo(HaveOccurred())

	_, _, err = c.getOrFetch(context.Background(), "k", cache.InvolvedObject{},
		func(context.Context) (fluxauth.Token, error) { return nil, nil })
	g.Expect(err).To(MatchError(errNoTokenFetched))
	g.Expect(c.Len()).To(Equal(0))
}

// Upstream holds its cache-wide lock across the fetch, so this hit would wait
// for the slow key.
func TestTokenCache_HitDoesNotWaitForUnrelatedFetch(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	c, err := NewTokenCache(10)
	g.Expect(err).NotTo(HaveOccurred())
	var calls atomic.Int32
	_, _, err = c.getOrFetch(ctx, "warm", cache.InvolvedObject{}, fetchToken(&calls, "w", time.Hour))
	g.Expect(err).NotTo(HaveOccurred())

	started, release := make(chan struct{}), make(chan struct{})
	slow := make(chan cacheTestResult)
	go func() {
		tok, hit, err := c.getOrFetch(ctx, "slow", cache.InvolvedObject{}, func(context.Context) (fluxauth.Token, error) {
			close(started)
			<-release
			return &cacheTestToken{id: "s", d: time.Hour}, nil
		})
		slow <- cacheTestResult{tok, hit, err}
	}()
	<-started

	// Both return while the slow fetch is still blocked on release.
	tok, hit, err := c.getOrFetch(ctx, "warm", cache.InvolvedObject{}, fetchError(&calls))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hit).To(BeTrue())
	g.Expect(tokenID(tok)).To(Equal("w"))
	tok, _, err = c.getOrFetch(ctx, "other", cache.InvolvedObject{}, fetchToken(&calls, "o", time.Hour))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(tokenID(tok)).To(Equal("o"))

	close(release)
	r := <-slow
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(tokenID(r.token)).To(Equal("s"))
}

func TestTokenCache_DistinctKeysFetchInParallel(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	const n = 40
	c, err := NewTokenCache(n, CacheMetricsRegisterer(prometheus.NewPedanticRegistry()))
	g.Expect(err).NotTo(HaveOccurred())

	var inFetch atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	results := make(chan cacheTestResult, n)
	for i := range n {
		go func() {
			tok, hit, err := c.getOrFetch(context.Background(), fmt.Sprint(i), cache.InvolvedObject{},
				func(context.Context) (fluxauth.Token, error) {
					inFetch.Add(1)
					started <- struct{}{}
					<-release
					return &cacheTestToken{id: fmt.Sprint(i), d: time.Hour}, nil
				})
			results <- cacheTestResult{tok, hit, err}
		}()
	}
	// A cache that serialised misses would never get past the first of these.
	for range n {
		<-started
	}
	g.Expect(inFetch.Load()).To(Equal(int32(n)))
	g.Expect(testutil.ToFloat64(c.metrics.inflight)).To(Equal(float64(n)))

	close(release)
	for range n {
		r := <-results
		g.Expect(r.err).NotTo(HaveOccurred())
		g.Expect(r.hit).To(BeFalse())
	}
	g.Expect(c.Len()).To(Equal(n))
	g.Expect(testutil.ToFloat64(c.metrics.inflight)).To(BeZero())
}

func TestTokenCache_ConcurrentMissesShareOneFetch(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := NewWithT(t)
		c, err := NewTokenCache(1)
		g.Expect(err).NotTo(HaveOccurred())

		var calls atomic.Int32
		release := make(chan struct{})
		fetch := func(context.Context) (fluxauth.Token, error) {
			calls.Add(1)
			<-release
			return &cacheTestToken{id: "shared", d: time.Hour}, nil
		}
		get := func(ctx context.Context, out chan<- cacheTestResult) {
			tok, hit, err := c.getOrFetch(ctx, "k", cache.InvolvedObject{}, fetch)
			out <- cacheTestResult{tok, hit, err}
		}

		// The caller that starts the flight is the one that gives up: the
		// fetch must survive it.
		quitter, cancel := context.WithCancel(context.Background())
		quitterResult := make(chan cacheTestResult, 1)
		go get(quitter, quitterResult)
		synctest.Wait()

		const others = 49
		results := make(chan cacheTestResult, others)
		for range others {
			go get(context.Background(), results)
		}
		synctest.Wait() // all 50 are waiting on the one fetch
		g.Expect(calls.Load()).To(Equal(int32(1)))

		cancel()
		r := <-quitterResult
		g.Expect(r.err).To(MatchError(context.Canceled))
		g.Expect(r.token).To(BeNil())

		close(release)
		for range others {
			r := <-results
			g.Expect(r.err).NotTo(HaveOccurred())
			g.Expect(tokenID(r.token)).To(Equal("shared"))
		}
		g.Expect(calls.Load()).To(Equal(int32(1)))
	})
}

func TestTokenCache_FetchContextIsDetachedAndBounded(t *testing.T) {
	t.Parallel()

	type ctxKey struct{}
	t.Run("outlives the caller and keeps its values", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			g := NewWithT(t)
			c, err := NewTokenCache(1)
			g.Expect(err).NotTo(HaveOccurred())

			start := time.Now()
			fetchCtx := make(chan context.Context, 1)
			release := make(chan struct{})
			ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
			errs := make(chan error, 1)
			go func() {
				_, _, err := c.getOrFetch(ctx, "k", cache.InvolvedObject{}, func(ctx context.Context) (fluxauth.Token, error) {
					fetchCtx <- ctx
					<-release
					return &cacheTestToken{id: "a", d: time.Hour}, nil
				})
				errs <- err
			}()
			synctest.Wait()
			cancel()
			g.Expect(<-errs).To(MatchError(context.Canceled))

			fctx := <-fetchCtx
			g.Expect(fctx.Err()).NotTo(HaveOccurred())
			g.Expect(fctx.Value(ctxKey{})).To(Equal("v"))
			deadline, ok := fctx.Deadline()
			g.Expect(ok).To(BeTrue())
			g.Expect(deadline).To(Equal(start.Add(defaultTokenFetchTimeout)))

			// The abandoned fetch still fills the cache.
			close(release)
			synctest.Wait()
			tok, hit, err := c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, fetchError(new(atomic.Int32)))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(hit).To(BeTrue())
			g.Expect(tokenID(tok)).To(Equal("a"))
		})
	})
}

func TestTokenCache_Expiry(t *testing.T) {
	t.Parallel()

	// A 100s token: refreshed from 72s (90% of 80%), valid until 90s (its
	// expiry less a margin of 10%).
	for _, tt := range []struct {
		name        string
		opts        []TokenCacheOption
		fetchedAt   time.Duration // after cacheTestT0
		lifetime    time.Duration
		at          time.Duration // after cacheTestT0
		wantRefresh bool          // the cached token is served and refreshed
		wantMiss    bool          // the caller waits for a new token
	}{
		{name: "just fetched", lifetime: 100 * time.Second},
		{name: "1ns before the refresh point", lifetime: 100 * time.Second, at: 72*time.Second - 1},
		{name: "at the refresh point", lifetime: 100 * time.Second, at: 72 * time.Second, wantRefresh: true},
		{name: "past upstream's stale point", lifetime: 100 * time.Second, at: 80 * time.Second, wantRefresh: true},
		{name: "1ns before expiry less the margin", lifetime: 100 * time.Second, at: 90*time.Second - 1, wantRefresh: true},
		{name: "at expiry less the margin", lifetime: 100 * time.Second, at: 90 * time.Second, wantMiss: true},
		{name: "long past expiry", lifetime: 100 * time.Second, at: 24 * time.Hour, wantMiss: true},
		// The 1h cap moves the refresh point, not the validity, whose margin
		// is capped at 30s.
		{name: "long token, 1ns before 90% of the 1h cap", lifetime: 10 * time.Hour, at: 54*time.Minute - 1},
		{name: "long token, at 90% of the 1h cap", lifetime: 10 * time.Hour, at: 54 * time.Minute, wantRefresh: true},
		{name: "long token, 1ns before expiry less 30s", lifetime: 10 * time.Hour, at: 10*time.Hour - 30*time.Second - 1, wantRefresh: true},
		{name: "long token, at expiry less 30s", lifetime: 10 * time.Hour, at: 10*time.Hour - 30*time.Second, wantMiss: true},
		{name: "max duration above 1h is capped at 1h", opts: []TokenCacheOption{CacheMaxDuration(2 * time.Hour)},
			lifetime: 10 * time.Hour, at: 54 * time.Minute, wantRefresh: true},
		{name: "shorter max duration, 1ns before", opts: []TokenCacheOption{CacheMaxDuration(10 * time.Minute)},
			lifetime: time.Hour, at: 9*time.Minute - 1},
		{name: "shorter max duration, at", opts: []TokenCacheOption{CacheMaxDuration(10 * time.Minute)},
			lifetime: time.Hour, at: 9 * time.Minute, wantRefresh: true},
		// Fetched at +0.5s, a 10s token's monotonic deadlines are +7.7s
		// (refresh) and +9.5s (valid), but the wall clock ones are truncated
		// to +7s and +9s, as upstream.
		{name: "wall clock: 1ns before the truncated refresh point", fetchedAt: 500 * time.Millisecond,
			lifetime: 10 * time.Second, at: 7*time.Second - 1},
		{name: "wall clock: at the truncated refresh point", fetchedAt: 500 * time.Millisecond,
			lifetime: 10 * time.Second, at: 7 * time.Second, wantRefresh: true},
		{name: "wall clock: 1ns before the truncated validity", fetchedAt: 500 * time.Millisecond,
			lifetime: 10 * time.Second, at: 9*time.Second - 1, wantRefresh: true},
		{name: "wall clock: at the truncated validity", fetchedAt: 500 * time.Millisecond,
			lifetime: 10 * time.Second, at: 9 * time.Second, wantMiss: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				g := NewWithT(t)
				clock := newCacheTestClock()
				c, err := NewTokenCache(1, append(tt.opts, CacheClock(clock.Now))...)
				g.Expect(err).NotTo(HaveOccurred())
				var calls atomic.Int32
				ctx := context.Background()

				clock.Set(cacheTestT0.Add(tt.fetchedAt))
				_, _, err = c.getOrFetch(ctx, "k", cache.InvolvedObject{}, fetchToken(&calls, "old", tt.lifetime))
				g.Expect(err).NotTo(HaveOccurred())

				clock.Set(cacheTestT0.Add(tt.at))
				start := time.Now()
				tok, hit, err := c.getOrFetch(ctx, "k", cache.InvolvedObject{}, fetchToken(&calls, "new", time.Hour))
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(time.Since(start)).To(BeZero())
				synctest.Wait() // for any refresh
				if tt.wantMiss {
					g.Expect(hit).To(BeFalse())
					g.Expect(tokenID(tok)).To(Equal("new"))
					g.Expect(calls.Load()).To(Equal(int32(2)))
					return
				}
				g.Expect(hit).To(BeTrue())
				g.Expect(tokenID(tok)).To(Equal("old"))
				if tt.wantRefresh {
					g.Expect(calls.Load()).To(Equal(int32(2)))
					tok, _, _ = c.getOrFetch(ctx, "k", cache.InvolvedObject{}, fetchError(&calls))
					g.Expect(tokenID(tok)).To(Equal("new"))
				} else {
					g.Expect(calls.Load()).To(Equal(int32(1)))
				}
			})
		})
	}
}

// With a 100s token: refreshed in the background from 72s (90% of the
// fresh 80%), valid until 90s.
const cacheTestLifetime = 100 * time.Second

func TestTokenCache_RefreshAhead(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := NewWithT(t)
		clock := newCacheTestClock()
		reg := prometheus.NewPedanticRegistry()
		c, err := NewTokenCache(1, CacheClock(clock.Now), CacheMetricsRegisterer(reg))
		g.Expect(err).NotTo(HaveOccurred())
		ctx := context.Background()
		var calls atomic.Int32
		_, _, err = c.getOrFetch(ctx, "k", cache.InvolvedObject{}, fetchToken(&calls, "old", cacheTestLifetime))
		g.Expect(err).NotTo(HaveOccurred())

		release := make(chan struct{})
		refresh := func(context.Context) (fluxauth.Token, error) {
			calls.Add(1)
			<-release
			return &cacheTestToken{id: "new", d: cacheTestLifetime}, nil
		}
		get := func(at time.Duration) (string, bool) {
			clock.Set(cacheTestT0.Add(at))
			tok, hit, err := c.getOrFetch(ctx, "k", cache.InvolvedObject{}, refresh)
			g.Expect(err).NotTo(HaveOccurred())
			synctest.Wait()
			return tokenID(tok), hit
		}

		id, hit := get(72*time.Second - 1)
		g.Expect(id).To(Equal("old"))
		g.Expect(hit).To(BeTrue())
		g.Expect(calls.Load()).To(Equal(int32(1)), "no refresh before 90% of the fresh window")

		// The refresh is blocked, yet hits keep returning the old token until
		// it is no longer valid, and start no second refresh.
		for _, at := range []time.Duration{72 * time.Second, 80 * time.Second, 90*time.Second - 1} {
			id, hit := get(at)
			g.Expect(id).To(Equal("old"))
			g.Expect(hit).To(BeTrue())
		}
		g.Expect(calls.Load()).To(Equal(int32(2)))
		g.Expect(testutil.ToFloat64(c.metrics.inflight)).To(Equal(1.0))

		close(release)
		synctest.Wait()
		id, hit = get(90 * time.Second)
		g.Expect(id).To(Equal("new"))
		g.Expect(hit).To(BeTrue())
		g.Expect(calls.Load()).To(Equal(int32(2)))
		g.Expect(testutil.ToFloat64(c.metrics.refreshesSuccess)).To(Equal(1.0))
		g.Expect(testutil.ToFloat64(c.metrics.items)).To(Equal(1.0))
	})
}

// Issue 9: with a 40s token and a refresh that hangs, callers after 32s (the
// old stale point) joined the hung refresh and failed at their deadline,
// though the cached token was valid until 40s. A valid token is served at
// hit speed whatever its refresh does, and only the refresh-failure handler
// and the metrics hear of the trouble.
func TestTokenCache_ServesValidTokenWhateverItsRefreshDoes(t *testing.T) {
	t.Parallel()
	// Refreshed from 28.8s (90% of 80%), valid until 36s (less 10%).
	const lifetime = 40 * time.Second

	for _, tt := range []struct {
		name            string
		refresh         func(ctx context.Context) (fluxauth.Token, error)
		newFrom         time.Duration // when the refreshed token is served; 0 = never
		wantReports     types.GomegaMatcher
		wantRefreshErrs float64
	}{
		{name: "hangs",
			refresh: func(ctx context.Context) (fluxauth.Token, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
			// The refresh gives up when the token is no longer valid, before
			// the fetch times out at 58.8s.
			wantReports:     Equal([]string{"k: gave up waiting for the token fetch after 7.2s: context deadline exceeded"}),
			wantRefreshErrs: 1},
		{name: "fails",
			refresh: func(context.Context) (fluxauth.Token, error) { return nil, errCacheTestFetch },
			// At 28.8s, then after 1-1.5s, 2-3s and maybe 4-6s more.
			wantReports:     SatisfyAll(WithTransform(func(r []string) int { return len(r) }, BeNumerically(">=", 3)), HaveEach("k: sts unavailable")),
			wantRefreshErrs: -1},
		{name: "returns an expired token",
			refresh: func(context.Context) (fluxauth.Token, error) {
				return &cacheTestToken{id: "expired", d: -time.Second}, nil
			},
			wantReports:     SatisfyAll(WithTransform(func(r []string) int { return len(r) }, BeNumerically(">=", 3)), HaveEach(HavePrefix("k: failed to fetch token: provider returned a token that is already expired"))),
			wantRefreshErrs: -1},
		{name: "is slow",
			refresh: func(ctx context.Context) (fluxauth.Token, error) {
				time.Sleep(5 * time.Second)
				return &cacheTestToken{id: "new", d: lifetime}, nil
			},
			newFrom:     28800*time.Millisecond + 5*time.Second,
			wantReports: BeEmpty()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				g := NewWithT(t)
				var mu sync.Mutex
				var reports []string
				c, err := NewTokenCache(1, CacheMetricsRegisterer(prometheus.NewPedanticRegistry()),
					CacheRefreshFailureHandler(func(key string, err error) {
						mu.Lock()
						defer mu.Unlock()
						reports = append(reports, key+": "+err.Error())
					}))
				g.Expect(err).NotTo(HaveOccurred())
				t0 := time.Now()
				var calls atomic.Int32
				_, _, err = c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, fetchToken(&calls, "old", lifetime))
				g.Expect(err).NotTo(HaveOccurred())

				for _, at := range []time.Duration{28800 * time.Millisecond, 30 * time.Second, 32 * time.Second,
					34900 * time.Millisecond, 35 * time.Second, 36*time.Second - 1} {
					time.Sleep(time.Until(t0.Add(at)))
					ctx, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
					start := time.Now()
					tok, hit, err := c.getOrFetch(ctx, "k", cache.InvolvedObject{}, tt.refresh)
					cancel()
					want := "old"
					if tt.newFrom > 0 && at >= tt.newFrom {
						want = "new"
					}
					g.Expect(err).NotTo(HaveOccurred(), "at %s", at)
					g.Expect(hit).To(BeTrue(), "at %s", at)
					g.Expect(tokenID(tok)).To(Equal(want), "at %s", at)
					g.Expect(time.Since(start)).To(BeZero(), "at %s", at)
				}
				time.Sleep(time.Until(t0.Add(36 * time.Second)))
				time.Sleep(defaultTokenFetchTimeout) // for a hung refresh to time out
				mu.Lock()
				defer mu.Unlock()
				g.Expect(reports).To(tt.wantReports)
				wantRefreshErrs := tt.wantRefreshErrs
				if wantRefreshErrs < 0 { // one per attempt, each reported
					wantRefreshErrs = float64(len(reports))
				}
				g.Expect(testutil.ToFloat64(c.metrics.refreshesFailures)).To(Equal(wantRefreshErrs))
				g.Expect(testutil.ToFloat64(c.metrics.fetchErrors)).To(Equal(wantRefreshErrs))
				g.Expect(testutil.ToFloat64(c.metrics.inflight)).To(BeZero())
			})
		})
	}
}

func TestTokenCache_RefreshRetriesWithBackoffUntilSuccess(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := NewWithT(t)
		var reported atomic.Int32
		reg := prometheus.NewPedanticRegistry()
		c, err := NewTokenCache(1, CacheMetricsRegisterer(reg),
			CacheRefreshFailureHandler(func(string, error) { reported.Add(1) }))
		g.Expect(err).NotTo(HaveOccurred())
		var calls atomic.Int32
		_, _, err = c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, fetchToken(&calls, "old", time.Hour))
		g.Expect(err).NotTo(HaveOccurred())

		var mu sync.Mutex
		var attempts []time.Time // guarded by mu
		flaky := func(context.Context) (fluxauth.Token, error) {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, time.Now())
			if len(attempts) <= 3 {
				return nil, errCacheTestFetch
			}
			return &cacheTestToken{id: "new", d: time.Hour}, nil
		}
		time.Sleep(43*time.Minute + 12*time.Second) // the refresh point: 90% of 80% of 1h
		tok, _, err := c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, flaky)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(tokenID(tok)).To(Equal("old"))
		time.Sleep(time.Minute)

		mu.Lock()
		defer mu.Unlock()
		g.Expect(attempts).To(HaveLen(4))
		for i, base := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			gap := attempts[i+1].Sub(attempts[i])
			g.Expect(gap).To(BeNumerically(">=", base), "retry %d", i+1)
			g.Expect(gap).To(BeNumerically("<=", base*3/2), "retry %d", i+1)
		}
		g.Expect(reported.Load()).To(Equal(int32(3)))
		g.Expect(testutil.ToFloat64(c.metrics.refreshesFailures)).To(Equal(3.0))
		g.Expect(testutil.ToFloat64(c.metrics.refreshesSuccess)).To(Equal(1.0))

		tok, hit, err := c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, fetchError(&calls))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(hit).To(BeTrue())
		g.Expect(tokenID(tok)).To(Equal("new"))
	})
}

// Once the token is no longer valid the background refresh stops; the next
// caller fetches for itself and gets the error.
func TestTokenCache_RefreshStopsWithTheToken(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := NewWithT(t)
		c, err := NewTokenCache(1)
		g.Expect(err).NotTo(HaveOccurred())
		var calls atomic.Int32
		_, _, err = c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, fetchToken(&calls, "old", cacheTestLifetime))
		g.Expect(err).NotTo(HaveOccurred())

		time.Sleep(72 * time.Second)
		_, _, err = c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, fetchError(&calls))
		g.Expect(err).NotTo(HaveOccurred())
		time.Sleep(90*time.Second - 72*time.Second) // valid until 90s
		retries := calls.Load()
		g.Expect(retries).To(BeNumerically(">=", 1+4), "the first fetch; attempts at 72s, then 1, 2 and 4s apart, +0-50%")

		time.Sleep(time.Hour)
		g.Expect(calls.Load()).To(Equal(retries))
		tok, hit, err := c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, fetchError(&calls))
		g.Expect(err).To(MatchError(errCacheTestFetch))
		g.Expect(hit).To(BeFalse())
		g.Expect(tok).To(BeNil())
	})
}

func TestTokenCache_BadSuccessIsNeverCached(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name      string
		fetchedAt time.Duration // after cacheTestT0
		lifetime  time.Duration
		wantErr   string
	}{
		{name: "zero lifetime", lifetime: 0,
			wantErr: "failed to fetch token: provider returned a token that is already expired or about to expire: " +
				"it expires at '2026-01-01T00:00:00Z' (lifetime '0s')"},
		{name: "already expired", lifetime: -5 * time.Second,
			wantErr: "failed to fetch token: provider returned a token that is already expired or about to expire: " +
				"it expires at '2025-12-31T23:59:55Z' (lifetime '-5s')"},
		// Valid until +0.77s by the monotonic clock, but +0s by the wall
		// clock truncated to the second.
		{name: "within the margin by the wall clock", fetchedAt: 500 * time.Millisecond, lifetime: 300 * time.Millisecond,
			wantErr: "failed to fetch token: provider returned a token that is already expired or about to expire: " +
				"it expires at '2026-01-01T00:00:00.8Z' (lifetime '300ms')"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			clock := newCacheTestClock()
			clock.Set(cacheTestT0.Add(tt.fetchedAt))
			c, err := NewTokenCache(1, CacheClock(clock.Now), CacheMetricsRegisterer(prometheus.NewPedanticRegistry()))
			g.Expect(err).NotTo(HaveOccurred())
			var calls atomic.Int32

			for range 2 { // not cached: each call fetches
				tok, _, err := c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, fetchToken(&calls, "bad", tt.lifetime))
				g.Expect(err).To(MatchError(tt.wantErr))
				g.Expect(errors.Is(err, errTokenExpiredOnArrival)).To(BeTrue())
				g.Expect(tok).To(BeNil())
			}
			g.Expect(calls.Load()).To(Equal(int32(2)))
			g.Expect(c.Len()).To(BeZero())
			g.Expect(testutil.ToFloat64(c.metrics.fetchErrors)).To(Equal(2.0))
		})
	}
}

func TestTokenCache_MissErrorIsNotCached(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	c, err := NewTokenCache(1, CacheMetricsRegisterer(prometheus.NewPedanticRegistry()))
	g.Expect(err).NotTo(HaveOccurred())
	var calls atomic.Int32

	_, _, err = c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, fetchError(&calls))
	g.Expect(err).To(MatchError(errCacheTestFetch))
	tok, hit, err := c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, fetchToken(&calls, "a", time.Hour))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hit).To(BeFalse())
	g.Expect(tokenID(tok)).To(Equal("a"))
	g.Expect(calls.Load()).To(Equal(int32(2)))
	g.Expect(testutil.ToFloat64(c.metrics.fetchErrors)).To(Equal(1.0))
	g.Expect(testutil.ToFloat64(c.metrics.refreshesFailures)).To(BeZero(), "a failed miss is not a refresh")
}

func TestTokenCache_ClockEviction(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name     string
		capacity int
		gets     string // one key per letter, in order
		wantHits string // the gets that hit
		wantKeys []string
	}{
		{name: "unused entries go in insertion order", capacity: 3,
			gets: "abcde", wantKeys: []string{"c", "d", "e"}},
		{name: "a hit gives a second chance", capacity: 3,
			gets: "abcad", wantHits: "a", wantKeys: []string{"a", "c", "d"}},
		{name: "the hand resumes where it stopped", capacity: 3,
			gets: "abcade", wantHits: "a", wantKeys: []string{"a", "d", "e"}},
		{name: "all used: one turn clears every bit, then the first goes", capacity: 3,
			gets: "abcabcd", wantHits: "abc", wantKeys: []string{"b", "c", "d"}},
		// The old least-recently-used sequence: CLOCK agrees with it here.
		{name: "second chances in one sweep", capacity: 3,
			gets: "abcadcadbc", wantHits: "acad", wantKeys: []string{"b", "c", "d"}},
		{name: "capacity one", capacity: 1,
			gets: "aab", wantHits: "a", wantKeys: []string{"b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			c, err := NewTokenCache(tt.capacity, CacheMetricsRegisterer(prometheus.NewPedanticRegistry()))
			g.Expect(err).NotTo(HaveOccurred())

			var hits strings.Builder
			var calls atomic.Int32
			for _, k := range strings.Split(tt.gets, "") {
				_, hit, err := c.getOrFetch(context.Background(), k, cache.InvolvedObject{}, fetchToken(&calls, k, time.Hour))
				g.Expect(err).NotTo(HaveOccurred())
				if hit {
					hits.WriteString(k)
				}
			}
			g.Expect(hits.String()).To(Equal(tt.wantHits))
			g.Expect(cachedKeys(c)).To(ConsistOf(tt.wantKeys))
			misses := len(tt.gets) - len(tt.wantHits)
			g.Expect(testutil.ToFloat64(c.metrics.items)).To(Equal(float64(len(tt.wantKeys))))
			g.Expect(testutil.ToFloat64(c.metrics.evictions)).To(Equal(float64(misses - len(tt.wantKeys))))
		})
	}
}

// cachedKeys lists the keys in c without marking them used.
func cachedKeys(c *TokenCache) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	keys := make([]string, 0, len(c.entries))
	for k := range c.entries {
		keys = append(keys, k)
	}
	return keys
}

func TestTokenCache_ReplacingEvictsNothing(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := NewWithT(t)
		c, err := NewTokenCache(3, CacheMetricsRegisterer(prometheus.NewPedanticRegistry()))
		g.Expect(err).NotTo(HaveOccurred())
		var calls atomic.Int32
		for _, k := range []string{"a", "b", "c"} {
			_, _, err := c.getOrFetch(context.Background(), k, cache.InvolvedObject{}, fetchToken(&calls, k, cacheTestLifetime))
			g.Expect(err).NotTo(HaveOccurred())
		}

		time.Sleep(cacheTestLifetime) // all expired
		for _, k := range []string{"b", "a", "c"} {
			tok, hit, err := c.getOrFetch(context.Background(), k, cache.InvolvedObject{}, fetchToken(&calls, k+"2", cacheTestLifetime))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(hit).To(BeFalse())
			g.Expect(tokenID(tok)).To(Equal(k + "2"))
		}
		g.Expect(cachedKeys(c)).To(ConsistOf("a", "b", "c"))
		g.Expect(testutil.ToFloat64(c.metrics.evictions)).To(BeZero())
		g.Expect(testutil.ToFloat64(c.metrics.items)).To(Equal(3.0))
	})
}

// Run with -race: hits on hot keys set referenced bits while inserts sweep
// them, and the size and the metrics stay exact.
func TestTokenCache_ConcurrentHitsAndInserts(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	const capacity, hot, inserters, insertsEach = 16, 4, 4, 500
	c, err := NewTokenCache(capacity, CacheMetricsRegisterer(prometheus.NewPedanticRegistry()))
	g.Expect(err).NotTo(HaveOccurred())
	var calls atomic.Int32
	get := func(key string) error {
		_, _, err := c.getOrFetch(context.Background(), key, cache.InvolvedObject{}, fetchToken(&calls, key, time.Hour))
		return err
	}

	var wg sync.WaitGroup
	errs := make(chan error, hot+inserters)
	for i := range hot {
		wg.Go(func() {
			for range insertsEach {
				if err := get(fmt.Sprint("hot-", i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range inserters {
		wg.Go(func() {
			for j := range insertsEach {
				if err := get(fmt.Sprint("new-", i, "-", j)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	g.Expect(errs).To(BeEmpty())

	g.Expect(c.Len()).To(Equal(capacity))
	g.Expect(testutil.ToFloat64(c.metrics.items)).To(Equal(float64(capacity)))
	// Every fetch stored a key that was not cached, so all but the last
	// capacity of them were evicted.
	g.Expect(testutil.ToFloat64(c.metrics.evictions)).To(Equal(float64(int(calls.Load()) - capacity)))
	c.mu.RLock()
	defer c.mu.RUnlock()
	g.Expect(c.ring).To(HaveLen(capacity))
	for slot, e := range c.ring {
		g.Expect(e.slot).To(Equal(slot))
		g.Expect(c.entries[e.key]).To(BeIdenticalTo(e))
	}
}

func TestTokenCache_Metrics(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	reg := prometheus.NewPedanticRegistry()
	c, err := NewTokenCache(1, CacheMetricsRegisterer(reg), CacheMetricsPrefix("gotk_"))
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	var calls atomic.Int32
	obj := cache.InvolvedObject{Kind: "OCIRepository", Name: "podinfo", Namespace: "apps", Operation: cache.OperationReconcile}

	_, _, err = c.getOrFetch(ctx, "k", obj, fetchToken(&calls, "a", time.Hour))
	g.Expect(err).NotTo(HaveOccurred())
	_, _, err = c.getOrFetch(ctx, "k", obj, fetchToken(&calls, "a", time.Hour))
	g.Expect(err).NotTo(HaveOccurred())
	_, _, err = c.getOrFetch(ctx, "k", cache.InvolvedObject{}, fetchToken(&calls, "a", time.Hour)) // not per object
	g.Expect(err).NotTo(HaveOccurred())
	_, _, err = c.getOrFetch(ctx, "k2", cache.InvolvedObject{}, fetchError(&calls)) // evicts nothing: fails
	g.Expect(err).To(HaveOccurred())

	g.Expect(testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP gotk_cache_events_total Total number of cache retrieval events for a Gitops Toolkit resource reconciliation.
# TYPE gotk_cache_events_total counter
gotk_cache_events_total{event_type="cache_hit",kind="OCIRepository",name="podinfo",namespace="apps",operation="reconcile"} 1
gotk_cache_events_total{event_type="cache_miss",kind="OCIRepository",name="podinfo",namespace="apps",operation="reconcile"} 1
# HELP gotk_cache_requests_total Total number of cache requests partioned by success or failure.
# TYPE gotk_cache_requests_total counter
gotk_cache_requests_total{status="failure"} 1
gotk_cache_requests_total{status="success"} 3
# HELP gotk_cached_items Total number of items in the cache.
# TYPE gotk_cached_items gauge
gotk_cached_items 1
# HELP gotk_cache_evictions_total Total number of cache evictions.
# TYPE gotk_cache_evictions_total counter
gotk_cache_evictions_total 0
# HELP gotk_token_cache_fetch_errors_total Total number of failed token fetches, including failed refreshes hidden from callers.
# TYPE gotk_token_cache_fetch_errors_total counter
gotk_token_cache_fetch_errors_total 1
# HELP gotk_token_cache_inflight_fetches Number of token fetches in progress.
# TYPE gotk_token_cache_inflight_fetches gauge
gotk_token_cache_inflight_fetches 0
# HELP gotk_token_cache_refreshes_total Total number of fetches that replace a cached token, partitioned by result.
# TYPE gotk_token_cache_refreshes_total counter
gotk_token_cache_refreshes_total{result="failure"} 0
gotk_token_cache_refreshes_total{result="success"} 0
`))).To(Succeed())

	c.DeleteEventsForObject(obj.Kind, obj.Name, obj.Namespace, obj.Operation)
	g.Expect(testutil.CollectAndCount(c.metrics.events)).To(BeZero())
}

func TestTokenCache_DeleteEventsForObjectWithoutMetrics(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	c, err := NewTokenCache(1)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(func() { c.DeleteEventsForObject("k", "n", "ns", "op") }).NotTo(Panic())
	var nilCache *TokenCache
	g.Expect(func() { nilCache.DeleteEventsForObject("k", "n", "ns", "op") }).NotTo(Panic())
}

// flakyUpstream is a provider that hangs while it is faulty: a fetch started
// then waits for its context, as a request on a dead connection does, while
// fetches started after the fault cleared answer at once.
type flakyUpstream struct {
	faulty atomic.Bool
	calls  atomic.Int32

	mu      sync.Mutex
	fetches []context.Context // guarded by mu: every fetch's context, in call order
}

func (u *flakyUpstream) fetch(ctx context.Context) (fluxauth.Token, error) {
	n := u.calls.Add(1)
	u.mu.Lock()
	u.fetches = append(u.fetches, ctx)
	u.mu.Unlock()
	if u.faulty.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &cacheTestToken{id: fmt.Sprint("token-", n), d: time.Hour}, nil
}

// fetchCtx is the context of the nth fetch, from 1.
func (u *flakyUpstream) fetchCtx(n int) context.Context {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.fetches[n-1]
}

// getAsync calls getOrFetch with a timeout in the background.
func getAsync(c *TokenCache, key string, timeout time.Duration, fetch func(context.Context) (fluxauth.Token, error)) <-chan cacheTestResult {
	out := make(chan cacheTestResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		tok, hit, err := c.getOrFetch(ctx, key, cache.InvolvedObject{}, fetch)
		out <- cacheTestResult{tok, hit, err}
	}()
	return out
}

func TestTokenCache_CallerWaitsAtMostItsContext(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		wantErr string
		wantIs  error
		wantAt  time.Duration
	}{
		{name: "deadline",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 3*time.Second)
			},
			wantErr: "gave up waiting for the token fetch after 3s: context deadline exceeded",
			wantIs:  context.DeadlineExceeded, wantAt: 3 * time.Second},
		{name: "cancelled",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(1500*time.Millisecond, cancel)
				return ctx, cancel
			},
			wantErr: "gave up waiting for the token fetch after 1.5s: context canceled",
			wantIs:  context.Canceled, wantAt: 1500 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				g := NewWithT(t)
				c, err := NewTokenCache(1)
				g.Expect(err).NotTo(HaveOccurred())
				u := &flakyUpstream{}
				u.faulty.Store(true)

				ctx, cancel := tt.ctx()
				defer cancel()
				start := time.Now()
				tok, hit, err := c.getOrFetch(ctx, "k", cache.InvolvedObject{}, u.fetch)
				g.Expect(err).To(MatchError(tt.wantErr))
				g.Expect(errors.Is(err, tt.wantIs)).To(BeTrue())
				g.Expect(tok).To(BeNil())
				g.Expect(hit).To(BeFalse())
				g.Expect(time.Since(start)).To(Equal(tt.wantAt))
				time.Sleep(defaultTokenFetchTimeout) // for the abandoned fetch to time out
			})
		})
	}
}

func TestTokenCache_FetchTimeoutBoundsTheFlight(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name  string
		fetch func(release <-chan struct{}) func(context.Context) (fluxauth.Token, error)
	}{
		{name: "a fetch that stops at its deadline", fetch: func(<-chan struct{}) func(context.Context) (fluxauth.Token, error) {
			return func(ctx context.Context) (fluxauth.Token, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			}
		}},
		{name: "a fetch that ignores its context", fetch: func(release <-chan struct{}) func(context.Context) (fluxauth.Token, error) {
			return func(context.Context) (fluxauth.Token, error) {
				<-release
				return &cacheTestToken{id: "late", d: time.Hour}, nil
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				g := NewWithT(t)
				c, err := NewTokenCache(1, CacheFetchTimeout(5*time.Second), CacheMetricsRegisterer(prometheus.NewPedanticRegistry()))
				g.Expect(err).NotTo(HaveOccurred())
				release := make(chan struct{})
				defer close(release)

				start := time.Now()
				_, _, err = c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, tt.fetch(release))
				g.Expect(err).To(MatchError("token fetch timed out after 5s: context deadline exceeded"))
				g.Expect(errors.Is(err, context.DeadlineExceeded)).To(BeTrue())
				g.Expect(time.Since(start)).To(Equal(5 * time.Second))
				g.Expect(c.Len()).To(Equal(0))
			})
		})
	}
}

// The fault of issue 9: a fetch hangs, the fault clears, and callers must
// not go on failing until the hung fetch times out.
func TestTokenCache_JoinAfterRecovery(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := NewWithT(t)
		c, err := NewTokenCache(1, CacheMetricsRegisterer(prometheus.NewPedanticRegistry()))
		g.Expect(err).NotTo(HaveOccurred())
		u := &flakyUpstream{}
		u.faulty.Store(true)
		start := time.Now()

		first := getAsync(c, "k", 10*time.Second, u.fetch)
		time.Sleep(defaultTokenFetchHedgeDelay - 1)
		joined := getAsync(c, "k", 10*time.Second, u.fetch) // within the hedge delay: shares the hung fetch
		synctest.Wait()
		g.Expect(u.calls.Load()).To(Equal(int32(1)))

		time.Sleep(1) // the hung fetch is now as old as the hedge delay
		u.faulty.Store(false)
		tok, hit, err := c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, u.fetch)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(hit).To(BeFalse())
		g.Expect(tokenID(tok)).To(Equal("token-2"))
		g.Expect(time.Since(start)).To(Equal(defaultTokenFetchHedgeDelay), "one round trip, no wait for the hung fetch")
		g.Expect(u.calls.Load()).To(Equal(int32(2)), "exactly one extra upstream call")

		// The callers of the hung fetch get the new token at once, and the
		// hung fetch, now useless, is cancelled.
		for _, r := range []cacheTestResult{<-first, <-joined} {
			g.Expect(r.err).NotTo(HaveOccurred())
			g.Expect(tokenID(r.token)).To(Equal("token-2"))
		}
		g.Expect(time.Since(start)).To(Equal(defaultTokenFetchHedgeDelay))
		synctest.Wait()
		g.Expect(u.fetchCtx(1).Err()).To(MatchError(context.Canceled))
		g.Expect(testutil.ToFloat64(c.metrics.inflight)).To(BeZero())

		tok, hit, err = c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, u.fetch)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(hit).To(BeTrue())
		g.Expect(tokenID(tok)).To(Equal("token-2"))
		g.Expect(u.calls.Load()).To(Equal(int32(2)))
	})
}

func TestTokenCache_AtMostOneNewFlightPerHedgeDelay(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := NewWithT(t)
		c, err := NewTokenCache(1, CacheMetricsRegisterer(prometheus.NewPedanticRegistry()))
		g.Expect(err).NotTo(HaveOccurred())
		u := &flakyUpstream{}
		u.faulty.Store(true)

		// A caller every 500ms for 10s, each giving up after 1s.
		var results []<-chan cacheTestResult
		for range 20 {
			results = append(results, getAsync(c, "k", time.Second, u.fetch))
			time.Sleep(500 * time.Millisecond)
		}
		for _, r := range results {
			g.Expect((<-r).err).To(MatchError(context.DeadlineExceeded))
		}
		g.Expect(u.calls.Load()).To(Equal(int32(5)), "new flights at 0, 2, 4, 6 and 8s")

		// The superseded flights were cancelled when their last caller gave
		// up; the current one runs on to its timeout, to fill the cache.
		synctest.Wait()
		for n := 1; n <= 4; n++ {
			g.Expect(u.fetchCtx(n).Err()).To(MatchError(context.Canceled), "flight %d", n)
		}
		g.Expect(u.fetchCtx(5).Err()).To(BeNil())
		time.Sleep(defaultTokenFetchTimeout)
		g.Expect(u.fetchCtx(5).Err()).To(MatchError(context.DeadlineExceeded))
		synctest.Wait()
		g.Expect(testutil.ToFloat64(c.metrics.inflight)).To(BeZero())
		g.Expect(testutil.ToFloat64(c.metrics.fetchErrors)).To(Equal(5.0))
	})
}

func TestTokenCache_SupersededFlightRunsWhileItHasCallers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := NewWithT(t)
		c, err := NewTokenCache(1)
		g.Expect(err).NotTo(HaveOccurred())
		u := &flakyUpstream{}
		u.faulty.Store(true)

		first := getAsync(c, "k", 10*time.Second, u.fetch)
		time.Sleep(3 * time.Second)
		second := getAsync(c, "k", 20*time.Second, u.fetch)
		synctest.Wait()
		g.Expect(u.calls.Load()).To(Equal(int32(2)))

		time.Sleep(10*time.Second - 3*time.Second - 1)
		g.Expect(u.fetchCtx(1).Err()).To(BeNil(), "its caller still waits")
		time.Sleep(1)
		g.Expect((<-first).err).To(MatchError(context.DeadlineExceeded))
		synctest.Wait()
		g.Expect(u.fetchCtx(1).Err()).To(MatchError(context.Canceled))
		g.Expect(u.fetchCtx(2).Err()).To(BeNil())

		g.Expect((<-second).err).To(MatchError(context.DeadlineExceeded))
		time.Sleep(defaultTokenFetchTimeout) // for the abandoned fetch to time out
	})
}

// A hung fetch that succeeds after a newer one must not replace its token.
func TestTokenCache_LateSuccessNeverOverwritesNewerToken(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := NewWithT(t)
		c, err := NewTokenCache(1, CacheMetricsRegisterer(prometheus.NewPedanticRegistry()))
		g.Expect(err).NotTo(HaveOccurred())
		var calls atomic.Int32
		release := make(chan struct{})
		slow := func(context.Context) (fluxauth.Token, error) { // ignores cancellation
			calls.Add(1)
			<-release
			return &cacheTestToken{id: "late", d: time.Hour}, nil
		}

		first := getAsync(c, "k", time.Minute, slow)
		time.Sleep(defaultTokenFetchHedgeDelay)
		tok, _, err := c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, fetchToken(&calls, "new", time.Hour))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(tokenID(tok)).To(Equal("new"))
		g.Expect(tokenID((<-first).token)).To(Equal("new"))

		close(release)
		synctest.Wait()
		tok, hit, err := c.getOrFetch(context.Background(), "k", cache.InvolvedObject{}, fetchError(&calls))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(hit).To(BeTrue())
		g.Expect(tokenID(tok)).To(Equal("new"))
		g.Expect(calls.Load()).To(Equal(int32(2)))
		g.Expect(testutil.ToFloat64(c.metrics.items)).To(Equal(1.0))
	})
}

// Every synctest test above also checks for leaks: its bubble must end with
// no goroutine left. This one runs the real clock's paths (flights, a caller
// that gives up, a superseded flight, a background refresh) and checks with
// goleak. Not parallel: goleak counts every goroutine of the process.
func TestTokenCache_LeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	g := NewWithT(t)
	clock := &cacheTestClock{now: time.Now()}
	c, err := NewTokenCache(2, CacheClock(clock.Now), CacheFetchHedgeDelay(time.Nanosecond))
	g.Expect(err).NotTo(HaveOccurred())
	var calls atomic.Int32
	get := func(ctx context.Context, key string, fetch func(context.Context) (fluxauth.Token, error)) error {
		_, _, err := c.getOrFetch(ctx, key, cache.InvolvedObject{}, fetch)
		return err
	}

	// Misses, hits and evictions.
	for _, k := range []string{"a", "b", "a", "c", "a"} {
		g.Expect(get(context.Background(), k, fetchToken(&calls, k, time.Hour))).To(Succeed())
	}

	// A caller gives up on a hung flight; a newer flight supersedes it, so
	// it is cancelled, as nobody waits for it. (Had the newer one succeeded,
	// its token would have answered and cancelled the hung one anyway.)
	ctx, cancel := context.WithCancel(context.Background())
	hung := make(chan error, 1)
	go func() {
		hung <- get(ctx, "d", func(ctx context.Context) (fluxauth.Token, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
	}()
	cancel()
	g.Expect(<-hung).To(MatchError(context.Canceled))
	g.Expect(get(context.Background(), "d", fetchError(&calls))).To(MatchError(errCacheTestFetch))

	// A background refresh.
	clock.Set(clock.Now().Add(50 * time.Minute))
	refreshed := make(chan struct{})
	g.Expect(get(context.Background(), "a", func(context.Context) (fluxauth.Token, error) {
		defer close(refreshed)
		return &cacheTestToken{id: "a2", d: time.Hour}, nil
	})).To(Succeed())
	<-refreshed
}
