package auth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	"github.com/fluxcd/pkg/cache"
	"k8s.io/apimachinery/pkg/util/wait"
)

const (
	// defaultTokenFetchTimeout bounds a shared fetch. The fetch outlives the
	// callers that started it, so without a bound a hung provider would keep
	// a goroutine and a connection forever.
	defaultTokenFetchTimeout = 30 * time.Second

	// defaultTokenFetchHedgeDelay is how long a fetch is shared with later
	// callers of its key. STS and the GCP IAM API answer in well under a
	// second; a fetch older than this is likely hung, and a caller arriving
	// now had better try afresh than inherit what is left of its timeout.
	defaultTokenFetchHedgeDelay = 2 * time.Second

	// maxTokenSafetyMargin caps the part of a token's lifetime that the
	// cache does not serve (see tokenSafetyMargin).
	maxTokenSafetyMargin = 30 * time.Second
)

// tokenRefreshBackoff paces the retries of a failed background refresh: 1s,
// 2s, 4s, … up to a minute, each up to 50% longer at random, so that keys
// whose refreshes failed together (an STS outage) do not retry together. The
// cap, not a count, ends the growth; the retries end when the token does.
var tokenRefreshBackoff = wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.5, Steps: math.MaxInt32, Cap: time.Minute}

var (
	// errNoTokenFetched stops a nil token from being cached; it would panic
	// on the next GetDuration.
	errNoTokenFetched = errors.New("failed to fetch token: provider returned no token and no error")

	// errTokenExpiredOnArrival stops a token that the cache could not serve
	// from being cached, and being fetched again by every caller.
	errTokenExpiredOnArrival = errors.New("provider returned a token that is already expired or about to expire")
)

// TokenCache caches access tokens by key without ever holding a lock across
// a network call, unlike cache.TokenCache of fluxcd/pkg/cache:
//
//   - a hit is a map lookup under a read lock and never waits for a fetch;
//   - misses on distinct keys fetch in parallel, and concurrent misses on one
//     key share a single fetch that no single caller can cancel, bounded by
//     the fetch timeout; each caller waits only as long as its own context;
//   - a fetch is shared only for the hedge delay: a caller arriving later
//     starts a new one, so a hung fetch holds up only the callers that
//     joined it, and only until a newer fetch brings a token;
//   - a valid token is always served at hit speed (stale-while-revalidate):
//     a key in use is refreshed in the background, and while that refresh
//     runs, hangs or fails, callers get the cached token. A failed refresh
//     is retried with jittered exponential backoff (1s, 2s, … up to 1 min)
//     while the token stays valid, and reported to the refresh-failure
//     handler and the metrics, never to a caller. Callers only wait for a
//     fetch when the key has no valid token.
//
// Refresh follows upstream's expiry policy: upstream serves a token for 80%
// of its lifetime, capped at the max duration (1h); the refresh starts at 90%
// of that window, so a healthy key gets its new token about when upstream's
// would. A token stays valid, and is served, until its expiry less a safety
// margin of 10% of its lifetime, at most 30s, so that it does not expire in
// the caller's hands. Every deadline is checked against both the monotonic
// and the wall clock. A token that a provider returns already expired or
// within the margin is an error, never cached. The cache holds at most its capacity; to make room it evicts a
// token that was not used since the eviction hand last passed it (CLOCK, an
// approximation of least recently used that keeps hits on the read lock).
//
// TokenCache is safe for concurrent use. Create it with NewTokenCache.
type TokenCache struct {
	now              func() time.Time
	maxDuration      time.Duration
	onRefreshFailure func(key string, err error)
	metrics          *tokenCacheMetrics // nil-safe: nil when metrics are off

	// flights runs the fetches and lets concurrent misses share them.
	flights tokenFlights

	// mu guards entries, ring, hand and every entry's slot. It is never held
	// across a fetch; entries are otherwise immutable once stored (apart from
	// their atomic fields), so readers can use one after unlocking.
	mu       sync.RWMutex
	entries  map[string]*tokenEntry
	capacity int

	// ring and hand are the CLOCK (second chance) that picks what to evict:
	// every entry has a slot in ring, and a hit sets the entry's referenced
	// bit, which keeps hits on the read lock without a shared counter. To
	// evict, the hand sweeps the ring, clearing set bits, and takes the first
	// entry whose bit is already clear. Each bit the sweep clears was paid for
	// by a hit, so eviction is O(1) amortised, where finding the least
	// recently used entry would cost a scan of the whole map.
	ring []*tokenEntry
	hand int
}

// NewTokenCache returns an empty TokenCache holding at most capacity tokens.
// An impersonated token and its source are cached separately, so size it for
// the targets plus the distinct sources (one per ServiceAccount that is a
// source, one for the controller).
func NewTokenCache(capacity int, opts ...TokenCacheOption) (*TokenCache, error) {
	if capacity <= 0 {
		return nil, fmt.Errorf("invalid token cache capacity '%d': must be greater than zero", capacity)
	}
	o := tokenCacheOptions{
		maxDuration:  cache.TokenMaxDuration,
		fetchTimeout: defaultTokenFetchTimeout,
		hedgeDelay:   defaultTokenFetchHedgeDelay,
		now:          time.Now,
	}
	for _, opt := range opts {
		if opt.apply != nil {
			opt.apply(&o)
		}
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{{"max duration", o.maxDuration}, {"fetch timeout", o.fetchTimeout}, {"fetch hedge delay", o.hedgeDelay}} {
		if d.value <= 0 {
			return nil, fmt.Errorf("invalid token cache %s '%s': must be greater than zero", d.name, d.value)
		}
	}
	o.maxDuration = min(o.maxDuration, cache.TokenMaxDuration)
	if o.now == nil {
		o.now = time.Now
	}
	if o.onRefreshFailure == nil {
		o.onRefreshFailure = func(string, error) {}
	}

	c := &TokenCache{
		now:              o.now,
		maxDuration:      o.maxDuration,
		onRefreshFailure: o.onRefreshFailure,
		flights:          newTokenFlights(o.fetchTimeout, o.hedgeDelay),
		entries:          make(map[string]*tokenEntry, capacity),
		capacity:         capacity,
		ring:             make([]*tokenEntry, 0, capacity),
	}
	if o.registerer != nil {
		m, err := newTokenCacheMetrics(o.registerer, o.metricsPrefix)
		if err != nil {
			return nil, err
		}
		c.metrics = m
	}
	return c, nil
}

// getOrFetch returns the cached token for key, or a fetched one, sharing
// fetches between concurrent callers. obj is the Flux object on whose behalf
// we fetch (for hit/miss metrics); zero value = don't record. hit reports
// whether the token came from the cache rather than from a fetch.
func (c *TokenCache) getOrFetch(ctx context.Context, key string, obj cache.InvolvedObject,
	fetch fetchFunc) (token fluxauth.Token, hit bool, err error) {

	defer func() { c.metrics.recordRequest(obj, hit, err) }()

	now := c.now()
	if e := c.lookup(key); e != nil && e.usable(now) {
		c.refreshIfDue(ctx, e, now, fetch)
		return e.token, true, nil
	}

	r, err := c.await(ctx, key, fetch)
	if err != nil {
		return nil, false, err
	}
	return r.token, r.fromCache, nil
}

// refreshIfDue starts e's background refresh once e is past its refresh
// point: one per entry, so a hot key costs one refresh per lifetime, not one
// per hit. The flag is read before the CAS so that the hits of a hot key do
// not all write it.
func (c *TokenCache) refreshIfDue(ctx context.Context, e *tokenEntry, now time.Time, fetch fetchFunc) {
	if !e.dueForRefresh(now) || e.refreshStarted.Load() || !e.refreshStarted.CompareAndSwap(false, true) {
		return
	}
	go c.refresh(context.WithoutCancel(ctx), e, fetch)
}

// refresh replaces e in the background while callers keep getting it. A
// failed attempt goes to the refresh-failure handler (and, as every fetch,
// to the metrics), and is retried with tokenRefreshBackoff. It gives up when
// e is no longer valid, or no longer cached; a caller then fetches for
// itself. Each attempt is a flight, bounded by the fetch timeout.
func (c *TokenCache) refresh(ctx context.Context, e *tokenEntry, fetch fetchFunc) {
	ctx, cancel := context.WithTimeout(ctx, e.usableUntil.left(c.now()))
	defer cancel()
	_ = tokenRefreshBackoff.DelayFunc().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		if c.peek(e.key) != e || !e.usable(c.now()) {
			return true, nil
		}
		if _, err := c.await(ctx, e.key, fetch); err != nil {
			c.onRefreshFailure(e.key, err)
			return false, nil
		}
		return true, nil
	})
}

// await joins key's flight, or starts one, and waits for its result as long
// as ctx allows. As aws.CredentialsCache: the flight runs on a context
// detached from every caller, so one giving up does not fail the others.
func (c *TokenCache) await(ctx context.Context, key string, fetch fetchFunc) (tokenFlightResult, error) {
	start := time.Now()
	f, fetchCtx := c.flights.join(ctx, key)
	defer c.flights.leave(key, f)
	if fetchCtx != nil {
		go c.fly(fetchCtx, key, f, fetch)
	}
	select {
	case <-f.done:
		return f.result, f.err
	case <-f.expired:
		// The fetch outlived the fetch timeout: it ignores its context, or is
		// about to return the same error. Either way, don't wait for it.
		select {
		case <-f.done:
			return f.result, f.err
		default:
		}
		return tokenFlightResult{}, c.flights.errTimeout
	case <-ctx.Done():
		select {
		case <-f.done: // both at once: the token is more use than the error
			return f.result, f.err
		default:
		}
		return tokenFlightResult{}, fmt.Errorf("gave up waiting for the token fetch after %s: %w",
			time.Since(start).Round(time.Millisecond), ctx.Err())
	}
}

// fly runs flight f for key on the flight's own context and hands the result
// to its callers.
func (c *TokenCache) fly(ctx context.Context, key string, f *tokenFlight, fetch fetchFunc) {
	defer f.cancel()
	r, err := c.fill(ctx, key, f.seq, fetch)
	c.flights.finish(key, f, r, err)
}

// fill fetches and stores a new token for key, unless one that is not yet
// due for refresh was stored while the caller was getting to the flight. seq
// is the flight's.
func (c *TokenCache) fill(ctx context.Context, key string, seq uint64, fetch fetchFunc) (tokenFlightResult, error) {
	prev := c.peek(key)
	if prev != nil && !prev.dueForRefresh(c.now()) {
		return tokenFlightResult{prev.token, true}, nil
	}

	e, err := c.fetch(ctx, key, seq, fetch)
	c.metrics.recordFetch(prev != nil, err)
	if err != nil {
		return tokenFlightResult{}, err // never cached: the next caller tries again
	}
	c.store(e)
	return tokenFlightResult{e.token, false}, nil
}

// fetch calls the provider and checks that what it returned can be cached.
func (c *TokenCache) fetch(ctx context.Context, key string, seq uint64, fetch fetchFunc) (*tokenEntry, error) {
	c.metrics.fetchStarted()
	token, err := fetch(ctx)
	c.metrics.fetchFinished()
	switch {
	case err != nil:
		return nil, c.flights.fetchErr(ctx, err)
	case token == nil:
		return nil, errNoTokenFetched
	}
	return newTokenEntry(key, seq, token, c.now(), c.maxDuration)
}

// peek returns key's entry, or nil, without marking it used.
func (c *TokenCache) peek(key string) *tokenEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entries[key]
}

// lookup returns key's entry, or nil, and marks it used.
func (c *TokenCache) lookup(key string) *tokenEntry {
	c.mu.RLock()
	e := c.entries[key]
	c.mu.RUnlock()
	// A hot key's bit is nearly always set already: reading first spares
	// its hits from all writing the same cache line.
	if e != nil && !e.referenced.Load() {
		e.referenced.Store(true)
	}
	return e
}

// store caches e in a full cache's evicted slot, a free slot, or the slot of
// the token it replaces, unless that token came from a flight that started
// after e's: a hung fetch that succeeds late must not undo a newer one.
func (c *TokenCache) store(e *tokenEntry) {
	c.mu.Lock()
	old, replaced := c.entries[e.key]
	if replaced && old.seq > e.seq {
		c.mu.Unlock()
		return
	}
	evicted := false
	switch {
	case replaced:
		// A refreshed key keeps its place and its use.
		e.slot = old.slot
		e.referenced.Store(old.referenced.Load())
	case len(c.ring) < c.capacity:
		e.slot = len(c.ring)
		c.ring = append(c.ring, nil)
	default:
		e.slot = c.evictLocked()
		evicted = true
	}
	c.ring[e.slot] = e
	c.entries[e.key] = e
	c.mu.Unlock()

	c.metrics.recordStore(replaced, evicted)
}

// evictLocked removes the first entry at or after the hand that was not used
// since the hand last passed it, and returns its free slot. It ends within
// one turn of the ring: by then every bit it passed is clear.
func (c *TokenCache) evictLocked() int {
	for {
		slot := c.hand
		c.hand = (c.hand + 1) % len(c.ring)
		e := c.ring[slot]
		if e.referenced.Swap(false) {
			continue // used since the last sweep: a second chance
		}
		delete(c.entries, e.key)
		return slot
	}
}

// Len returns the number of cached tokens, valid or not.
func (c *TokenCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// DeleteEventsForObject deletes the cache_hit and cache_miss events recorded
// for an object, as cache.TokenCache does; call it when the object is deleted.
func (c *TokenCache) DeleteEventsForObject(kind, name, namespace, operation string) {
	if c == nil {
		return
	}
	c.metrics.deleteEvents(kind, name, namespace, operation)
}

// countPolicyDenial counts a refusal by the impersonation policy in the
// cache's metrics; a nil cache counts nothing.
func (c *TokenCache) countPolicyDenial(namespace string) {
	if c == nil {
		return
	}
	c.metrics.recordPolicyDenial(namespace)
}
