package auth

import (
	"fmt"
	"sync/atomic"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
)

// tokenEntry is a cached token with the deadlines computed when it was stored.
type tokenEntry struct {
	key         string
	seq         uint64 // of the flight that fetched it
	token       fluxauth.Token
	refreshAt   tokenDeadline // start a background refresh from here on
	usableUntil tokenDeadline // serve it until here, refreshed or not

	slot int // index in TokenCache.ring, guarded by TokenCache.mu

	refreshStarted atomic.Bool // a background refresh was started for this entry
	referenced     atomic.Bool // used since the eviction hand last passed it
}

// newTokenEntry computes token's deadlines, fetched at now, and refuses a
// token that would not be usable at all.
func newTokenEntry(key string, seq uint64, token fluxauth.Token, now time.Time, maxDuration time.Duration) (*tokenEntry, error) {
	lifetime := token.GetDuration()
	expiry := now.Add(lifetime)
	usableUntil := newTokenDeadline(expiry.Add(-tokenSafetyMargin(lifetime)))
	if lifetime <= 0 || usableUntil.passed(now) {
		return nil, fmt.Errorf("failed to fetch token: %w: it expires at '%s' (lifetime '%s')",
			errTokenExpiredOnArrival, expiry.UTC().Format(time.RFC3339Nano), lifetime)
	}
	// As upstream, which follows kubelet's rotation of ServiceAccount tokens:
	// fresh for 80% of the lifetime, never longer than maxDuration. Starting
	// the refresh at 90% of that leaves it the rest of the lifetime, less
	// the margin, to succeed before callers would have to wait.
	fresh := min(lifetime*8/10, maxDuration)
	return &tokenEntry{
		key:         key,
		seq:         seq,
		token:       token,
		refreshAt:   newTokenDeadline(now.Add(fresh * 9 / 10)),
		usableUntil: usableUntil,
	}, nil
}

// tokenSafetyMargin is the end of a token's lifetime that is not served, so
// that a token does not expire between the cache and the cloud API it is
// sent to: 10% of the lifetime, at most 30s (as the 10s of x/oauth2's
// expiryDelta, with room for a slow request).
func tokenSafetyMargin(lifetime time.Duration) time.Duration {
	return min(lifetime/10, maxTokenSafetyMargin)
}

func (e *tokenEntry) usable(now time.Time) bool { return !e.usableUntil.passed(now) }

func (e *tokenEntry) dueForRefresh(now time.Time) bool { return e.refreshAt.passed(now) }

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

// left is the time until d passes.
func (d tokenDeadline) left(now time.Time) time.Duration {
	return min(d.mono.Sub(now), d.unix.Sub(now))
}
