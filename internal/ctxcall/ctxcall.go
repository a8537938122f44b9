// Package ctxcall bounds calls that may ignore their context: the caller
// returns when its context is done even if the call has not, with an error
// that says what it gave up on and wraps ctx.Err().
//
// The abandoned call is not stopped (it cannot be: it ignores its context)
// but left to finish in its own goroutine, and its result is dropped. Use
// this only for calls that end on their own, such as those of an HTTP client
// with a timeout; otherwise every abandoned call is a goroutine leaked for
// good.
package ctxcall

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"
)

// Do returns f(ctx), or, when ctx is done before f returns, a zero T and an
// error such as "gave up on the GKE metadata server after 3s: context
// deadline exceeded" that wraps ctx.Err(). what names the call for that
// error. f is not called when ctx is already done, and a failure of f that
// comes once ctx is done is reported the same way, so that every failure
// caused by ctx wraps ctx.Err().
//
// A panic in f is raised again in the caller while the caller waits; one
// after the caller gave up is dropped with the rest of the result, so that a
// call nobody waits for cannot crash the process.
func Do[T any](ctx context.Context, what string, f func(context.Context) (T, error)) (T, error) {
	start := time.Now()
	if ctx.Err() != nil {
		return gaveUp[T](ctx, what, start)
	}
	// Buffered, so the goroutine never blocks on a caller that left.
	done := make(chan outcome[T], 1)
	go func() { done <- run(ctx, f) }()
	return wait(ctx, what, start, done, func(o outcome[T]) outcome[T] { return o })
}

// Group is Do for calls that callers share: while a call for a key runs,
// later callers for that key wait for it, each until its own context is
// done, instead of starting another. However often callers give up on a
// call that hangs, at most one goroutine per key is left behind.
//
// The shared call gets the first caller's context without its cancellation
// and deadline, so that one caller giving up does not fail the others: it
// must end on its own, as calls given to Do must.
//
// The zero value is ready to use. A Group is safe for concurrent use.
type Group[T any] struct {
	flights singleflight.Group
}

// Do returns the result of the call for key, starting f when none runs.
// Errors and panics are those of the package-level Do.
func (g *Group[T]) Do(ctx context.Context, key, what string, f func(context.Context) (T, error)) (T, error) {
	start := time.Now()
	if ctx.Err() != nil {
		return gaveUp[T](ctx, what, start)
	}
	flight := g.flights.DoChan(key, func() (any, error) {
		// Panics are caught here: singleflight would raise them again in a
		// goroutine of its own, where nothing can recover them.
		return run(context.WithoutCancel(ctx), f), nil
	})
	return wait(ctx, what, start, flight, func(r singleflight.Result) outcome[T] { return r.Val.(outcome[T]) })
}

// outcome is what a call returned, or how it panicked.
type outcome[T any] struct {
	value    T
	err      error
	panicked bool
	panicVal any
}

func run[T any](ctx context.Context, f func(context.Context) (T, error)) (o outcome[T]) {
	defer func() {
		if r := recover(); r != nil {
			o = outcome[T]{panicked: true, panicVal: r}
		}
	}()
	o.value, o.err = f(ctx)
	return o
}

// wait returns the outcome that done delivers, or gives up when ctx is
// done first. done must be buffered: nobody may be left to receive.
func wait[T, R any](ctx context.Context, what string, start time.Time, done <-chan R, get func(R) outcome[T]) (T, error) {
	select {
	case r := <-done:
		return finish(ctx, what, start, get(r))
	case <-ctx.Done():
		// A result that arrived with the deadline beats giving up.
		select {
		case r := <-done:
			return finish(ctx, what, start, get(r))
		default:
			return gaveUp[T](ctx, what, start)
		}
	}
}

// finish returns what the call returned, except that a failure once ctx is
// done is reported as giving up: the call most likely failed because ctx
// ended, and its own error need not say so (oauth2 formats it with %v), so
// callers could not tell it from any other failure.
func finish[T any](ctx context.Context, what string, start time.Time, o outcome[T]) (T, error) {
	if o.panicked {
		panic(o.panicVal)
	}
	if o.err != nil && ctx.Err() != nil {
		return gaveUp[T](ctx, what, start)
	}
	return o.value, o.err
}

func gaveUp[T any](ctx context.Context, what string, start time.Time) (T, error) {
	var zero T
	return zero, fmt.Errorf("gave up on %s after %s: %w", what, time.Since(start).Round(time.Millisecond), ctx.Err())
}
