package fakes

import (
	"fmt"
	"net/http"
	"time"
)

// faultExpiredAge is how long before the request ExpiredCredentials
// credentials expired: long enough that no clock slack hides it.
const faultExpiredAge = time.Minute

type faultKind int

const (
	faultNone faultKind = iota
	faultThrottle
	faultServerError
	faultReset
	faultHang
	faultMalformed
	faultExpired
	faultMissingExpiry
	faultEmpty
	faultClockSkew
)

// Fault describes what a fake does to a request in place of, or on top of,
// its normal answer. Make one with a constructor (Throttle, ServerError,
// ResetConnection, Hang, MalformedBody, ExpiredCredentials, MissingExpiry,
// EmptyCredentials, ClockSkew), narrow it with Times and OnlyFor, and hand
// it to a fake's InjectFault. The zero Fault is not a fault and InjectFault
// refuses it.
//
// Throttle, ServerError, ResetConnection, Hang and MalformedBody answer in
// place of the fake, after it has read the request and before it checks
// anything: the request mints nothing and is not in the fake's call records
// (AWSSTS.Calls, GCPIAMCredentials.Calls, GCPSTS.Exchanges), but Attempts and
// Hits count it. All but MalformedBody apply to every operation of a fake.
//
// ExpiredCredentials, MissingExpiry, EmptyCredentials and ClockSkew are bad
// successes: the fake checks and handles the request as usual and alters the
// credentials in its successful reply, in the service's own wire format, so
// the real SDKs parse them and the code under test must catch the bad value.
// If the fake refuses the request, the refusal goes out unchanged, and the
// request still counts as a hit. Like MalformedBody, they apply only to
// operations that return credentials (see InjectFault on each fake); other
// operations pass them by without a hit.
//
// Fault is an immutable value: copy and share it freely.
type Fault struct {
	kind   faultKind
	status int
	skew   time.Duration
	times  int
	only   string
}

// Throttle makes the fake refuse requests the way its service does when
// rate limited: STS answers 400 with code Throttling, which the AWS SDK's
// standard retryer treats as a retryable throttle (a 429 would not be
// retried); the Pod Identity agent answers 429 with a plain-text body,
// which the SDK's container provider retries; the metadata server answers
// 429 in plain text; Google STS and IAM Credentials answer 429 with
// Google's JSON error envelope, status RESOURCE_EXHAUSTED and reason
// RATE_LIMIT_EXCEEDED.
func Throttle() Fault { return Fault{kind: faultThrottle} }

// ServerError makes the fake answer with status, which must be 5xx, in its
// service's error format: an STS error with code ServiceUnavailable (503)
// or InternalFailure (others); plain text from the Pod Identity agent and
// the metadata server; Google's JSON error envelope with status INTERNAL
// (500), UNAVAILABLE (502, 503), DEADLINE_EXCEEDED (504) or UNKNOWN from
// Google STS and IAM Credentials. It panics for other statuses.
func ServerError(status int) Fault {
	if status < 500 || status > 599 {
		panic(fmt.Sprintf("fakes: ServerError needs a 5xx status, got %d", status))
	}
	return Fault{kind: faultServerError, status: status}
}

// ResetConnection makes the fake read the request and then reset the TCP
// connection (SO_LINGER 0), so the client sees ECONNRESET and no response.
func ResetConnection() Fault { return Fault{kind: faultReset} }

// Hang makes the fake read the request and never answer, as a half-dead
// connection does. The request stays hung until its client gives up or the
// fake is closed, then the connection is closed without an answer; removing
// the fault does not release requests already hanging.
func Hang() Fault { return Fault{kind: faultHang} }

// MalformedBody makes the fake answer 200 with its usual content type and a
// truncated XML or JSON document, which no SDK can parse. It holds no
// credentials.
func MalformedBody() Fault { return Fault{kind: faultMalformed} }

// ExpiredCredentials makes the fake mint credentials that expired one
// minute before the request on the fake's clock, and report that expiry:
// a past Expiration (STS, Pod Identity), a past expireTime (IAM
// Credentials) or an expires_in of -60 (metadata server, Google STS). The
// fake itself refuses the credentials too.
func ExpiredCredentials() Fault { return Fault{kind: faultExpired} }

// MissingExpiry makes the fake leave the expiry out of its reply: no
// Expiration element or field (STS, Pod Identity), no expireTime (IAM
// Credentials), no expires_in (metadata server, Google STS). The
// credentials themselves are valid and expire as usual.
func MissingExpiry() Fault { return Fault{kind: faultMissingExpiry} }

// EmptyCredentials makes the fake reply with empty credentials and a valid
// expiry: empty AccessKeyId, SecretAccessKey and SessionToken (Token for
// Pod Identity) on AWS, an empty access token on Google.
func EmptyCredentials() Fault { return Fault{kind: faultEmpty} }

// ClockSkew makes the fake report an expiry shifted by d from the one it
// keeps, as a service whose clock is off by d would: Expiration and
// expireTime move by d, and expires_in grows by d in whole seconds.
// The fake still honours the credentials until their real expiry.
func ClockSkew(d time.Duration) Fault { return Fault{kind: faultClockSkew, skew: d} }

// Times limits f to the next n requests it matches; 0, the default, applies
// it until it is removed. It panics for negative n.
func (f Fault) Times(n int) Fault {
	if n < 0 {
		panic(fmt.Sprintf("fakes: Fault.Times needs n >= 0, got %d", n))
	}
	f.times = n
	return f
}

// OnlyFor limits f to requests for one operation of the fake: the Action on
// STS (e.g. "AssumeRole"), the URL path without query on the other fakes
// (e.g. "/v1/token"). InjectFault panics for an operation the fake does not
// serve or, for a bad success, one that returns no credentials.
func (f Fault) OnlyFor(op string) Fault {
	f.only = op
	return f
}

// String names f the way it was built, e.g.
// `ServerError(503).Times(2).OnlyFor("AssumeRole")`, for test names.
func (f Fault) String() string {
	var s string
	switch f.kind {
	case faultThrottle:
		s = "Throttle()"
	case faultServerError:
		s = fmt.Sprintf("ServerError(%d)", f.status)
	case faultReset:
		s = "ResetConnection()"
	case faultHang:
		s = "Hang()"
	case faultMalformed:
		s = "MalformedBody()"
	case faultExpired:
		s = "ExpiredCredentials()"
	case faultMissingExpiry:
		s = "MissingExpiry()"
	case faultEmpty:
		s = "EmptyCredentials()"
	case faultClockSkew:
		s = fmt.Sprintf("ClockSkew(%s)", f.skew)
	default:
		return "Fault{}"
	}
	if f.times > 0 {
		s += fmt.Sprintf(".Times(%d)", f.times)
	}
	if f.only != "" {
		s += fmt.Sprintf(".OnlyFor(%q)", f.only)
	}
	return s
}

// answersInPlace reports whether f replaces the fake's answer.
func (f Fault) answersInPlace() bool {
	switch f.kind {
	case faultThrottle, faultServerError, faultReset, faultHang, faultMalformed:
		return true
	}
	return false
}

// needsCredentials reports whether f can only apply to operations that
// return credentials.
func (f Fault) needsCredentials() bool {
	switch f.kind {
	case faultMalformed, faultExpired, faultMissingExpiry, faultEmpty, faultClockSkew:
		return true
	}
	return false
}

// lifetime is the lifetime to mint credentials with: expired credentials
// are minted already expired, so that the fake refuses them as well.
func (f Fault) lifetime(d time.Duration) time.Duration {
	if f.kind == faultExpired {
		return -faultExpiredAge
	}
	return d
}

// reportExpiry is the absolute expiry to put on the wire for credentials
// that expire at t, and false when the reply must carry none.
func (f Fault) reportExpiry(t time.Time) (time.Time, bool) {
	switch f.kind {
	case faultMissingExpiry:
		return time.Time{}, false
	case faultClockSkew:
		return t.Add(f.skew), true
	}
	return t, true
}

// reportExpiresIn is the expires_in, in seconds, to put on the wire for
// credentials minted for lifetime, and false when the reply must carry
// none. Without an expiry fault it is at least 1: oauth2 takes 0 for a
// missing expiry and refuses negative ones.
func (f Fault) reportExpiresIn(lifetime time.Duration) (int64, bool) {
	secs := int64(lifetime / time.Second)
	switch f.kind {
	case faultMissingExpiry:
		return 0, false
	case faultClockSkew:
		return secs + int64(f.skew/time.Second), true
	case faultExpired:
		return secs, true
	}
	return max(secs, 1), true
}

// emptiesCredentials reports whether the reply must carry empty
// credentials.
func (f Fault) emptiesCredentials() bool { return f.kind == faultEmpty }

// faultReplies writes, in one fake's wire format, the faults that answer
// in its place with a body.
type faultReplies struct {
	throttle    func(w http.ResponseWriter)
	serverError func(w http.ResponseWriter, status int)
	malformed   func(w http.ResponseWriter)
}
