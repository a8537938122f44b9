package gcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"
	"golang.org/x/oauth2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

const (
	sourceGSA = "source-sa@source-project.iam.gserviceaccount.com"
	targetGSA = "target-sa@target-project.iam.gserviceaccount.com"
)

// iamAt is the fakes' seam with the IAM Credentials endpoint moved to url.
type iamAt struct {
	*fakes.GCPImplementation
	url string
}

func (i iamAt) IAMCredentialsEndpoint() string { return i.url + "/" }

// frontedIAM is a fake IAM Credentials behind a handler that may answer
// requests itself: reply(n, w, r) for request n (from 1) answers and
// returns true, or returns false to let the fake answer.
type frontedIAM struct {
	iam      *fakes.GCPIAMCredentials
	provider gcp.Provider
	source   *gcp.Token
	requests atomic.Int64
}

type replyFunc func(n int64, w http.ResponseWriter, r *http.Request) bool

func startFrontedIAM(t *testing.T, reply replyFunc) *frontedIAM {
	t.Helper()
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	iam.AllowImpersonation(sourceGSA, targetGSA)
	f := &frontedIAM{iam: iam}
	front := httptest.NewServer(f.handler(iam.URL, reply))
	t.Cleanup(front.Close)
	f.provider = gcp.Provider{Implementation: iamAt{GCPImplementation: fakes.NewGCPImplementation(nil, iam), url: front.URL}}
	access, expiry := iam.IssueToken(sourceGSA)
	f.source = &gcp.Token{Token: oauth2.Token{AccessToken: access, TokenType: "Bearer", Expiry: expiry}}
	return f
}

// handler counts requests and lets reply answer them, or proxies to backend.
func (f *frontedIAM) handler(backend string, reply replyFunc) http.Handler {
	target, _ := url.Parse(backend)
	proxy := httputil.NewSingleHostReverseProxy(target)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !reply(f.requests.Add(1), w, r) {
			proxy.ServeHTTP(w, r)
		}
	})
}

func (f *frontedIAM) impersonate(ctx context.Context, target string) (fluxauth.Token, error) {
	return f.provider.Impersonate(ctx, f.source, auth.Impersonation{
		Annotation:     gcp.ImpersonateAnnotation,
		ServiceAccount: client.ObjectKey{Namespace: "team-a", Name: "app"},
		Target:         target,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func TestImpersonateRefusesBadSuccesses(t *testing.T) {
	t.Parallel()
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	const prefix = "iamcredentials generateAccessToken for '" + targetGSA + "' returned an invalid GCP access token: "
	for _, tt := range []struct {
		name    string
		reply   map[string]string
		wantErr string // a regular expression when it starts with ^
	}{
		{
			name:    "empty access token",
			reply:   map[string]string{"accessToken": "", "expireTime": future},
			wantErr: prefix + "accessToken is empty",
		},
		{
			name:    "no expireTime",
			reply:   map[string]string{"accessToken": "SECRET"},
			wantErr: prefix + "expireTime is missing",
		},
		{
			name:    "empty reply",
			reply:   map[string]string{},
			wantErr: prefix + "accessToken is empty; expireTime is missing",
		},
		{
			name:    "expireTime not a time",
			reply:   map[string]string{"accessToken": "SECRET", "expireTime": "tomorrow\x1b[2J"},
			wantErr: prefix + `expireTime 'tomorrow\x1b[2J' is not an RFC 3339 time`,
		},
		{
			name:    "zero expireTime",
			reply:   map[string]string{"accessToken": "SECRET", "expireTime": "0001-01-01T00:00:00Z"},
			wantErr: `^` + prefix + `expireTime 0001-01-01T00:00:00Z is not more than 1m0s after the current time \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`,
		},
		{
			name:    "expired",
			reply:   map[string]string{"accessToken": "SECRET", "expireTime": "2001-01-01T00:00:00Z"},
			wantErr: `^` + prefix + `expireTime 2001-01-01T00:00:00Z is not more than 1m0s after the current time \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			f := startFrontedIAM(t, func(_ int64, w http.ResponseWriter, _ *http.Request) bool {
				writeJSON(w, http.StatusOK, tt.reply)
				return true
			})

			token, err := f.impersonate(context.Background(), targetGSA)

			g.Expect(token).To(BeNil())
			if strings.HasPrefix(tt.wantErr, "^") {
				g.Expect(err).To(MatchError(MatchRegexp(tt.wantErr)))
			} else {
				g.Expect(err).To(MatchError(tt.wantErr))
			}
			g.Expect(errors.Is(err, gcp.ErrInvalidToken)).To(BeTrue())
			g.Expect(err.Error()).NotTo(ContainSubstring("SECRET"))
			g.Expect(f.requests.Load()).To(Equal(int64(1)), "a bad success is not retried")
		})
	}
}

// permissionDenied is how the library shows the 403 of a missing grant: on
// one line, with Google's reason.
const permissionDenied = "HTTP 403: Permission 'iam.serviceAccounts.getAccessToken' denied on resource " +
	"(or it may not exist) (IAM_PERMISSION_DENIED)"

func TestImpersonateErrorsNameTheTarget(t *testing.T) {
	t.Parallel()
	const stranger = "stranger@other-project.iam.gserviceaccount.com"
	for _, tt := range []struct {
		name    string
		target  string
		wantErr string
	}{
		{
			name:   "not granted",
			target: stranger,
			wantErr: "iamcredentials generateAccessToken for '" + stranger + "': " + permissionDenied +
				". grant the source identity roles/iam.serviceAccountTokenCreator on '" + stranger + "'",
		},
		{
			name:   "hostile target is escaped",
			target: "x\n@p.iam.gserviceaccount.com",
			wantErr: `iamcredentials generateAccessToken for 'x\n@p.iam.gserviceaccount.com': ` + permissionDenied +
				`. grant the source identity roles/iam.serviceAccountTokenCreator on 'x\n@p.iam.gserviceaccount.com'`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			f := startFrontedIAM(t, func(int64, http.ResponseWriter, *http.Request) bool { return false })

			token, err := f.impersonate(context.Background(), tt.target)

			g.Expect(token).To(BeNil())
			g.Expect(err).To(MatchError(tt.wantErr))
		})
	}
}

func TestImpersonateAcceptsAGoodReply(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	f := startFrontedIAM(t, func(int64, http.ResponseWriter, *http.Request) bool { return false })

	token, err := f.impersonate(context.Background(), targetGSA)

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(gcp.Provider{}.ValidateToken(token, time.Now())).To(Succeed())
	who, ok := f.iam.WhoAmI(token.(*gcp.Token).AccessToken)
	g.Expect(ok).To(BeTrue())
	g.Expect(who).To(Equal(targetGSA))
}
