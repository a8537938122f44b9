package fakes

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// SigV4 verification for the fake STS, and for the fakes of other AWS
// services, which accept the credentials the fake STS issued.
//
// The signature, from the Authorization header or from the query of a
// presigned URL, is recomputed with the SDK's own signer over a request
// rebuilt from exactly the headers the client says it signed, so the fake
// accepts what real STS accepts from SDK clients and refuses a request
// signed with any other secret, for another service, or altered in transit.
//
// Not checked: the age of X-Amz-Date, nor X-Amz-Expires of presigned URLs.
// Real STS refuses requests signed more than 15 minutes away from its clock,
// but tests drive the fake with injected clocks (AWSSTSOptions.Now) while the
// SDK signs with the wall clock, and the two legitimately differ.

const (
	awsSigV4Algorithm  = "AWS4-HMAC-SHA256"
	awsSigV4Terminator = "aws4_request"
	awsSigV4TimeFormat = "20060102T150405Z"
	awsSTSService      = "sts"
)

var awsRegionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)

// awsSigV4Authorization is a parsed Authorization header.
type awsSigV4Authorization struct {
	accessKeyID   string
	date          string
	region        string
	service       string
	terminator    string
	signedHeaders []string
	signature     string
	// presigned is set when the signature came in the query of a presigned
	// URL rather than in the Authorization header.
	presigned bool
}

var (
	awsErrMissingAuth = &awsError{http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token"}
	awsErrInvalidKey  = &awsError{http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid."}
	awsErrExpiredKey  = &awsError{http.StatusForbidden, "ExpiredToken", "The security token included in the request is expired"}
	awsErrSignature   = &awsError{http.StatusForbidden, "SignatureDoesNotMatch",
		"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
)

func awsIncompleteSignature(msg string) *awsError {
	return &awsError{http.StatusBadRequest, "IncompleteSignature", msg}
}

// authenticate verifies the SigV4 signature of an STS request; see
// authenticateFor.
func (s *AWSSTS) authenticate(r *http.Request, body []byte) (*awsIssued, string, *awsError) {
	return s.authenticateFor(r, body, awsSTSService)
}

// authenticateFor verifies the SigV4 signature of r, a request to service
// (its signing name: "sts", "ecr", "eks"…) whose body was already read into
// body, against the credentials the fake issued. The signature is taken
// from the Authorization header or, for a presigned URL, from the query. It
// returns the credentials' record when the access key is known (even if the
// request is then refused, so calls can name the caller) and the
// credential-scope region once parsed.
func (s *AWSSTS) authenticateFor(r *http.Request, body []byte, service string) (*awsIssued, string, *awsError) {
	var (
		auth         awsSigV4Authorization
		amzDate      string
		sessionToken string
		serr         *awsError
	)
	query := r.URL.Query()
	switch header := r.Header.Get("Authorization"); {
	case header != "":
		auth, serr = awsParseSigV4Authorization(header)
		amzDate = r.Header.Get("X-Amz-Date")
		sessionToken = r.Header.Get("X-Amz-Security-Token")
	case query.Has("X-Amz-Algorithm") || query.Has("X-Amz-Signature"):
		auth, serr = awsParseSigV4Query(query)
		amzDate = query.Get("X-Amz-Date")
		sessionToken = query.Get("X-Amz-Security-Token")
	default:
		return nil, "", awsErrMissingAuth
	}
	if serr != nil {
		return nil, "", serr
	}

	if amzDate == "" {
		return nil, auth.region, awsIncompleteSignature("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	signingTime, err := time.Parse(awsSigV4TimeFormat, amzDate)
	if err != nil {
		return nil, auth.region, awsIncompleteSignature("Date must be in ISO-8601 'basic format'. Got '" + amzDate + "'.")
	}
	if !slices.Contains(auth.signedHeaders, "host") {
		return nil, auth.region, awsIncompleteSignature("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	switch {
	case auth.terminator != awsSigV4Terminator:
		return nil, auth.region, &awsError{http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped with a valid terminator: 'aws4_request', not '" + auth.terminator + "'."}
	case auth.service != service:
		return nil, auth.region, &awsError{http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to correct service: '" + service + "'."}
	case !awsRegionPattern.MatchString(auth.region):
		return nil, auth.region, &awsError{http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to a valid region."}
	case auth.date != amzDate[:8]:
		return nil, auth.region, &awsError{http.StatusForbidden, "SignatureDoesNotMatch",
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '" + auth.date + "' != '" + amzDate[:8] + "', from '" + amzDate + "'."}
	}

	s.mu.RLock()
	issued, ok := s.creds[auth.accessKeyID]
	s.mu.RUnlock()
	if !ok {
		return nil, auth.region, awsErrInvalidKey
	}
	if subtle.ConstantTimeCompare([]byte(sessionToken), []byte(issued.sessionToken)) != 1 {
		return &issued, auth.region, awsErrInvalidKey
	}
	if !s.now().Before(issued.expires) {
		return &issued, auth.region, awsErrExpiredKey
	}

	want, ok := s.expectedSignature(r, body, auth, issued, signingTime)
	if !ok || !hmac.Equal([]byte(want), []byte(auth.signature)) {
		return &issued, auth.region, awsErrSignature
	}
	return &issued, auth.region, nil
}

// expectedSignature signs a rebuilt copy of r with the issued secret and
// returns the signature. ok is false when the request cannot be rebuilt,
// e.g. the client claims to have signed a header it did not send.
func (s *AWSSTS) expectedSignature(r *http.Request, body []byte, auth awsSigV4Authorization,
	issued awsIssued, signingTime time.Time) (string, bool) {
	rawQuery := r.URL.RawQuery
	if auth.presigned {
		// The signature covers the query without itself; the signer adds
		// back the other X-Amz-* parameters with the same values.
		q := r.URL.Query()
		q.Del("X-Amz-Signature")
		rawQuery = q.Encode()
	}
	rebuilt := &http.Request{
		Method: r.Method,
		URL: &url.URL{
			Scheme:   "http",
			Host:     r.Host,
			Path:     r.URL.Path,
			RawPath:  r.URL.RawPath,
			RawQuery: rawQuery,
		},
		Host:   r.Host,
		Header: http.Header{},
	}
	creds := aws.Credentials{AccessKeyID: auth.accessKeyID, SecretAccessKey: issued.secretAccessKey}
	if auth.presigned {
		// A presigned URL carries its session token in the query.
		creds.SessionToken = issued.sessionToken
	}
	for _, h := range auth.signedHeaders {
		switch h {
		case "host":
			// The signer takes it from rebuilt.Host.
		case "content-length":
			// The signer signs ContentLength, not the header map.
			rebuilt.ContentLength = r.ContentLength
		case "x-amz-security-token":
			// The signer writes the header from the credentials.
			creds.SessionToken = issued.sessionToken
		default:
			values := r.Header.Values(h)
			if len(values) == 0 {
				return "", false
			}
			rebuilt.Header[http.CanonicalHeaderKey(h)] = values
		}
	}

	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if auth.presigned {
		signed, _, err := s.signer.PresignHTTP(r.Context(), creds, rebuilt, payloadHash,
			auth.service, auth.region, signingTime)
		if err != nil {
			return "", false
		}
		u, err := url.Parse(signed)
		if err != nil {
			return "", false
		}
		got, serr := awsParseSigV4Query(u.Query())
		if serr != nil || !slices.Equal(got.signedHeaders, auth.signedHeaders) {
			return "", false
		}
		return got.signature, true
	}
	err := s.signer.SignHTTP(r.Context(), creds, rebuilt, payloadHash, auth.service, auth.region, signingTime)
	if err != nil {
		return "", false
	}
	got, serr := awsParseSigV4Authorization(rebuilt.Header.Get("Authorization"))
	if serr != nil || !slices.Equal(got.signedHeaders, auth.signedHeaders) {
		return "", false
	}
	return got.signature, true
}

// awsParseSigV4Query parses the signature of a presigned URL:
// X-Amz-Algorithm, X-Amz-Credential, X-Amz-SignedHeaders and
// X-Amz-Signature, with the same rules as the Authorization header.
func awsParseSigV4Query(q url.Values) (awsSigV4Authorization, *awsError) {
	var auth awsSigV4Authorization
	if alg := q.Get("X-Amz-Algorithm"); alg != awsSigV4Algorithm {
		return auth, awsIncompleteSignature("X-Amz-Algorithm only supports '" + awsSigV4Algorithm + "'.")
	}
	var missing []string
	for _, p := range []string{"X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders"} {
		if q.Get(p) == "" {
			missing = append(missing, "AWS query-string parameters must include '"+p+"'.")
		}
	}
	if len(missing) > 0 {
		return auth, awsIncompleteSignature(strings.Join(missing, " "))
	}
	scope := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(scope) != 5 || scope[0] == "" {
		return auth, awsIncompleteSignature("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term")
	}
	auth.accessKeyID, auth.date, auth.region, auth.service, auth.terminator = scope[0], scope[1], scope[2], scope[3], scope[4]
	auth.signedHeaders = strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	auth.signature = q.Get("X-Amz-Signature")
	auth.presigned = true
	return auth, nil
}

// awsParseSigV4Authorization parses
// "AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, SignedHeaders=a;b, Signature=hex".
func awsParseSigV4Authorization(header string) (awsSigV4Authorization, *awsError) {
	var auth awsSigV4Authorization
	rest, ok := strings.CutPrefix(header, awsSigV4Algorithm+" ")
	if !ok {
		return auth, awsIncompleteSignature("Unsupported AWS 'algorithm': only '" + awsSigV4Algorithm + "' is supported.")
	}
	var credential, signedHeaders string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signedHeaders = v
		case "Signature":
			auth.signature = v
		}
	}
	var missing []string
	for _, p := range []struct{ name, value string }{
		{"Credential", credential}, {"Signature", auth.signature}, {"SignedHeaders", signedHeaders},
	} {
		if p.value == "" {
			missing = append(missing, "Authorization header requires '"+p.name+"' parameter.")
		}
	}
	if len(missing) > 0 {
		return auth, awsIncompleteSignature(strings.Join(missing, " "))
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[0] == "" {
		return auth, awsIncompleteSignature("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term")
	}
	auth.accessKeyID, auth.date, auth.region, auth.service, auth.terminator = scope[0], scope[1], scope[2], scope[3], scope[4]
	auth.signedHeaders = strings.Split(signedHeaders, ";")
	return auth, nil
}
