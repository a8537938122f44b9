package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	"github.com/fluxcd/pkg/cache"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
)

// defaultTokenFetchTimeout bounds a shared fetch. The fetch outlives the
// callers that started it, so without a bound a hung provider would pin the
// key's flight (and every later miss on that key) forever.
const defaultTokenFetchTimeout = 30 * time.Second

// errNoTokenFetched stops a nil token from being cached; it would panic on
// the next GetDuration.
var errNoTokenFetched = errors.New("failed to fetch token: provider returned no token and no error")

// TokenCache caches access tokens by key without ever holding a lock across
// a network call, unlike cache.TokenCache of fluxcd/pkg/cache:
//
//   - a hit is a map lookup under a read lock and never waits for a fetch;
//   - misses on distinct keys fetch in parallel, and concurrent misses on one
//     key share a single fetch that no single caller can cancel;
//   - a hot key is refreshed in the background shortly before it goes stale,
//     so its callers never block on the provider;
//   - when a refresh fails but the cached token has not really expired yet,
//     the cached token is served and the failure reported, not returned.
//
// Expiry follows upstream: a token is fresh for 80% of its lifetime, capped at
// the max duration (1h), checked against both the monotonic and the wall
// clock. The cache holds at most its capacity; to make room it evicts a
// token that was not used since the eviction hand last passed it (CLOCK, an
// approximation of least recently used that keeps hits on the read lock).
//
// TokenCache is safe for concurrent use. Create it with NewTokenCache.
type TokenCache struct {
	now              func() time.Time
	maxDuration      time.Duration
	fetchTimeout     time.Duration
	onRefreshFailure func(key string, err error)
	metrics          *tokenCacheMetrics // nil-safe: nil when metrics are off

	// flights makes one fetch per key at a time.
	flights singleflight.Group

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

// TokenCacheOption configures a TokenCache.
type TokenCacheOption func(*tokenCacheOptions)

type tokenCacheOptions struct {
	maxDuration      time.Duration
	registerer       prometheus.Registerer
	metricsPrefix    string
	onRefreshFailure func(key string, err error)
	now              func() time.Time
}

// WithMaxDuration caps how long a token is served from the cache. Optional.
// Defaults to cache.TokenMaxDuration (1h), which is also the largest value
// honoured, as upstream. Must be greater than zero.
func WithMaxDuration(d time.Duration) TokenCacheOption {
	return func(o *tokenCacheOptions) { o.maxDuration = d }
}

// WithMetricsRegisterer registers the cache metrics on r. Optional. Defaults
// to no metrics.
func WithMetricsRegisterer(r prometheus.Registerer) TokenCacheOption {
	return func(o *tokenCacheOptions) { o.registerer = r }
}

// WithMetricsPrefix prefixes every metric name, e.g. "gotk_". Optional.
// Defaults to no prefix.
func WithMetricsPrefix(p string) TokenCacheOption {
	return func(o *tokenCacheOptions) { o.metricsPrefix = p }
}

// WithRefreshFailureHandler is told about a failed refresh whose error was
// hidden from callers because a still-valid cached token was served instead.
// Use it to log: nothing else surfaces these failures. It runs inside the
// key's fetch, so keep it fast. Optional. key is the cache key as given to
// the cache; err comes from the provider.
func WithRefreshFailureHandler(f func(key string, err error)) TokenCacheOption {
	return func(o *tokenCacheOptions) { o.onRefreshFailure = f }
}

// WithClock replaces time.Now, for tests. Optional.
func WithClock(now func() time.Time) TokenCacheOption {
	return func(o *tokenCacheOptions) { o.now = now }
}

// NewTokenCache returns an empty TokenCache holding at most capacity tokens.
// An impersonated token and its source are cached separately, so size it for
// the targets plus the distinct sources (one per ServiceAccount that is a
// source, one for the controller).
func NewTokenCache(capacity int, opts ...TokenCacheOption) (*TokenCache, error) {
	if capacity <= 0 {
		return nil, fmt.Errorf("invalid token cache capacity '%d': must be greater than zero", capacity)
	}
	o := tokenCacheOptions{maxDuration: cache.TokenMaxDuration, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxDuration <= 0 {
		return nil, fmt.Errorf("invalid token cache max duration '%s': must be greater than zero", o.maxDuration)
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
		fetchTimeout:     defaultTokenFetchTimeout,
		onRefreshFailure: o.onRefreshFailure,
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

// getOrFetch returns the cached token for key, or calls fetch once per key
// across concurrent callers. obj is the Flux object on whose behalf we fetch
// (for hit/miss metrics); zero value = don't record. hit reports whether the
// token came from the cache rather than from a fetch; a still-valid token
// served because its refresh failed counts as a hit.
func (c *TokenCache) getOrFetch(ctx context.Context, key string, obj cache.InvolvedObject,
	fetch func(ctx context.Context) (fluxauth.Token, error)) (token fluxauth.Token, hit bool, err error) {

	defer func() { c.metrics.recordRequest(obj, hit, err) }()

	now := c.now()
	if e := c.lookup(key); e != nil && !e.stale(now) {
		// Refresh ahead: at most one background fetch per entry (the CAS),
		// so a hot key costs one provider call per lifetime, not one per hit.
		// If it fails, the next try comes once the entry is stale, from a
		// caller that then waits for it (and still gets this token if that
		// fails too).
		if !now.Before(e.refreshAt) && e.refreshStarted.CompareAndSwap(false, true) {
			go c.flights.Do(key, func() (any, error) { return c.fill(ctx, key, fetch) })
		}
		return e.token, true, nil
	}

	// As aws.CredentialsCache: the flight runs on a context detached from
	// every caller, and each caller waits only as long as its own ctx allows.
	ch := c.flights.DoChan(key, func() (any, error) { return c.fill(ctx, key, fetch) })
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, false, res.Err
		}
		r := res.Val.(tokenFlightResult)
		return r.token, r.fromCache, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// tokenFlightResult is what one flight hands to all of its callers.
type tokenFlightResult struct {
	token     fluxauth.Token
	fromCache bool
}

// fill runs inside key's flight: it fetches and stores a new token, unless
// one was stored while the caller waited to enter the flight, and falls back
// to the cached token if the fetch fails before that token expires.
func (c *TokenCache) fill(ctx context.Context, key string,
	fetch func(ctx context.Context) (fluxauth.Token, error)) (tokenFlightResult, error) {

	prev := c.lookup(key)
	if now := c.now(); prev != nil && !prev.stale(now) && now.Before(prev.refreshAt) {
		return tokenFlightResult{prev.token, true}, nil
	}

	token, err := c.fetch(ctx, fetch)
	c.metrics.recordFetch(prev != nil, err)
	if err != nil {
		// Errors are never cached: the next caller tries again.
		if prev != nil && !prev.expired(c.now()) {
			c.onRefreshFailure(key, err)
			return tokenFlightResult{prev.token, true}, nil
		}
		return tokenFlightResult{}, err
	}
	c.store(key, token)
	return tokenFlightResult{token, false}, nil
}

func (c *TokenCache) fetch(ctx context.Context,
	fetch func(ctx context.Context) (fluxauth.Token, error)) (fluxauth.Token, error) {

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.fetchTimeout)
	defer cancel()
	c.metrics.fetchStarted()
	defer c.metrics.fetchFinished()
	token, err := fetch(ctx)
	if err == nil && token == nil {
		err = errNoTokenFetched
	}
	return token, err
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

// store caches token under key in a full cache's evicted slot, a free slot,
// or the slot of the token it replaces.
func (c *TokenCache) store(key string, token fluxauth.Token) {
	e := newTokenEntry(key, token, c.now(), c.maxDuration)

	c.mu.Lock()
	old, replaced := c.entries[key]
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
	c.entries[key] = e
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

// Len returns the number of cached tokens, fresh or not.
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

// tokenEntry is a cached token with the deadlines computed when it was stored.
type tokenEntry struct {
	key       string
	token     fluxauth.Token
	refreshAt time.Time     // start a background refresh from here on
	staleAt   tokenDeadline // stop serving without a fetch
	expiresAt tokenDeadline // stop serving at all, even if a refresh fails

	slot int // index in TokenCache.ring, guarded by TokenCache.mu

	refreshStarted atomic.Bool // a background refresh was started for this entry
	referenced     atomic.Bool // used since the eviction hand last passed it
}

func newTokenEntry(key string, token fluxauth.Token, now time.Time, maxDuration time.Duration) *tokenEntry {
	lifetime := token.GetDuration()
	// As upstream, which follows kubelet's rotation of ServiceAccount tokens:
	// fresh for 80% of the lifetime, never longer than maxDuration.
	fresh := min(lifetime*8/10, maxDuration)
	return &tokenEntry{
		key:   key,
		token: token,
		// 90% of the fresh window leaves the background refresh the last 10%
		// (~5 minutes of a 1h cap) to finish before callers would block.
		refreshAt: now.Add(fresh * 9 / 10),
		staleAt:   newTokenDeadline(now.Add(fresh)),
		expiresAt: newTokenDeadline(now.Add(lifetime)),
	}
}

func (e *tokenEntry) stale(now time.Time) bool   { return e.staleAt.passed(now) }
func (e *tokenEntry) expired(now time.Time) bool { return e.expiresAt.passed(now) }

// tokenDeadline is checked pessimistically, as upstream: against the
// monotonic clock, and against the wall clock truncated to the second, which
// catches time that the monotonic clock missed (e.g. a suspended VM).
type tokenDeadline struct {
	mono time.Time
	unix time.Time
}

func newTokenDeadline(t time.Time) tokenDeadline {
	return tokenDeadline{mono: t, unix: time.Unix(t.Unix(), 0)}
}

func (d tokenDeadline) passed(now time.Time) bool {
	return !d.mono.After(now) || !d.unix.After(now)
}
