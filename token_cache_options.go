package auth

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TokenCacheOption configures a TokenCache; the Cache* functions make them.
// They are named apart from the Option of each call (With*), which they
// could otherwise be taken for.
type TokenCacheOption struct {
	apply func(*tokenCacheOptions)
}

func cacheOption(f func(*tokenCacheOptions)) TokenCacheOption { return TokenCacheOption{apply: f} }

type tokenCacheOptions struct {
	maxDuration      time.Duration
	fetchTimeout     time.Duration
	hedgeDelay       time.Duration
	registerer       prometheus.Registerer
	metricsPrefix    string
	onRefreshFailure func(key string, err error)
	now              func() time.Time
}

// CacheMaxDuration caps how long a token is served before it is refreshed:
// the refresh starts at 90% of the lesser of this and 80% of the token's
// lifetime. While refreshes fail, the token is still served until it expires
// (less the safety margin). Optional. Defaults to cache.TokenMaxDuration
// (1h), which is also the largest value honoured, as upstream. Must be
// greater than zero.
func CacheMaxDuration(d time.Duration) TokenCacheOption {
	return cacheOption(func(o *tokenCacheOptions) { o.maxDuration = d })
}

// CacheFetchTimeout bounds each fetch of a token, however many callers share
// it and whether or not they gave up waiting. Optional. Defaults to 30s. Must
// be greater than zero.
func CacheFetchTimeout(d time.Duration) TokenCacheOption {
	return cacheOption(func(o *tokenCacheOptions) { o.fetchTimeout = d })
}

// CacheFetchHedgeDelay is how long after a fetch started later misses on its
// key still wait for it rather than start a new one. Within it, concurrent
// misses make one upstream call; past it, a fetch that hangs no longer holds
// up new callers: at most one new fetch per key starts per hedge delay, and
// the first token any of them brings answers the callers of all. Optional.
// Defaults to 2s. Must be greater than zero; a value at or above the fetch
// timeout turns hedging off.
func CacheFetchHedgeDelay(d time.Duration) TokenCacheOption {
	return cacheOption(func(o *tokenCacheOptions) { o.hedgeDelay = d })
}

// CacheMetricsRegisterer registers the cache metrics on r. Optional. Defaults
// to no metrics.
func CacheMetricsRegisterer(r prometheus.Registerer) TokenCacheOption {
	return cacheOption(func(o *tokenCacheOptions) { o.registerer = r })
}

// CacheMetricsPrefix prefixes every metric name, e.g. "gotk_". Optional.
// Defaults to no prefix.
func CacheMetricsPrefix(p string) TokenCacheOption {
	return cacheOption(func(o *tokenCacheOptions) { o.metricsPrefix = p })
}

// CacheRefreshFailureHandler is told about each failed attempt of a background
// refresh, whose error callers never see: they get the still-valid cached
// token instead. Use it to log; nothing else says why a refresh failed. It
// runs on the key's refresh goroutine, between retries, so keep it fast.
// Optional. key is the cache key as given to the cache; err comes from the
// provider or says that the fetch timed out.
func CacheRefreshFailureHandler(f func(key string, err error)) TokenCacheOption {
	return cacheOption(func(o *tokenCacheOptions) { o.onRefreshFailure = f })
}

// CacheClock replaces time.Now for the tokens' deadlines, for tests.
// Optional. Fetch timeouts, the hedge delay and retry backoff run on the
// runtime's timers.
func CacheClock(now func() time.Time) TokenCacheOption {
	return cacheOption(func(o *tokenCacheOptions) { o.now = now })
}
