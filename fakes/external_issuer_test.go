package fakes_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

const extTestIssuerURL = "https://127.0.0.1:6443/"

// extKey is a signing key of an issuer the fakes do not run, standing in for
// a kube-apiserver's service account signing key.
type extKey struct {
	signer jose.Signer
	public jose.JSONWebKey
}

func newExtKey(t *testing.T, alg jose.SignatureAlgorithm, kid string) extKey {
	t.Helper()
	var priv any
	switch alg {
	case jose.RS256:
		priv = extRSAKey()
	case jose.ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv = k
	default:
		t.Fatalf("unsupported algorithm %s", alg)
	}
	jwk := jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(alg), Use: "sig"}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jwk}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return extKey{signer: signer, public: jwk.Public()}
}

// extRSAKey is one RSA key for the whole binary: generating one is slow
// under -race.
var extRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// sign issues a token shaped like the TokenRequest API's.
func (k extKey) sign(t *testing.T, iss, sub string, aud []string, exp time.Time) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.Signed(k.signer).Claims(map[string]any{
		"iss": iss, "sub": sub, "aud": aud,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func extJWKS(t *testing.T, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewExternalIssuer_Invalid(t *testing.T) {
	t.Parallel()
	rsaKey := newExtKey(t, jose.RS256, "rsa")
	noKID := rsaKey.public
	noKID.KeyID = ""
	enc := rsaKey.public
	enc.Use = "enc"
	symmetric := `{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}`
	tests := []struct {
		name    string
		url     string
		jwks    []byte
		wantErr string
	}{
		{"http issuer", "http://127.0.0.1:6443", extJWKS(t, rsaKey.public),
			"invalid issuer URL 'http://127.0.0.1:6443': must be an absolute https URL"},
		{"relative issuer", "/issuer", extJWKS(t, rsaKey.public),
			"invalid issuer URL '/issuer': must be an absolute https URL"},
		{"not JSON", extTestIssuerURL, []byte("<html>"), "invalid JWKS of issuer '" + extTestIssuerURL + "': invalid character"},
		{"no keys", extTestIssuerURL, []byte(`{"keys":[]}`), "invalid JWKS of issuer '" + extTestIssuerURL + "': no signing key"},
		{"encryption keys only", extTestIssuerURL, extJWKS(t, enc), "invalid JWKS of issuer '" + extTestIssuerURL + "': no signing key"},
		{"symmetric key", extTestIssuerURL, []byte(symmetric),
			"invalid JWKS of issuer '" + extTestIssuerURL + "': key 's' is not an RSA or ECDSA public key"},
		{"key without kid", extTestIssuerURL, extJWKS(t, noKID),
			"invalid JWKS of issuer '" + extTestIssuerURL + "': a key has no kid, which verifiers pick keys by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := fakes.NewExternalIssuer(tt.url, tt.jwks)
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(HavePrefix(tt.wantErr))
		})
	}
}

func TestExternalIssuer_Verify(t *testing.T) {
	t.Parallel()
	rsaKey := newExtKey(t, jose.RS256, "rsa")
	ecKey := newExtKey(t, jose.ES256, "ec")
	// Same kid as ecKey, another key: a forged token.
	forger := newExtKey(t, jose.ES256, "ec")
	stranger := newExtKey(t, jose.ES256, "stranger")
	private := jose.JSONWebKey{Key: extRSAKey(), KeyID: "rsa", Algorithm: "RS256", Use: "sig"}
	// The private half of a key given by mistake is dropped, not refused.
	issuer, err := fakes.NewExternalIssuer(extTestIssuerURL, extJWKS(t, private, ecKey.public))
	if err != nil {
		t.Fatal(err)
	}
	sub := fakes.ServiceAccountSubject("my-app", "my-app")
	aud := []string{"sts.amazonaws.com"}
	hour := time.Now().Add(time.Hour)
	tests := []struct {
		name    string
		token   string
		wantErr string
	}{
		{"RS256", rsaKey.sign(t, extTestIssuerURL, sub, aud, hour), ""},
		{"ES256", ecKey.sign(t, extTestIssuerURL, sub, aud, hour), ""},
		{"forged with the same kid", forger.sign(t, extTestIssuerURL, sub, aud, hour),
			"failed to verify token: token signature does not verify with the issuer key"},
		{"unknown kid", stranger.sign(t, extTestIssuerURL, sub, aud, hour),
			"failed to verify token: token signature does not verify with the issuer key"},
		{"other issuer", ecKey.sign(t, "https://127.0.0.1:1/", sub, aud, hour),
			"failed to verify token: token issuer does not match: got 'https://127.0.0.1:1/', want '" + extTestIssuerURL + "'"},
		{"other audience", ecKey.sign(t, extTestIssuerURL, sub, []string{"https://kubernetes.default.svc"}, hour),
			"failed to verify token: token audience does not match: 'sts.amazonaws.com' is not among [\"https://kubernetes.default.svc\"]"},
		{"expired", ecKey.sign(t, extTestIssuerURL, sub, aud, time.Now().Add(-time.Minute)),
			"failed to verify token: go-jose/go-jose/jwt: validation failed, token is expired (exp)"},
		{"not a JWT", "not-a-jwt", "failed to verify token: token is not a signed JWT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := issuer.Verify(tt.token, "sts.amazonaws.com")
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(sub))
		})
	}
}

func TestExternalIssuer_CannotSign(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	issuer, err := fakes.NewExternalIssuer(extTestIssuerURL, extJWKS(t, newExtKey(t, jose.ES256, "ec").public))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(issuer.URL()).To(Equal(extTestIssuerURL))

	_, err = issuer.Sign("my-app", "my-app", []string{"sts.amazonaws.com"}, time.Hour)
	g.Expect(err).To(MatchError("failed to sign token: issuer '" + extTestIssuerURL + "' is external: it verifies tokens, its own server signs them"))
}

// The fake STS trusts an external issuer's tokens through the real SDK, and
// still refuses tokens of any other issuer.
func TestSTS_ExternalIssuer(t *testing.T) {
	t.Parallel()
	key := newExtKey(t, jose.RS256, "rsa")
	issuer, err := fakes.NewExternalIssuer(extTestIssuerURL, extJWKS(t, key.public))
	if err != nil {
		t.Fatal(err)
	}
	s := awsStartSTS(t, fakes.AWSSTSOptions{Issuer: issuer})
	s.AllowWebIdentity(awsTestRole, awsTestNamespace, awsTestSA)
	sub := fakes.ServiceAccountSubject(awsTestNamespace, awsTestSA)
	tests := []struct {
		name     string
		token    string
		wantCode string
	}{
		{"token of the external issuer", key.sign(t, extTestIssuerURL, sub, []string{"sts.amazonaws.com"}, time.Now().Add(time.Hour)), ""},
		{"token of a fake issuer", awsSign(t, awsSharedIssuer(), awsTestNamespace, awsTestSA, "sts.amazonaws.com"), "InvalidIdentityToken"},
		{"token for another audience", key.sign(t, extTestIssuerURL, sub, []string{"other"}, time.Now().Add(time.Hour)), "InvalidIdentityToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			out, err := awsSTSClient(s, nil).AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
				RoleArn: aws.String(awsTestRole), RoleSessionName: aws.String(awsTestSession), WebIdentityToken: aws.String(tt.token),
			})
			if tt.wantCode != "" {
				g.Expect(awsErrorCode(err)).To(Equal(tt.wantCode))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(*out.SubjectFromWebIdentityToken).To(Equal(sub))
			g.Expect(*out.Provider).To(Equal(extTestIssuerURL))
		})
	}
}

// The fake Google STS exchanges an external issuer's tokens for federated
// tokens of the principal the audience maps the subject to.
func TestGoogleSTS_ExternalIssuer(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	key := newExtKey(t, jose.ES256, "ec")
	issuer, err := fakes.NewExternalIssuer(extTestIssuerURL, extJWKS(t, key.public))
	g.Expect(err).NotTo(HaveOccurred())
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	s := fakes.StartGCPSTS(fakes.GCPSTSOptions{Issuer: issuer, IAM: iam})
	t.Cleanup(s.Close)
	s.AllowAudience(gcpTestGKEAud)
	sub := fakes.ServiceAccountSubject("apps", "podinfo")

	resp, err := http.PostForm(s.URL+"/v1/token", url.Values{
		"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"subject_token_type":   {"urn:ietf:params:oauth:token-type:jwt"},
		"subject_token":        {key.sign(t, extTestIssuerURL, sub, []string{gcpTestPool}, time.Now().Add(time.Hour))},
		"audience":             {gcpTestGKEAud},
	})
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	var reply struct {
		AccessToken string `json:"access_token"`
	}
	g.Expect(json.NewDecoder(resp.Body).Decode(&reply)).To(Succeed())
	who, ok := iam.WhoAmI(reply.AccessToken)
	g.Expect(ok).To(BeTrue())
	g.Expect(who).To(Equal(fakes.FederatedPrincipal(gcpTestGKEAud, sub)))
}

// extDiscoveryServer serves discovery like a kube-apiserver: over TLS, to
// bearer-authenticated callers only, with jwks_uri on its own address, and
// the JWKS only to callers accepting its media type.
func extDiscoveryServer(t *testing.T, jwks []byte, discovery func(base string) string) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer admin" {
			http.Error(w, `{"kind":"Status","reason":"Unauthorized","code":401}`, http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_, _ = w.Write([]byte(discovery(srv.URL)))
		case "/openid/v1/jwks":
			// As the kube-apiserver: 406 unless the JWK Set type is accepted.
			if !strings.Contains(r.Header.Get("Accept"), "application/jwk-set+json") {
				http.Error(w, "406: Not Acceptable", http.StatusNotAcceptable)
				return
			}
			w.Header().Set("Content-Type", "application/jwk-set+json")
			_, _ = w.Write(jwks)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

type extBearer struct{ base http.RoundTripper }

func (b extBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer admin")
	return b.base.RoundTrip(r)
}

func TestDiscoverIssuer(t *testing.T) {
	t.Parallel()
	key := newExtKey(t, jose.ES256, "ec")
	jwks := extJWKS(t, key.public)
	kubeDoc := func(base string) string {
		return `{"issuer":"` + base + `/","jwks_uri":"` + base + `/openid/v1/jwks","id_token_signing_alg_values_supported":["ES256"]}`
	}
	tests := []struct {
		name      string
		jwks      []byte
		discovery func(base string) string
		anonymous bool
		wantErr   string // with the server's URL for "BASE"
	}{
		{name: "kube-apiserver discovery", jwks: jwks, discovery: kubeDoc},
		{name: "unauthenticated", jwks: jwks, discovery: kubeDoc, anonymous: true,
			wantErr: `failed to discover issuer: failed to get 'BASE/.well-known/openid-configuration': HTTP 401: {"kind":"Status","reason":"Unauthorized","code":401}`},
		{name: "no jwks_uri", jwks: jwks, discovery: func(base string) string { return `{"issuer":"` + base + `/"}` },
			wantErr: "failed to discover issuer: discovery document at 'BASE/.well-known/openid-configuration' lacks issuer or jwks_uri"},
		{name: "jwks_uri not found", jwks: jwks, discovery: func(base string) string {
			return `{"issuer":"` + base + `/","jwks_uri":"` + base + `/missing"}`
		}, wantErr: "failed to discover issuer 'BASE/': failed to get 'BASE/missing': HTTP 404: 404 page not found"},
		{name: "discovery not JSON", jwks: jwks, discovery: func(string) string { return "<html>" },
			wantErr: "failed to discover issuer: invalid discovery document at 'BASE/.well-known/openid-configuration': invalid character '<'"},
		{name: "oversized JWKS", jwks: []byte(strings.Repeat(" ", 1<<20+1)), discovery: kubeDoc,
			wantErr: "failed to discover issuer 'BASE/': failed to read 'BASE/openid/v1/jwks': larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			srv := extDiscoveryServer(t, tt.jwks, tt.discovery)
			client := srv.Client()
			if !tt.anonymous {
				client.Transport = extBearer{client.Transport}
			}
			issuer, err := fakes.DiscoverIssuer(context.Background(), client, srv.URL)
			if tt.wantErr != "" {
				g.Expect(err).To(HaveOccurred())
				g.Expect(err.Error()).To(HavePrefix(strings.ReplaceAll(tt.wantErr, "BASE", srv.URL)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(issuer.URL()).To(Equal(srv.URL + "/"))
			sub, err := issuer.Verify(key.sign(t, srv.URL+"/", "system:serviceaccount:a:b", []string{"x"}, time.Now().Add(time.Hour)), "x")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(sub).To(Equal("system:serviceaccount:a:b"))
		})
	}
}

func TestDiscoverIssuer_NoClient(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	_, err := fakes.DiscoverIssuer(context.Background(), nil, "https://127.0.0.1:1")
	g.Expect(err).To(MatchError("failed to discover issuer: no HTTP client"))
}
