package fakes

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Errors returned by Issuer.Verify, besides the go-jose validation errors it
// wraps (jwt.ErrExpired, jwt.ErrNotValidYet, ...). The fake STS maps them to
// the error codes real STS returns, so they are kept distinct.
var (
	errIssuerMalformedToken = errors.New("token is not a signed JWT")
	errIssuerBadSignature   = errors.New("token signature does not verify with the issuer key")
	errIssuerWrongIssuer    = errors.New("token issuer does not match")
	errIssuerWrongAudience  = errors.New("token audience does not match")
	errIssuerNoExpiry       = errors.New("token has no exp claim")
)

// Issuer is a fake Kubernetes service-account token issuer: a P-256 key that
// signs ES256 JWTs shaped like those of the TokenRequest API. The
// kube-apiserver accepts ECDSA signing keys, and AWS, Google and Entra accept
// ES256 tokens; an RSA key would make signing, not the code under test,
// dominate every benchmark that misses.
//
// NewExternalIssuer and DiscoverIssuer return an Issuer for tokens signed
// elsewhere, such as by a real kube-apiserver, that verifies and cannot sign.
//
// Issuer is safe for concurrent use, including SetClock while other
// goroutines sign and verify.
type Issuer struct {
	url    string
	key    *ecdsa.PrivateKey
	keyID  string
	signer jose.Signer
	// external holds the public keys of an issuer this package does not run
	// (NewExternalIssuer); key and signer are nil then.
	external *jose.JSONWebKeySet
	// now is swapped atomically so that SetClock can race with Sign/Verify.
	now atomic.Pointer[func() time.Time]
}

// kubernetesClaims is the private "kubernetes.io" claim of a projected
// service-account token. Consumers such as the GCP and Azure token exchanges
// read it, so it is present even though the fake STS only needs sub.
type kubernetesClaims struct {
	Namespace      string               `json:"namespace"`
	ServiceAccount kubernetesClaimsName `json:"serviceaccount"`
}

type kubernetesClaimsName struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// kubernetesToken is the claim set of a TokenRequest token. It is not
// jwt.Claims because go-jose writes a single audience as a string, while the
// kube-apiserver always writes a list.
type kubernetesToken struct {
	Issuer     string           `json:"iss"`
	Subject    string           `json:"sub"`
	Audience   []string         `json:"aud"`
	IssuedAt   *jwt.NumericDate `json:"iat"`
	NotBefore  *jwt.NumericDate `json:"nbf"`
	Expiry     *jwt.NumericDate `json:"exp"`
	ID         string           `json:"jti"`
	Kubernetes kubernetesClaims `json:"kubernetes.io"`
}

// NewIssuer returns an Issuer for issuerURL, for example
// "https://kubernetes.default.svc.cluster.local", with a fresh P-256 key.
func NewIssuer(issuerURL string) (*Issuer, error) {
	u, err := url.Parse(issuerURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("invalid issuer URL '%s': must be an absolute https URL", issuerURL)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("failed to generate issuer key: %w", err)
	}
	// Like the kube-apiserver, the key ID is derived from the public key so
	// that verifiers can pick the key out of a JWKS.
	thumb, err := (&jose.JSONWebKey{Key: &key.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("failed to compute issuer key ID: %w", err)
	}
	keyID := hex.EncodeToString(thumb)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", keyID),
	)
	if err != nil {
		return nil, fmt.Errorf("failed to create issuer signer: %w", err)
	}
	i := &Issuer{url: issuerURL, key: key, keyID: keyID, signer: signer}
	i.SetClock(time.Now)
	return i, nil
}

// URL returns the issuer URL, the iss claim of every token.
func (i *Issuer) URL() string { return i.url }

// SetClock makes the issuer read time from now instead of time.Now. It
// governs iat/nbf/exp of signed tokens and the expiry check of Verify.
func (i *Issuer) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	i.now.Store(&now)
}

func (i *Issuer) clock() time.Time { return (*i.now.Load())() }

// Sign issues a token like the TokenRequest API does: iss, sub
// "system:serviceaccount:<ns>:<name>", aud, iat, nbf, exp = now+ttl and the
// "kubernetes.io" claim. The service-account UID is derived from namespace
// and name, so it is stable across calls like a real object's UID.
func (i *Issuer) Sign(namespace, name string, audiences []string, ttl time.Duration) (string, error) {
	token, _, err := i.sign(namespace, name, kubeServiceAccountUID(namespace, name), audiences, ttl)
	return token, err
}

// sign also returns the exp claim, which the TokenRequest status reports.
func (i *Issuer) sign(namespace, name, uid string, audiences []string, ttl time.Duration) (string, time.Time, error) {
	if i.signer == nil {
		return "", time.Time{}, fmt.Errorf("failed to sign token: issuer '%s' is external: "+
			"it verifies tokens, its own server signs them", i.url)
	}
	if namespace == "" || name == "" {
		return "", time.Time{}, errors.New("failed to sign token: namespace and name are required")
	}
	if len(audiences) == 0 {
		return "", time.Time{}, errors.New("failed to sign token: at least one audience is required")
	}
	if ttl <= 0 {
		return "", time.Time{}, fmt.Errorf("failed to sign token: ttl must be positive, got %s", ttl)
	}
	now := i.clock()
	exp := now.Add(ttl)
	claims := kubernetesToken{
		Issuer:    i.url,
		Subject:   ServiceAccountSubject(namespace, name),
		Audience:  append([]string(nil), audiences...),
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(exp),
		ID:        rand.Text(),
		Kubernetes: kubernetesClaims{
			Namespace:      namespace,
			ServiceAccount: kubernetesClaimsName{Name: name, UID: uid},
		},
	}
	token, err := jwt.Signed(i.signer).Claims(claims).Serialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("failed to sign token: %w", err)
	}
	return token, exp, nil
}

// Verify checks the signature, issuer, time claims (no leeway, so that tests
// can pin boundaries) and that audience is among aud, and returns the
// subject. Errors never contain the token.
func (i *Issuer) Verify(token, audience string) (subject string, err error) {
	claims, err := i.verifyAt(token, audience, i.clock())
	if err != nil {
		return "", err
	}
	return claims.Subject, nil
}

// verifyAt is Verify with an explicit time: the fake STS checks tokens
// against its own clock, as the real one does not share the cluster's.
func (i *Issuer) verifyAt(token, audience string, now time.Time) (jwt.Claims, error) {
	var algs []jose.SignatureAlgorithm
	var key any
	if i.external != nil {
		algs, key = externalIssuerAlgorithms, i.external
	} else {
		algs, key = []jose.SignatureAlgorithm{jose.ES256}, &i.key.PublicKey
	}
	parsed, err := jwt.ParseSigned(token, algs)
	if err != nil {
		return jwt.Claims{}, fmt.Errorf("failed to verify token: %w", errIssuerMalformedToken)
	}
	var claims jwt.Claims
	if err := parsed.Claims(key, &claims); err != nil {
		return jwt.Claims{}, fmt.Errorf("failed to verify token: %w", errIssuerBadSignature)
	}
	if claims.Issuer != i.url {
		return claims, fmt.Errorf("failed to verify token: %w: got '%s', want '%s'",
			errIssuerWrongIssuer, claims.Issuer, i.url)
	}
	if !claims.Audience.Contains(audience) {
		return claims, fmt.Errorf("failed to verify token: %w: '%s' is not among %q",
			errIssuerWrongAudience, audience, []string(claims.Audience))
	}
	if claims.Expiry == nil {
		return claims, fmt.Errorf("failed to verify token: %w", errIssuerNoExpiry)
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Time: now}, 0); err != nil {
		return claims, fmt.Errorf("failed to verify token: %w", err)
	}
	return claims, nil
}

// ServiceAccountSubject returns the sub claim Kubernetes puts in tokens of
// the service account namespace/name.
func ServiceAccountSubject(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// kubeServiceAccountUID derives a UUID-shaped UID from namespace/name, for
// service accounts that were created without one (the fake client does not
// set UIDs).
func kubeServiceAccountUID(namespace, name string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
