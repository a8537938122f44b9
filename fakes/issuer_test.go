package fakes_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

// kubeTokenPayload decodes the claims of token without verifying it.
func kubeTokenPayload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("failed to decode payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatalf("failed to unmarshal payload: %v", err)
	}
	return claims
}

func TestNewIssuer_InvalidURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "kubernetes.default.svc", "http://kubernetes.default.svc", "https://"} {
		g := NewWithT(t)
		_, err := fakes.NewIssuer(u)
		g.Expect(err).To(MatchError("invalid issuer URL '" + u + "': must be an absolute https URL"))
	}
}

func TestIssuer_Sign(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	issuer := awsNewIssuer(t, awsTestIssuerURL)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	issuer.SetClock(func() time.Time { return now })

	token, err := issuer.Sign("ns", "sa", []string{"one"}, 10*time.Minute)
	g.Expect(err).NotTo(HaveOccurred())

	claims := kubeTokenPayload(t, token)
	g.Expect(claims).To(HaveKeyWithValue("iss", awsTestIssuerURL))
	g.Expect(claims).To(HaveKeyWithValue("sub", "system:serviceaccount:ns:sa"))
	// A single audience is still a list, as the kube-apiserver writes it.
	g.Expect(claims).To(HaveKeyWithValue("aud", []any{"one"}))
	g.Expect(claims).To(HaveKeyWithValue("iat", float64(now.Unix())))
	g.Expect(claims).To(HaveKeyWithValue("nbf", float64(now.Unix())))
	g.Expect(claims).To(HaveKeyWithValue("exp", float64(now.Add(10*time.Minute).Unix())))
	g.Expect(claims).To(HaveKey("jti"))
	g.Expect(claims).To(HaveKeyWithValue("kubernetes.io", HaveKeyWithValue("namespace", "ns")))
	sa := claims["kubernetes.io"].(map[string]any)["serviceaccount"].(map[string]any)
	g.Expect(sa).To(HaveKeyWithValue("name", "sa"))
	g.Expect(sa["uid"]).To(MatchRegexp(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`))

	for _, tt := range []struct {
		name      string
		namespace string
		sa        string
		aud       []string
		ttl       time.Duration
		wantErr   string
	}{
		{name: "no namespace", sa: "sa", aud: []string{"a"}, ttl: time.Hour, wantErr: "failed to sign token: namespace and name are required"},
		{name: "no audience", namespace: "ns", sa: "sa", ttl: time.Hour, wantErr: "failed to sign token: at least one audience is required"},
		{name: "no ttl", namespace: "ns", sa: "sa", aud: []string{"a"}, wantErr: "failed to sign token: ttl must be positive, got 0s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := issuer.Sign(tt.namespace, tt.sa, tt.aud, tt.ttl)
			g.Expect(err).To(MatchError(tt.wantErr))
		})
	}
}

func TestIssuer_Verify(t *testing.T) {
	t.Parallel()
	issuer := awsNewIssuer(t, awsTestIssuerURL)
	impostor := awsNewIssuer(t, awsTestIssuerURL)
	other := awsNewIssuer(t, "https://other.example.com")
	start := time.Now().Truncate(time.Second)
	var now time.Time
	for _, i := range []*fakes.Issuer{issuer, impostor, other} {
		i.SetClock(func() time.Time { return now })
	}

	for _, tt := range []struct {
		name     string
		signer   *fakes.Issuer
		audience string
		at       time.Duration // verification time relative to signing
		wantErr  string
		wantIs   error
	}{
		{name: "valid", signer: issuer, audience: "b"},
		{name: "valid at exp", signer: issuer, audience: "a", at: time.Hour},
		{name: "expired just after exp", signer: issuer, audience: "a", at: time.Hour + time.Nanosecond, wantIs: jwt.ErrExpired},
		{name: "not valid just before nbf", signer: issuer, audience: "a", at: -time.Nanosecond, wantIs: jwt.ErrNotValidYet},
		{name: "wrong audience", signer: issuer, audience: "c",
			wantErr: `failed to verify token: token audience does not match: 'c' is not among ["a" "b"]`},
		{name: "other key", signer: impostor, audience: "a",
			wantErr: "failed to verify token: token signature does not verify with the issuer key"},
		{name: "other issuer", signer: other, audience: "a",
			wantErr: "failed to verify token: token signature does not verify with the issuer key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			now = start
			token, err := tt.signer.Sign("ns", "sa", []string{"a", "b"}, time.Hour)
			g.Expect(err).NotTo(HaveOccurred())
			now = start.Add(tt.at)

			sub, err := issuer.Verify(token, tt.audience)
			switch {
			case tt.wantErr != "":
				g.Expect(err).To(MatchError(tt.wantErr))
			case tt.wantIs != nil:
				g.Expect(errors.Is(err, tt.wantIs)).To(BeTrue(), "%v", err)
			default:
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(sub).To(Equal("system:serviceaccount:ns:sa"))
				return
			}
			g.Expect(err.Error()).NotTo(ContainSubstring(token))
		})
	}

	t.Run("malformed", func(t *testing.T) {
		g := NewWithT(t)
		_, err := issuer.Verify("a.b.c", "a")
		g.Expect(err).To(MatchError("failed to verify token: token is not a signed JWT"))
	})
}
