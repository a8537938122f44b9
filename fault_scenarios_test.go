package auth_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/fakes"
)

// Scenarios of a cache facing a failing cloud, each on the real chain and
// fakes: stale-while-revalidate, joining after recovery, and bad successes.
// They run on the hops whose worlds set no process environment, all at
// once; each test alone, not in parallel with others, as they bound how
// long calls take.

const (
	// scenarioRefreshPoint is past the refresh point of a fresh token of
	// the fakes (1h: refresh at 90% of 80%, 43.2m) and well before it
	// stops being served (59.5m).
	scenarioRefreshPoint = 45 * time.Minute
	// scenarioFetchTimeout ends a hung refresh attempt, after which the
	// cache retries in 1s to 1.5s.
	scenarioFetchTimeout = 2 * time.Second
	// scenarioHitBound is how long a call answered from the cache may take:
	// a bound on being held up (a caller waiting for a hung refresh would
	// wait for the fetch timeout), not a benchmark.
	scenarioHitBound = time.Second
	// scenarioRecovery bounds the wait for a refresh to succeed after the
	// fault is removed: a hung attempt's fetch timeout, then the backoff.
	scenarioRecovery = 10 * time.Second
)

var scenarioHops = []*faultHop{awsWebIdentityHop, awsAssumeRoleHop, gcpGoogleSTSHop, gcpIAMHop}

// faultClock is the cache's clock, moved by the test.
type faultClock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func (c *faultClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *faultClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// refreshFailure is a failed refresh attempt, as the cache reports it.
type refreshFailure struct {
	key string
	err error
}

// scenario is a fault world whose chain is cached by a TokenCache on a
// clock of the test's.
type scenario struct {
	*faultWorld
	clock    *faultClock
	failures chan refreshFailure
	sweep    *secretSweep
	opts     []auth.Option
}

func newScenario(t *testing.T, hop *faultHop, sweep *secretSweep, cacheOpts ...auth.TokenCacheOption) *scenario {
	t.Helper()
	w := hop.start(t)
	sweep.add(w.secrets...)
	s := &scenario{faultWorld: w, clock: &faultClock{now: time.Now()},
		failures: make(chan refreshFailure, 100), sweep: sweep}
	cacheOpts = append([]auth.TokenCacheOption{
		auth.CacheClock(s.clock.Now),
		auth.CacheRefreshFailureHandler(func(key string, err error) {
			sweep.addErr(err)
			select {
			case s.failures <- refreshFailure{key, err}:
			default:
			}
		}),
	}, cacheOpts...)
	tc, err := auth.NewTokenCache(10, cacheOpts...)
	if err != nil {
		t.Fatal(err)
	}
	s.opts = append(slices.Clone(w.opts), auth.WithTokenCache(tc, cache.InvolvedObject{}))
	return s
}

// get calls GetAccessToken with timeout; the time is taken from before the
// deadline is set.
func (s *scenario) get(timeout time.Duration) (fluxauth.Token, time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	token, err := auth.GetAccessToken(ctx, s.provider, s.opts...)
	s.sweep.addErr(err)
	return token, time.Since(start), err
}

// good gets a token that must be valid at the fakes.
func (s *scenario) good(t *testing.T) fluxauth.Token {
	t.Helper()
	token, _, err := s.get(faultCallTimeout)
	if err != nil {
		t.Fatal(err)
	}
	s.sweep.add(s.check(t, token)...)
	return token
}

// expectHit checks that a call is answered at hit speed with want.
func (s *scenario) expectHit(g Gomega, want fluxauth.Token) {
	token, elapsed, err := s.get(faultCallTimeout)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(token).To(BeIdenticalTo(want), "the cached token")
	g.Expect(elapsed).To(BeNumerically("<", scenarioHitBound), "a hit does not wait for the cloud")
}

// awaitFailure waits for the cache to report a failed refresh.
func (s *scenario) awaitFailure(t *testing.T) refreshFailure {
	t.Helper()
	select {
	case f := <-s.failures:
		return f
	case <-time.After(scenarioRecovery):
		t.Fatal("no refresh failure reported")
		return refreshFailure{}
	}
}

type hopFault struct {
	hop   *faultHop
	fault fakes.Fault
}

func (c hopFault) name() string { return c.hop.name + "/" + c.fault.String() }

func hopFaults(hops []*faultHop, faults ...fakes.Fault) []hopFault {
	var cases []hopFault
	for _, hop := range hops {
		for _, fault := range faults {
			cases = append(cases, hopFault{hop, fault})
		}
	}
	return cases
}

func waitHits(t *testing.T, f *fakes.InjectedFault, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scenarioRecovery)
	defer cancel()
	if err := f.WaitHits(ctx, n); err != nil {
		t.Fatalf("the fault met %d requests, want %d: %v", f.Hits(), n, err)
	}
}

// TestFaultScenarioStaleWhileRevalidate: a cached token is due for refresh
// when the hop starts to hang or fail. Callers keep getting a valid token
// at hit speed while the refresh is attempted, and the refreshed token
// arrives once the fault is removed.
//
// On the impersonation hop the callers get the cached token itself. On the
// source hop the target's refresh succeeds with the cached source token,
// still valid, while the source's own refresh hangs or fails: a source
// hop in trouble does not hold up its targets.
func TestFaultScenarioStaleWhileRevalidate(t *testing.T) {
	sweep := newSecretSweep(t)
	runAtOnce(t, hopFaults(scenarioHops, faultHang, faultMalformed), hopFault.name, func(t *testing.T, c hopFault) {
		hop, fault := c.hop, c.fault
		g := NewWithT(t)
		s := newScenario(t, hop, sweep, auth.CacheFetchTimeout(scenarioFetchTimeout))
		old := s.good(t)
		served := s.served()

		injected := s.inject(fault)
		s.clock.Advance(scenarioRefreshPoint)
		s.expectHit(g, old) // and starts the refresh
		waitHits(t, injected, 1)

		if hop.impersonation {
			// The refresh hangs or failed: callers get the cached token.
			for range 5 {
				s.expectHit(g, old)
			}
		} else {
			// The target was refreshed with the cached source token.
			g.Eventually(func() fluxauth.Token { token, _, _ := s.get(faultCallTimeout); return token }).
				WithTimeout(scenarioRecovery).ShouldNot(BeIdenticalTo(old))
			newer, _, err := s.get(faultCallTimeout)
			g.Expect(err).NotTo(HaveOccurred())
			s.sweep.add(s.check(t, newer)...)
			g.Expect(s.served()).To(Equal(served), "the source's refresh got nothing yet")
			s.expectHit(g, newer)
			old = newer
		}
		// The attempt failed, or timed out after the fetch timeout.
		expectRefreshFailure(t, g, s.awaitFailure(t), hop, fault)

		// Once the fault is gone, the refresh (retried after a hung
		// attempt's fetch timeout, or a failure, and the backoff)
		// brings a new token from the cloud.
		injected.Remove()
		g.Eventually(s.served).WithTimeout(scenarioRecovery).Should(BeNumerically(">", served))
		if hop.impersonation {
			g.Eventually(func() fluxauth.Token { token, _, _ := s.get(faultCallTimeout); return token }).
				WithTimeout(scenarioRecovery).ShouldNot(BeIdenticalTo(old))
			s.good(t)
		}
	})
}

// TestFaultScenarioJoinAfterRecovery: with no token cached, the fetch
// hangs. Callers with short deadlines join it and give up, each with an
// error that says what was being fetched and wraps
// context.DeadlineExceeded. Once the fault is removed, the very next call
// succeeds in one round trip, not held up by the hung fetch (which the
// cache's 30s fetch timeout would end): the callers waited past the hedge
// delay, after which a call starts a fetch of its own.
//
// With a cache, the error names the chain's token whichever hop hangs:
// callers wait for the target's fetch, which waits for the source's.
func TestFaultScenarioJoinAfterRecovery(t *testing.T) {
	sweep := newSecretSweep(t)
	const (
		hedgeDelay = 200 * time.Millisecond
		// Past the hedge delay: the next call starts a fetch of its own.
		deadline = time.Second
		callers  = 5
	)
	wantErr := map[*faultHop]string{
		awsWebIdentityHop: awsSATarget + gaveUpWaiting,
		awsAssumeRoleHop:  awsSATarget + gaveUpWaiting,
		gcpGoogleSTSHop:   gcpSATarget + gaveUpWaiting,
		gcpIAMHop:         gcpSATarget + gaveUpWaiting,
	}
	runAtOnce(t, scenarioHops, func(hop *faultHop) string { return hop.name }, func(t *testing.T, hop *faultHop) {
		g := NewWithT(t)
		s := newScenario(t, hop, sweep, auth.CacheFetchHedgeDelay(hedgeDelay))
		hang := s.inject(faultHang)

		// A first caller starts the fetch, and the others come once it
		// hangs, so that their deadlines are not spent on the hops before.
		ctx, cancel := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() {
			_, err := auth.GetAccessToken(ctx, s.provider, s.opts...)
			first <- err
		}()
		waitHits(t, hang, 1)
		errs := make([]error, callers)
		elapsed := make([]time.Duration, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() { _, elapsed[i], errs[i] = s.get(deadline) })
		}
		wg.Wait()
		cancel()
		g.Expect(<-first).To(MatchError(context.Canceled))
		for i, err := range errs {
			g.Expect(err).To(MatchError(MatchRegexp(errPattern(wantErr[hop]))))
			g.Expect(err).To(MatchError(context.DeadlineExceeded))
			g.Expect(elapsed[i]).To(BeNumerically("<", deadline+faultDeadlineSlack))
		}
		// Arriving together, the callers joined one fetch: the first
		// caller's, or, if that one was past the hedge delay, a newer one.
		g.Expect(hang.Hits()).To(BeNumerically("<=", 2), "the callers shared a fetch")

		hang.Remove()
		n, served := s.requests(), s.served()
		token, took, err := s.get(faultCallTimeout)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(took).To(BeNumerically("<", faultRecoveryBound), "not held up by the hung fetch")
		want := 2
		if hop.impersonation {
			want = 1 // the source token, fetched before the hang, is cached
		}
		g.Expect(s.requests()-n).To(Equal(want), "one round trip")
		g.Expect(s.served()).To(Equal(served + 1))
		sweep.add(s.check(t, token)...)
	})
}

// TestFaultScenarioBadSuccesses: a success whose credentials are unusable
// (expired, without expiry, empty, from a skewed clock) is an error, never a
// token. Fetched for a caller, it fails the call and is not cached: the
// next call goes to the cloud. Fetched by a refresh, it is reported to the
// refresh-failure handler and callers keep the cached token; once the cloud
// is healthy again, the refresh brings a good one. The matrix pins the
// errors of the first case on every hop.
func TestFaultScenarioBadSuccesses(t *testing.T) {
	sweep := newSecretSweep(t)
	runAtOnce(t, hopFaults(scenarioHops, badSuccesses...), hopFault.name, func(t *testing.T, c hopFault) {
		hop, fault := c.hop, c.fault
		g := NewWithT(t)
		s := newScenario(t, hop, sweep)

		// Fetched for a caller: an error, and not cached.
		injected := s.inject(fault)
		_, _, err := s.get(faultCallTimeout)
		g.Expect(err).To(MatchError(MatchRegexp(errPattern(faultRowFor(t, hop, fault).err))))
		g.Expect(injected.Hits()).To(Equal(1))
		injected.Remove()
		n, served := s.requests(), s.served()
		old, _, err := s.get(faultCallTimeout)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(s.served()).To(Equal(served+1), "the next call went to the cloud")
		want := 2
		if hop.impersonation {
			want = 1 // the source token was good, and cached
		}
		g.Expect(s.requests() - n).To(Equal(want))
		sweep.add(s.check(t, old)...)

		// Fetched by a refresh: reported, and never served.
		injected = s.inject(fault)
		served = s.served()
		s.clock.Advance(scenarioRefreshPoint)
		s.expectHit(g, old) // and starts the refresh
		expectRefreshFailure(t, g, s.awaitFailure(t), hop, fault)
		g.Expect(injected.Hits()).To(BeNumerically(">=", 1))
		if hop.impersonation {
			s.expectHit(g, old)
		} else {
			// The target was refreshed with the cached source token.
			g.Eventually(func() fluxauth.Token { token, _, _ := s.get(faultCallTimeout); return token }).
				WithTimeout(scenarioRecovery).ShouldNot(BeIdenticalTo(old))
		}
		token, _, err := s.get(faultCallTimeout)
		g.Expect(err).NotTo(HaveOccurred())
		sweep.add(s.check(t, token)...)

		// Once the cloud is healthy, the refresh brings a good token.
		injected.Remove()
		g.Eventually(s.served).WithTimeout(scenarioRecovery).Should(BeNumerically(">", served+injected.Hits()))
		if hop.impersonation {
			g.Eventually(func() fluxauth.Token { token, _, _ := s.get(faultCallTimeout); return token }).
				WithTimeout(scenarioRecovery).ShouldNot(BeIdenticalTo(old))
			s.good(t)
		}
	})
}

// refreshFetchPrefix is what the error of each scenario hop's chain says
// before the error of the token whose refresh fails there.
var refreshFetchPrefix = map[*faultHop]string{
	awsWebIdentityHop: awsSASource,
	awsAssumeRoleHop:  awsSATarget,
	gcpGoogleSTSHop:   gcpSASource,
	gcpIAMHop:         gcpSATarget,
}

// expectRefreshFailure checks what the refresh-failure handler was told
// when fault hit a refresh on hop. The handler gets the key, a hash, and
// the fetch's own error, without the chain's "failed to get <what>" that
// callers' errors start with: the provider's error alone, or the cache's
// timeout. Nothing in either names the chain (provider, source, target)
// whose refresh failed.
func expectRefreshFailure(t *testing.T, g Gomega, f refreshFailure, hop *faultHop, fault fakes.Fault) {
	t.Helper()
	g.Expect(f.key).To(MatchRegexp(`^[0-9a-f]{64}$`))
	if fault == faultHang {
		g.Expect(f.err).To(MatchError(fmt.Sprintf("token fetch timed out after %s: context deadline exceeded", scenarioFetchTimeout)))
		g.Expect(f.err).To(MatchError(context.DeadlineExceeded))
		return
	}
	row := faultRowFor(t, hop, fault)
	prefix := refreshFetchPrefix[hop]
	g.Expect(row.err).To(HavePrefix(prefix))
	g.Expect(f.err).To(MatchError(MatchRegexp(errPattern(strings.TrimPrefix(row.err, prefix)))))
	if row.is != nil {
		g.Expect(f.err).To(MatchError(row.is))
	}
}

// faultRowFor returns the matrix row of fault on hop.
func faultRowFor(t *testing.T, hop *faultHop, fault fakes.Fault) faultRow {
	for _, r := range faultMatrix {
		if r.hop == hop && r.fault == fault {
			return r
		}
	}
	t.Fatalf("no matrix row for %s on %s", fault, hop.name)
	return faultRow{}
}
