package auth

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
)

// tokenFlights lets concurrent misses on a key share one fetch, a flight,
// without letting a hung fetch hold the key. x/sync/singleflight keeps a
// key's flight until its fetch returns, so every caller behind a hung fetch
// failed until the fetch timeout, long after the fault had cleared. Here:
//
//   - a caller joins the key's current flight only while it is younger than
//     the hedge delay, and otherwise starts a new one that becomes current:
//     at most one new flight per key per hedge delay;
//   - the first token any flight of a key brings answers the callers of all
//     of them, so callers of a hung flight are not left behind;
//   - a superseded flight is cancelled as soon as nobody waits for it; the
//     current one runs on without callers, to fill the cache;
//   - every flight is bounded by the fetch timeout: its callers stop waiting
//     then, even for a fetch that ignores its context. Such a fetch stays
//     among the key's flights until it returns or a newer flight succeeds.
type tokenFlights struct {
	timeout    time.Duration
	errTimeout error // the cause of a flight's context when timeout passes
	hedgeDelay time.Duration

	// mu guards seq, byKey, and the waiters and result of every flight.
	mu    sync.Mutex
	seq   uint64
	byKey map[string][]*tokenFlight // unfinished flights, oldest first; the last is current
}

// tokenFlight is one fetch for a key, shared by the callers that joined it.
type tokenFlight struct {
	seq     uint64    // start order: a store never replaces a later flight's token
	started time.Time // for the hedge delay
	cancel  context.CancelFunc
	expired <-chan struct{} // the fetch context's Done: timed out, or no longer needed
	done    chan struct{}   // closed once result and err are set

	// Guarded by tokenFlights.mu; result and err are read-only once done
	// is closed.
	waiters  int
	finished bool
	result   tokenFlightResult
	err      error
}

// tokenFlightResult is what one flight hands to all of its callers.
type tokenFlightResult struct {
	token     fluxauth.Token
	fromCache bool
}

func newTokenFlights(timeout, hedgeDelay time.Duration) tokenFlights {
	return tokenFlights{
		timeout:    timeout,
		errTimeout: fmt.Errorf("token fetch timed out after %s: %w", timeout, context.DeadlineExceeded),
		hedgeDelay: hedgeDelay,
		byKey:      make(map[string][]*tokenFlight),
	}
}

// join adds the caller to key's current flight, or starts a new flight if
// there is none or the current one is older than the hedge delay. For a new
// flight it also returns the context to run its fetch on: detached from
// ctx's cancellation but with its values, bounded by the fetch timeout. The
// caller must leave the flight when it stops waiting.
func (g *tokenFlights) join(ctx context.Context, key string) (f *tokenFlight, fetchCtx context.Context) {
	g.mu.Lock()
	f = g.joinLocked(key)
	g.mu.Unlock()
	if f != nil {
		return f, nil
	}

	// The context and its timer, the costliest part of a flight, are made
	// outside the lock that every miss takes. If another caller started a
	// flight for key meanwhile, this one is dropped and that one joined.
	started := time.Now() // not after the context's clock starts: see joinLocked
	fetchCtx, cancel := context.WithTimeoutCause(context.WithoutCancel(ctx), g.timeout, g.errTimeout)

	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.joinLocked(key); f != nil {
		cancel()
		return f, nil
	}
	live := g.byKey[key]
	if n := len(live); n > 0 && live[n-1].waiters == 0 {
		live[n-1].cancel() // superseded, and nobody waits for it
	}
	g.seq++
	f = &tokenFlight{seq: g.seq, started: started, cancel: cancel, expired: fetchCtx.Done(),
		done: make(chan struct{}), waiters: 1}
	g.byKey[key] = append(live, f)
	return f, fetchCtx
}

// joinLocked adds a waiter to key's current flight and returns it, if the
// flight is younger than the hedge delay; and than the timeout, past which
// it has expired whatever the hedge delay.
func (g *tokenFlights) joinLocked(key string) *tokenFlight {
	live := g.byKey[key]
	if len(live) == 0 {
		return nil
	}
	current := live[len(live)-1]
	if time.Since(current.started) >= min(g.hedgeDelay, g.timeout) {
		return nil
	}
	current.waiters++
	return current
}

// leave removes a caller from f, and cancels f if it was the last one and a
// newer flight superseded f.
func (g *tokenFlights) leave(key string, f *tokenFlight) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f.waiters--
	if f.waiters == 0 && !f.finished && !g.isCurrentLocked(key, f) {
		f.cancel()
	}
}

func (g *tokenFlights) isCurrentLocked(key string, f *tokenFlight) bool {
	live := g.byKey[key]
	return len(live) > 0 && live[len(live)-1] == f
}

// finish hands f's result to its callers; a token goes to the callers of
// every flight of key, whose fetches are then no longer needed. Only the
// first result of a flight counts.
func (g *tokenFlights) finish(key string, f *tokenFlight, r tokenFlightResult, err error) {
	g.mu.Lock()
	if f.finished {
		g.mu.Unlock()
		return
	}
	var answered []*tokenFlight
	if err == nil {
		answered = g.byKey[key]
		delete(g.byKey, key)
	} else {
		answered = []*tokenFlight{f}
		g.removeLocked(key, f)
	}
	for _, a := range answered {
		a.finished, a.result, a.err = true, r, err
		close(a.done)
	}
	g.mu.Unlock()

	for _, a := range answered {
		if a != f {
			a.cancel()
		}
	}
}

func (g *tokenFlights) removeLocked(key string, f *tokenFlight) {
	live := slices.DeleteFunc(g.byKey[key], func(l *tokenFlight) bool { return l == f })
	if len(live) == 0 {
		delete(g.byKey, key)
		return
	}
	g.byKey[key] = live
}

// fetchErr is err, or the fetch timeout error if the flight's context
// (fetchCtx) ran out of time: the provider's own wording of a cancelled
// request would not say that the cache gave up, nor after how long.
func (g *tokenFlights) fetchErr(fetchCtx context.Context, err error) error {
	if err != nil && context.Cause(fetchCtx) == g.errTimeout {
		return g.errTimeout
	}
	return err
}
