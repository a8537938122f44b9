package auth_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

// The fault matrix drives every fault of package fakes through every hop of
// the AWS and GCP chains, through GetAccessToken, and pins for each what the
// caller sees: the error, how many requests the fault met (the SDK's
// retries), that a hang is bounded by the caller's deadline, that nothing
// bad is cached, and that the chain recovers in one round trip once the
// fault is removed.

const (
	// faultHangDeadline is the caller's deadline on Hang rows; the call
	// must return within it plus faultDeadlineSlack.
	faultHangDeadline  = 2 * time.Second
	faultDeadlineSlack = 2 * time.Second
	// faultCallTimeout bounds the other calls, whose faults the SDKs retry
	// with backoffs of a few seconds at most: a call must never need it.
	faultCallTimeout = 20 * time.Second
	// faultRetryBound is the longest a call retrying a persistent fault may
	// take: 2s+4s of AWS backoff at most, 3.5s of Google's.
	faultRetryBound = 10 * time.Second
	// faultHedgeDelay is the cache's: past it, a call after a hang starts
	// a new fetch instead of waiting for the hung one.
	faultHedgeDelay = 200 * time.Millisecond
	// faultRecoveryBound bounds the call after the fault is removed: one
	// round trip per hop, on a busy machine; far less than a call held up
	// by a hung fetch would take (the cache's fetch timeout, 30s).
	faultRecoveryBound = 5 * time.Second
)

// Prefixes of the chains' errors: what was being fetched, outermost first.
const (
	awsControllerTarget = "failed to get aws credentials of '" + targetRole +
		"' impersonated from the controller identity in region 'us-east-1': "
	awsControllerSource = awsControllerTarget + "failed to get aws source credentials of the controller identity in region 'us-east-1': "
	awsSATarget         = "failed to get aws credentials of '" + targetRole + "' impersonated from service account " +
		"'my-app/my-app' as '" + sourceRole + "' in region 'us-east-1': "
	awsSASource = awsSATarget + "failed to get aws source credentials of service account 'my-app/my-app' as '" +
		sourceRole + "' in region 'us-east-1': "
	awsWebIdentity = awsSASource + "failed to exchange the kubernetes token: operation error STS: AssumeRoleWithWebIdentity, "
	awsAssumeRole  = awsSATarget + "sts AssumeRole in region 'us-east-1'"

	gcpControllerTarget = "failed to get gcp credentials of '" + targetGSA + "' impersonated from the controller identity: "
	gcpControllerSource = gcpControllerTarget + "failed to get gcp source credentials of the controller identity: "
	gcpSATarget         = "failed to get gcp credentials of '" + targetGSA + "' impersonated from service account 'my-app/my-app' (direct access): "
	gcpSASource         = gcpSATarget + "failed to get gcp source credentials of service account 'my-app/my-app' (direct access): "
	gcpExchange         = gcpSASource + "failed to exchange the kubernetes token: "
	gcpIAM              = gcpSATarget + "iamcredentials generateAccessToken for '" + targetGSA + "'"

	// A cached chain's caller waits for the flight of the token it asked for,
	// so it names the target whichever hop hangs.
	gaveUpWaiting = "gave up waiting for the token fetch after <dur>: context deadline exceeded"

	awsRetried = "exceeded maximum number of attempts, 3, https response error StatusCode: "
	awsInvalid = "the cloud returned an unusable token: invalid AWS credentials: "
	awsExpired = awsInvalid + "Expiration <time> is not more than 1m0s after the current time <time>"
	awsEmpty   = awsInvalid + "AccessKeyId is empty; SecretAccessKey is empty; SessionToken is empty"
	// STS replies are checked inside the SDK client (aws/reply_guard.go),
	// before the SDK or upstream reads them.
	awsGuard          = "the reply holds invalid AWS credentials: "
	awsControllerIRSA = awsControllerSource + "failed to refresh cached credentials, failed to retrieve credentials, " +
		"operation error STS: AssumeRoleWithWebIdentity, "
	awsGuardExpired = awsGuard + "Expiration <time> is not more than 1m0s after the current time <time>"
	awsGuardEmpty   = awsGuard + "AccessKeyId is empty; SecretAccessKey is empty; SessionToken is empty"
	gcpInvalid      = "the cloud returned an unusable token: invalid GCP access token: "
	gcpSTSStatus    = `oauth2/google: status code `
	gcpIAMBad       = gcpIAM + " returned an invalid GCP access token: "
	reset           = "read tcp <addr>-><addr>: read: connection reset by peer"
)

var (
	faultThrottle  = fakes.Throttle()
	fault500       = fakes.ServerError(http.StatusInternalServerError)
	fault503       = fakes.ServerError(http.StatusServiceUnavailable)
	faultReset     = fakes.ResetConnection()
	faultHang      = fakes.Hang()
	faultMalformed = fakes.MalformedBody()
	faultExpired   = fakes.ExpiredCredentials()
	faultNoExpiry  = fakes.MissingExpiry()
	faultEmpty     = fakes.EmptyCredentials()
	faultClockSkew = fakes.ClockSkew(-2 * time.Hour)
	badSuccesses   = []fakes.Fault{faultExpired, faultNoExpiry, faultEmpty, faultClockSkew}
	retriedFaults  = []fakes.Fault{faultThrottle, fault500, fault503, faultReset}
)

// faultRow is one fault on one hop and what GetAccessToken makes of it.
type faultRow struct {
	hop   *faultHop
	fault fakes.Fault
	// err is the whole error message, with placeholders for what varies
	// from run to run (see errPattern).
	err string
	// errNoCache is the error without a cache, when it differs.
	errNoCache string
	// is, when set, must be in the error's chain.
	is error
	// attempts is how many requests the fault met: one, plus the retries
	// of the SDK or the library.
	attempts int
}

// faultMatrix has a row for every fault on every hop. The hops with
// process environment run serially, so the uncached run of a fault their
// SDK retries, which would repeat the cached run's backoff of seconds with
// the same error and attempts, is left out there (see faultModes).
var faultMatrix = []faultRow{
	// EKS Pod Identity: the SDK's container provider tries 3 times, 429
	// included. Its errors end with the agent's plain-text body.
	{hop: awsPodIdentityHop, fault: faultThrottle, attempts: 3, err: awsControllerSource +
		"failed to refresh cached credentials, failed to load credentials, exceeded maximum number of attempts, 3, : Too Many Requests\\n"},
	{hop: awsPodIdentityHop, fault: fault500, attempts: 3, err: awsControllerSource +
		"failed to refresh cached credentials, failed to load credentials, exceeded maximum number of attempts, 3, : Internal Server Error\\n"},
	{hop: awsPodIdentityHop, fault: fault503, attempts: 3, err: awsControllerSource +
		"failed to refresh cached credentials, failed to load credentials, exceeded maximum number of attempts, 3, : Service Unavailable\\n"},
	{hop: awsPodIdentityHop, fault: faultReset, attempts: 3, is: syscall.ECONNRESET, err: awsControllerSource +
		"failed to refresh cached credentials, failed to load credentials, exceeded maximum number of attempts, 3, request send failed, " +
		`Get "http://<addr>/v1/credentials": ` + reset},
	{hop: awsPodIdentityHop, fault: faultHang, attempts: 1, is: context.DeadlineExceeded, err: awsControllerTarget + gaveUpWaiting,
		errNoCache: awsControllerSource + "request canceled, context deadline exceeded"},
	{hop: awsPodIdentityHop, fault: faultMalformed, attempts: 1, err: awsControllerSource +
		"failed to refresh cached credentials, failed to load credentials, deserialization failed, failed to deserialize json response, unexpected EOF"},
	{hop: awsPodIdentityHop, fault: faultExpired, attempts: 1, is: aws.ErrInvalidCredentials, err: awsControllerSource + awsExpired},
	{hop: awsPodIdentityHop, fault: faultNoExpiry, attempts: 1, is: aws.ErrInvalidCredentials, err: awsControllerSource + awsInvalid + "Expiration is zero"},
	{hop: awsPodIdentityHop, fault: faultEmpty, attempts: 1, is: aws.ErrInvalidCredentials, err: awsControllerSource + awsEmpty},
	{hop: awsPodIdentityHop, fault: faultClockSkew, attempts: 1, is: aws.ErrInvalidCredentials, err: awsControllerSource + awsExpired},

	// Controller IRSA: stscreds' web identity provider on the SDK's STS
	// client. That client retries as it does for the ServiceAccount's web
	// identity below, so only the faults that are not retried run here.
	{hop: awsControllerIRSAHop, fault: faultHang, attempts: 1, is: context.DeadlineExceeded, err: awsControllerTarget + gaveUpWaiting,
		errNoCache: awsControllerSource + "request canceled, context deadline exceeded"},
	{hop: awsControllerIRSAHop, fault: faultMalformed, attempts: 1, err: awsControllerSource +
		"failed to refresh cached credentials, failed to retrieve credentials, operation error STS: AssumeRoleWithWebIdentity, " +
		"https response error StatusCode: 200, RequestID: <id>, deserialization failed, failed to decode response body, XML syntax error on line 2: unexpected EOF"},
	// stscreds once panicked on a reply without Expiration, in a goroutine
	// nothing could recover; the guard refuses it first.
	{hop: awsControllerIRSAHop, fault: faultExpired, attempts: 1, is: aws.ErrInvalidCredentials, err: awsControllerIRSA + awsGuardExpired},
	{hop: awsControllerIRSAHop, fault: faultNoExpiry, attempts: 1, is: aws.ErrInvalidCredentials, err: awsControllerIRSA + awsGuard + "Expiration is missing"},
	{hop: awsControllerIRSAHop, fault: faultEmpty, attempts: 1, is: aws.ErrInvalidCredentials, err: awsControllerIRSA + awsGuardEmpty},
	{hop: awsControllerIRSAHop, fault: faultClockSkew, attempts: 1, is: aws.ErrInvalidCredentials, err: awsControllerIRSA + awsGuardExpired},

	// The ServiceAccount's web identity: upstream's AssumeRoleWithWebIdentity
	// on the SDK's STS client, 3 attempts.
	{hop: awsWebIdentityHop, fault: faultThrottle, attempts: 3, err: awsWebIdentity + awsRetried +
		"400, RequestID: <id>, api error Throttling: Rate exceeded"},
	{hop: awsWebIdentityHop, fault: fault500, attempts: 3, err: awsWebIdentity + awsRetried +
		"500, RequestID: <id>, api error InternalFailure: The request processing has failed because of an unknown error, exception or failure."},
	{hop: awsWebIdentityHop, fault: fault503, attempts: 3, err: awsWebIdentity + awsRetried +
		"503, RequestID: <id>, api error ServiceUnavailable: The request has failed due to a temporary failure of the server."},
	{hop: awsWebIdentityHop, fault: faultReset, attempts: 3, is: syscall.ECONNRESET, err: awsWebIdentity + awsRetried +
		`0, RequestID: , request send failed, Post "http://<addr>/": ` + reset},
	{hop: awsWebIdentityHop, fault: faultHang, attempts: 1, is: context.DeadlineExceeded, err: awsSATarget + gaveUpWaiting,
		errNoCache: awsWebIdentity + "https response error StatusCode: 0, RequestID: , canceled, context deadline exceeded"},
	{hop: awsWebIdentityHop, fault: faultMalformed, attempts: 1, err: awsWebIdentity +
		"https response error StatusCode: 200, RequestID: <id>, deserialization failed, failed to decode response body, XML syntax error on line 2: unexpected EOF"},
	{hop: awsWebIdentityHop, fault: faultExpired, attempts: 1, is: aws.ErrInvalidCredentials, err: awsWebIdentity + awsGuardExpired},
	{hop: awsWebIdentityHop, fault: faultNoExpiry, attempts: 1, is: aws.ErrInvalidCredentials, err: awsWebIdentity + awsGuard + "Expiration is missing"},
	{hop: awsWebIdentityHop, fault: faultEmpty, attempts: 1, is: aws.ErrInvalidCredentials, err: awsWebIdentity + awsGuardEmpty},
	{hop: awsWebIdentityHop, fault: faultClockSkew, attempts: 1, is: aws.ErrInvalidCredentials, err: awsWebIdentity + awsGuardExpired},

	// AssumeRole, our call, on the SDK's STS client: 3 attempts.
	{hop: awsAssumeRoleHop, fault: faultThrottle, attempts: 3, err: awsAssumeRole + ": operation error STS: AssumeRole, " + awsRetried +
		"400, RequestID: <id>, api error Throttling: Rate exceeded"},
	{hop: awsAssumeRoleHop, fault: fault500, attempts: 3, err: awsAssumeRole + ": operation error STS: AssumeRole, " + awsRetried +
		"500, RequestID: <id>, api error InternalFailure: The request processing has failed because of an unknown error, exception or failure."},
	{hop: awsAssumeRoleHop, fault: fault503, attempts: 3, err: awsAssumeRole + ": operation error STS: AssumeRole, " + awsRetried +
		"503, RequestID: <id>, api error ServiceUnavailable: The request has failed due to a temporary failure of the server."},
	{hop: awsAssumeRoleHop, fault: faultReset, attempts: 3, is: syscall.ECONNRESET, err: awsAssumeRole + ": operation error STS: AssumeRole, " +
		awsRetried + `0, RequestID: , request send failed, Post "http://<addr>/": ` + reset},
	{hop: awsAssumeRoleHop, fault: faultHang, attempts: 1, is: context.DeadlineExceeded, err: awsSATarget + gaveUpWaiting,
		errNoCache: awsAssumeRole + ": operation error STS: AssumeRole, https response error StatusCode: 0, RequestID: , canceled, context deadline exceeded"},
	{hop: awsAssumeRoleHop, fault: faultMalformed, attempts: 1, err: awsAssumeRole + ": operation error STS: AssumeRole, " +
		"https response error StatusCode: 200, RequestID: <id>, deserialization failed, failed to decode response body, XML syntax error on line 2: unexpected EOF"},
	{hop: awsAssumeRoleHop, fault: faultExpired, attempts: 1, is: aws.ErrInvalidCredentials,
		err: awsAssumeRole + ": operation error STS: AssumeRole, " + awsGuardExpired},
	{hop: awsAssumeRoleHop, fault: faultNoExpiry, attempts: 1, is: aws.ErrInvalidCredentials,
		err: awsAssumeRole + ": operation error STS: AssumeRole, " + awsGuard + "Expiration is missing"},
	{hop: awsAssumeRoleHop, fault: faultEmpty, attempts: 1, is: aws.ErrInvalidCredentials,
		err: awsAssumeRole + ": operation error STS: AssumeRole, " + awsGuardEmpty},
	{hop: awsAssumeRoleHop, fault: faultClockSkew, attempts: 1, is: aws.ErrInvalidCredentials,
		err: awsAssumeRole + ": operation error STS: AssumeRole, " + awsGuardExpired},

	// The GKE metadata server: the metadata client tries 6 times (5
	// retries); oauth2 refuses a reply without expires_in or token.
	{hop: gcpMetadataHop, fault: faultThrottle, attempts: 6, err: gcpControllerSource + "compute: Received 429 `Too Many Requests\\n`"},
	{hop: gcpMetadataHop, fault: fault500, attempts: 6, err: gcpControllerSource + "compute: Received 500 `Internal Server Error\\n`"},
	{hop: gcpMetadataHop, fault: fault503, attempts: 6, err: gcpControllerSource + "compute: Received 503 `Service Unavailable\\n`"},
	{hop: gcpMetadataHop, fault: faultReset, attempts: 6, is: syscall.ECONNRESET, err: gcpControllerSource +
		`Get "http://<addr>/computeMetadata/v1/instance/service-accounts/default/token?scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform%2Chttps%3A%2F%2Fwww.googleapis.com%2Fauth%2Fuserinfo.email": ` + reset},
	{hop: gcpMetadataHop, fault: faultHang, attempts: 1, is: context.DeadlineExceeded, err: gcpControllerTarget + gaveUpWaiting,
		errNoCache: gcpControllerSource + "gave up on the controller's token from the GKE metadata server after <dur>: context deadline exceeded"},
	{hop: gcpMetadataHop, fault: faultMalformed, attempts: 1, err: gcpControllerSource + "oauth2/google: invalid token JSON from metadata: unexpected EOF"},
	{hop: gcpMetadataHop, fault: faultExpired, attempts: 1, is: gcp.ErrInvalidToken, err: gcpControllerSource + gcpInvalid +
		"Expiry <time> is not more than 1m0s after the current time <time>"},
	{hop: gcpMetadataHop, fault: faultNoExpiry, attempts: 1, err: gcpControllerSource + "oauth2/google: incomplete token received from metadata"},
	{hop: gcpMetadataHop, fault: faultEmpty, attempts: 1, err: gcpControllerSource + "oauth2/google: incomplete token received from metadata"},
	{hop: gcpMetadataHop, fault: faultClockSkew, attempts: 1, is: gcp.ErrInvalidToken, err: gcpControllerSource + gcpInvalid +
		"Expiry <time> is not more than 1m0s after the current time <time>"},

	// Google STS: our retrying transport under externalaccount, 4 attempts.
	// oauth2 puts the whole error body in its error.
	{hop: gcpGoogleSTSHop, fault: faultThrottle, attempts: 4, err: gcpExchange + gcpSTSStatus + `429: {"error":{"code":429,"details":[{"@type":` +
		`"type.googleapis.com/google.rpc.ErrorInfo","domain":"googleapis.com","reason":"RATE_LIMIT_EXCEEDED"}],"message":"Quota exceeded for ` +
		`quota metric 'Token exchange requests' and limit 'Token exchange requests per minute' of service 'sts.googleapis.com'.",` +
		`"status":"RESOURCE_EXHAUSTED"}}\n`},
	{hop: gcpGoogleSTSHop, fault: fault500, attempts: 4, err: gcpExchange + gcpSTSStatus +
		`500: {"error":{"code":500,"message":"The service encountered an error.","status":"INTERNAL"}}\n`},
	{hop: gcpGoogleSTSHop, fault: fault503, attempts: 4, err: gcpExchange + gcpSTSStatus +
		`503: {"error":{"code":503,"message":"The service encountered an error.","status":"UNAVAILABLE"}}\n`},
	{hop: gcpGoogleSTSHop, fault: faultReset, attempts: 4, err: gcpExchange +
		`oauth2/google: invalid response from Secure Token Server: Post "http://<addr>/v1/token": ` + reset},
	{hop: gcpGoogleSTSHop, fault: faultHang, attempts: 1, is: context.DeadlineExceeded, err: gcpSATarget + gaveUpWaiting,
		errNoCache: gcpExchange + "gave up on the Google STS token exchange after <dur>: context deadline exceeded"},
	{hop: gcpGoogleSTSHop, fault: faultMalformed, attempts: 1, err: gcpExchange +
		"oauth2/google: failed to unmarshal response body from Secure Token Server: unexpected end of JSON input"},
	{hop: gcpGoogleSTSHop, fault: faultExpired, attempts: 1, err: gcpExchange +
		"oauth2/google/externalaccount: got invalid expiry from security token service"},
	{hop: gcpGoogleSTSHop, fault: faultNoExpiry, attempts: 1, err: gcpExchange +
		"oauth2/google/externalaccount: got invalid expiry from security token service"},
	{hop: gcpGoogleSTSHop, fault: faultEmpty, attempts: 1, is: gcp.ErrInvalidToken, err: gcpSASource + gcpInvalid + "AccessToken is empty"},
	{hop: gcpGoogleSTSHop, fault: faultClockSkew, attempts: 1, err: gcpExchange +
		"oauth2/google/externalaccount: got invalid expiry from security token service"},

	// IAM Credentials generateAccessToken: our call, 4 attempts.
	{hop: gcpIAMHop, fault: faultThrottle, attempts: 4, err: gcpIAM + ": HTTP 429: Quota exceeded for quota metric 'Generate credentials requests' " +
		"and limit 'Generate credentials requests per minute' of service 'iamcredentials.googleapis.com' (RATE_LIMIT_EXCEEDED)"},
	{hop: gcpIAMHop, fault: fault500, attempts: 4, err: gcpIAM + ": HTTP 500: The service encountered an error"},
	{hop: gcpIAMHop, fault: fault503, attempts: 4, err: gcpIAM + ": HTTP 503: The service encountered an error"},
	{hop: gcpIAMHop, fault: faultReset, attempts: 4, is: syscall.ECONNRESET, err: gcpIAM + `: Post "http://<addr>/v1/projects/-/serviceAccounts/` +
		targetGSA + `:generateAccessToken?alt=json&prettyPrint=false": ` + reset},
	{hop: gcpIAMHop, fault: faultHang, attempts: 1, is: context.DeadlineExceeded, err: gcpSATarget + gaveUpWaiting,
		errNoCache: gcpIAM + ": context deadline exceeded"},
	{hop: gcpIAMHop, fault: faultMalformed, attempts: 1, err: gcpIAM + ": unexpected end of JSON input"},
	{hop: gcpIAMHop, fault: faultExpired, attempts: 1, is: gcp.ErrInvalidToken, err: gcpIAMBad +
		"expireTime <time> is not more than 1m0s after the current time <time>"},
	{hop: gcpIAMHop, fault: faultNoExpiry, attempts: 1, is: gcp.ErrInvalidToken, err: gcpIAMBad + "expireTime is missing"},
	{hop: gcpIAMHop, fault: faultEmpty, attempts: 1, is: gcp.ErrInvalidToken, err: gcpIAMBad + "accessToken is empty"},
	{hop: gcpIAMHop, fault: faultClockSkew, attempts: 1, is: gcp.ErrInvalidToken, err: gcpIAMBad +
		"expireTime <time> is not more than 1m0s after the current time <time>"},
}

// errPlaceholders stand in errPattern for what varies between runs.
var errPlaceholders = strings.NewReplacer(
	"<dur>", `[0-9.]+(µs|ms|s)`,
	"<id>", `[0-9a-f-]{36}`,
	"<addr>", `127\.0\.0\.1:[0-9]+`,
	"<time>", `[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z`,
)

// errPattern matches the whole of an error message written with
// placeholders.
func errPattern(msg string) string {
	return "^" + errPlaceholders.Replace(regexp.QuoteMeta(msg)) + "$"
}

// faultMode is how GetAccessToken is called: with a TokenCache or without.
type faultMode struct {
	name   string
	cached bool
}

var (
	withCache    = faultMode{"cached", true}
	withoutCache = faultMode{"uncached", false}
)

// faultCase is a row run in one mode.
type faultCase struct {
	faultRow
	mode faultMode
}

func (c faultCase) name() string { return c.hop.name + "/" + c.fault.String() + "/" + c.mode.name }

// faultCases are the cases of the matrix's rows. A fault that the SDK
// retries runs with a cache only: without one it takes the same path, to
// the same error after the same attempts, and the seconds of backoff add
// up on the hops whose rows run one at a time.
func faultCases() []faultCase {
	var cases []faultCase
	for _, r := range faultMatrix {
		cases = append(cases, faultCase{r, withCache})
		if r.attempts == 1 {
			cases = append(cases, faultCase{r, withoutCache})
		}
	}
	return cases
}

// TestFaultMatrix runs every row in three lanes at once. The rows of the
// hops that set process environment (Pod Identity and IRSA; the metadata
// server) run one at a time in an AWS and a GCP lane, as each sets its
// cloud's variables. The other rows need none of these variables (their
// worlds pass endpoints and HTTP clients explicitly) and run all at once,
// as most of their time is the SDKs' backoff; their hangs last, so that
// their deadlines are not spent waiting for a CPU while the others build
// their chains. Not parallel: other tests must not set the environment
// meanwhile, nor load the machine so that the hangs' deadlines pass before
// their chains reach the hop.
func TestFaultMatrix(t *testing.T) {
	sweep := newSecretSweep(t)
	lanes := map[string][]faultCase{}
	for _, c := range faultCases() {
		lane := "no env"
		if c.hop.env {
			lane, _, _ = strings.Cut(c.hop.name, " ")
			lane += " env"
		}
		lanes[lane] = append(lanes[lane], c)
	}
	run := func(t *testing.T, c faultCase) { c.run(t, sweep) }
	runAtOnce(t, []string{"aws env", "gcp env", "no env"}, func(lane string) string { return lane }, func(t *testing.T, lane string) {
		cases := lanes[lane]
		if lane == "no env" {
			hangs := slices.DeleteFunc(slices.Clone(cases), func(c faultCase) bool { return c.fault != faultHang })
			others := slices.DeleteFunc(cases, func(c faultCase) bool { return c.fault == faultHang })
			runAtOnce(t, others, faultCase.name, run)
			runAtOnce(t, hangs, faultCase.name, run)
			return
		}
		for _, c := range cases {
			t.Run(c.name(), func(t *testing.T) { run(t, c) })
		}
	})
}

// runAtOnce runs f for every case as a subtest, all at once. The cases
// spend their time waiting on timers (fetch timeouts, refresh backoff),
// which t.Parallel would run only as many at a time as there are CPUs.
// Subtests that are not parallel may be run from several goroutines.
func runAtOnce[C any](t *testing.T, cases []C, name func(C) string, f func(t *testing.T, c C)) {
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Go(func() { t.Run(name(c), func(t *testing.T) { f(t, c) }) })
	}
	wg.Wait()
}

// TestFaultMatrixCoversEveryFaultAndHop keeps the matrix whole: a row for
// every fault on every hop, one at most.
func TestFaultMatrixCoversEveryFaultAndHop(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	all := append(append([]fakes.Fault{}, retriedFaults...), faultHang, faultMalformed)
	all = append(all, badSuccesses...)
	seen := map[string]int{}
	for _, r := range faultMatrix {
		seen[r.hop.name+" "+r.fault.String()]++
	}
	for _, hop := range faultHops {
		for _, f := range all {
			key := hop.name + " " + f.String()
			if hop == awsControllerIRSAHop && slices.Contains(retriedFaults, f) {
				g.Expect(seen).NotTo(HaveKey(key), "the IRSA hop's retries are the web identity hop's")
				continue
			}
			g.Expect(seen[key]).To(Equal(1), key)
		}
	}
}

// faultResult is what one case saw, recorded as it happened so that the
// requests of one call are never counted with another's.
type faultResult struct {
	// The call with the fault in force.
	err      error
	elapsed  time.Duration
	hits     int // requests the fault met
	requests int // requests that reached the fakes

	// The first call once the fault is removed, and the next one (cached
	// only).
	recovered, again               fluxauth.Token
	recoverErr, againErr           error
	recoverElapsed                 time.Duration
	recoverRequests, againRequests int
}

// run runs the case in a world of its own.
func (c faultCase) run(t *testing.T, sweep *secretSweep) {
	w := c.hop.start(t)
	sweep.add(w.secrets...)
	c.check(t, w, c.exec(t, w), sweep)
}

// exec injects the case's fault and calls GetAccessToken, then removes the
// fault and calls it again, twice with a cache, and records what it saw
// as it happened.
func (c faultCase) exec(t *testing.T, w *faultWorld) faultResult {
	opts := slices.Clone(w.opts)
	if c.mode.cached {
		tc, err := auth.NewTokenCache(10, auth.CacheFetchHedgeDelay(faultHedgeDelay))
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, auth.WithTokenCache(tc, cache.InvolvedObject{}))
	}
	get := func(timeout time.Duration) (fluxauth.Token, time.Duration, error) {
		// Timed from before the deadline is set, so that a pause between the
		// two cannot make the call look faster than its deadline.
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		token, err := auth.GetAccessToken(ctx, w.provider, opts...)
		return token, time.Since(start), err
	}

	var r faultResult
	fault := w.inject(c.fault)
	timeout := faultCallTimeout
	if c.fault == faultHang {
		timeout = faultHangDeadline
	}
	_, r.elapsed, r.err = get(timeout)
	r.hits, r.requests = fault.Hits(), w.requests()

	fault.Remove()
	n := w.requests()
	r.recovered, r.recoverElapsed, r.recoverErr = get(faultCallTimeout)
	r.recoverRequests = w.requests() - n
	if c.mode.cached {
		n = w.requests()
		r.again, _, r.againErr = get(faultCallTimeout)
		r.againRequests = w.requests() - n
	}
	return r
}

// check checks what the case saw against its row.
func (c faultCase) check(t *testing.T, w *faultWorld, r faultResult, sweep *secretSweep) {
	g := NewWithT(t)

	// (a) what the caller is told.
	want := c.err
	if !c.mode.cached && c.errNoCache != "" {
		want = c.errNoCache
	}
	g.Expect(r.err).To(MatchError(MatchRegexp(errPattern(want))))
	sweep.addErr(r.err)
	if c.is != nil {
		g.Expect(r.err).To(MatchError(c.is))
	}

	// (b) how often the fault was met: once, or once per attempt of the
	// retries; and no other request than the source's before it.
	g.Expect(r.hits).To(Equal(c.attempts), "requests the fault met")
	before := 0
	if c.hop.impersonation {
		before = 1
	}
	g.Expect(r.requests).To(Equal(c.attempts+before), "requests that reached the fakes")

	// (c) bounded by the caller's deadline, or by the retries.
	if c.fault == faultHang {
		g.Expect(r.elapsed).To(BeNumerically(">=", faultHangDeadline))
		g.Expect(r.elapsed).To(BeNumerically("<", faultHangDeadline+faultDeadlineSlack))
	} else {
		g.Expect(r.err).NotTo(MatchError(context.DeadlineExceeded))
		g.Expect(r.elapsed).To(BeNumerically("<", faultRetryBound))
	}

	// (d, e) once the fault is gone, the next call reaches the cloud (so
	// nothing bad was cached) and gets a good token in one round trip: the
	// hop under test, after the source unless the cache holds it.
	g.Expect(r.recoverErr).NotTo(HaveOccurred())
	wantRequests := 2
	if c.mode.cached && c.hop.impersonation {
		wantRequests = 1 // the source token was good, and cached
	}
	g.Expect(r.recoverRequests).To(Equal(wantRequests), "requests of the call after recovery")
	g.Expect(r.recoverElapsed).To(BeNumerically("<", faultRecoveryBound), "not held up by a hung fetch")
	if r.recovered != nil {
		sweep.add(w.check(t, r.recovered)...)
	}
	if c.mode.cached {
		// The good token is what is cached now.
		g.Expect(r.againErr).NotTo(HaveOccurred())
		g.Expect(r.again).To(BeIdenticalTo(r.recovered))
		g.Expect(r.againRequests).To(BeZero())
	}
}
