package fakes

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
)

// InjectedFault is a Fault injected into one fake, returned by InjectFault.
//
// InjectedFault is safe for concurrent use.
type InjectedFault struct {
	fault Fault
	set   *faultSet

	// Guarded by set.mu.
	hits int
	// hit is closed and replaced on every hit, waking WaitHits.
	hit chan struct{}
}

// Remove stops the fault from applying to requests that arrive from now on.
// Requests it already applies to are not affected: a request hung by Hang
// stays hung until its client gives up or the fake is closed. Removing a
// fault twice, or one whose Times are used up, does nothing.
func (i *InjectedFault) Remove() {
	i.set.mu.Lock()
	defer i.set.mu.Unlock()
	i.set.active = slices.DeleteFunc(i.set.active, func(a *InjectedFault) bool { return a == i })
	i.set.nActive.Store(int64(len(i.set.active)))
}

// Hits returns how many requests the fault has applied to.
func (i *InjectedFault) Hits() int {
	i.set.mu.Lock()
	defer i.set.mu.Unlock()
	return i.hits
}

// WaitHits blocks until the fault has applied to at least n requests, for
// instance until a request is known to hang, or until ctx is done, whose
// error it then returns.
func (i *InjectedFault) WaitHits(ctx context.Context, n int) error {
	for {
		i.set.mu.Lock()
		hits, hit := i.hits, i.hit
		i.set.mu.Unlock()
		if hits >= n {
			return nil
		}
		select {
		case <-hit:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// faultSet is what every fake keeps to inject faults: the faults in force,
// its attempt counter and the signal that ends hung requests on Close.
type faultSet struct {
	closed    chan struct{}
	closeOnce sync.Once
	attempts  atomic.Int64

	// mu guards active and the hits and hit of every InjectedFault of the
	// set.
	mu     sync.Mutex
	active []*InjectedFault
	// nActive is len(active), written under mu, so that requests skip the
	// lock while no fault is in force, as in benchmarks.
	nActive atomic.Int64
}

func newFaultSet() *faultSet {
	return &faultSet{closed: make(chan struct{})}
}

// inject adds f after the faults already in force. The fake has checked
// f.only against the operations it serves.
func (s *faultSet) inject(f Fault) *InjectedFault {
	if f.kind == faultNone {
		panic("fakes: InjectFault needs a Fault made by a constructor such as Throttle")
	}
	i := &InjectedFault{fault: f, set: s, hit: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active = append(s.active, i)
	s.nActive.Store(int64(len(s.active)))
	return i
}

// attempt counts a request that reached the fake.
func (s *faultSet) attempt() { s.attempts.Add(1) }

// count returns the number of attempts.
func (s *faultSet) count() int { return int(s.attempts.Load()) }

// take returns the first fault in force that applies to a request for op,
// which returns credentials when credentials is set, and counts the hit; it
// returns the zero Fault when none applies.
func (s *faultSet) take(op string, credentials bool) Fault {
	if s.nActive.Load() == 0 {
		return Fault{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, i := range s.active {
		f := i.fault
		if (f.only != "" && f.only != op) || (f.needsCredentials() && !credentials) {
			continue
		}
		i.hits++
		close(i.hit)
		i.hit = make(chan struct{})
		if f.times > 0 && i.hits >= f.times {
			s.active = slices.Delete(s.active, k, k+1)
			s.nActive.Store(int64(len(s.active)))
		}
		return f
	}
	return Fault{}
}

// answer carries out f if it answers in place of the fake, and reports
// whether it did; the handler must then return at once.
func (s *faultSet) answer(w http.ResponseWriter, r *http.Request, f Fault, replies faultReplies) bool {
	if !f.answersInPlace() {
		return false
	}
	switch f.kind {
	case faultThrottle:
		replies.throttle(w)
	case faultServerError:
		replies.serverError(w, f.status)
	case faultMalformed:
		replies.malformed(w)
	case faultReset:
		faultResetConnection(w)
	case faultHang:
		s.hang(r)
	}
	return true
}

// close releases hung requests; the fake then closes its server, which
// waits for its handlers.
func (s *faultSet) close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// hang waits until the client goes away or the fake closes, then drops the
// connection without an answer.
func (s *faultSet) hang(r *http.Request) {
	// net/http notices a client hanging up (and cancels r.Context) only
	// once the body is consumed.
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	select {
	case <-r.Context().Done():
	case <-s.closed:
	}
	// Returning would send an empty 200; aborting closes the connection
	// with nothing written, and net/http does not log it.
	panic(http.ErrAbortHandler)
}

// faultResetConnection resets the connection: closing a TCP socket with
// SO_LINGER 0 sends RST, so the client reads ECONNRESET.
func faultResetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): abort, which resets the stream.
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}
