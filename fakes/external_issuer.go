package fakes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// externalIssuerAlgorithms are the algorithms a kube-apiserver signs
// service account tokens with: RS256 for an RSA signing key, ES256/384/512
// for an ECDSA one (envtest's is P-256). AWS and Google accept the same.
var externalIssuerAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384, jose.ES512}

// externalIssuerMaxBody bounds the discovery document and the JWKS; a
// kube-apiserver's are well under a KiB per key.
const externalIssuerMaxBody = 1 << 20

// NewExternalIssuer returns an Issuer for tokens that this package does not
// sign, such as those of a real kube-apiserver's TokenRequest API: it
// verifies them with the public keys of jwks, the JSON Web Key Set that the
// issuer's jwks_uri serves. STS and GCPSTS given it (AWSSTSOptions.Issuer,
// GCPSTSOptions.Issuer) check those tokens exactly as they check the
// tokens of NewIssuer: signature (RS256 or ES256/384/512, key chosen by the
// token's kid), iss equal to issuerURL, aud, exp and nbf without leeway.
//
// It cannot sign: Sign fails, and so does the TokenRequest of a KubeClient
// built on it. issuerURL must be an absolute https URL, as Kubernetes
// requires of a service account issuer that serves discovery.
func NewExternalIssuer(issuerURL string, jwks []byte) (*Issuer, error) {
	u, err := url.Parse(issuerURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("invalid issuer URL '%s': must be an absolute https URL", issuerURL)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, fmt.Errorf("invalid JWKS of issuer '%s': %w", issuerURL, err)
	}
	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue // an encryption key never verifies a token
		}
		// Public also drops the private half of a key given by mistake.
		pub := k.Public()
		if !pub.Valid() {
			return nil, fmt.Errorf("invalid JWKS of issuer '%s': key '%s' is not an RSA or ECDSA public key", issuerURL, k.KeyID)
		}
		if pub.KeyID == "" {
			return nil, fmt.Errorf("invalid JWKS of issuer '%s': a key has no kid, which verifiers pick keys by", issuerURL)
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("invalid JWKS of issuer '%s': no signing key", issuerURL)
	}
	i := &Issuer{url: issuerURL, external: &jose.JSONWebKeySet{Keys: keys}}
	i.SetClock(time.Now)
	return i, nil
}

// oidcDiscovery is the part of an OpenID Provider configuration document
// that token verification needs.
type oidcDiscovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// DiscoverIssuer reads the OpenID Connect discovery document at
// base + "/.well-known/openid-configuration", then the JWKS at the jwks_uri
// it names, and returns NewExternalIssuer for the issuer it names. client
// makes both requests; a kube-apiserver serves them only to callers it
// authenticates (or that system:service-account-issuer-discovery grants),
// so pass one from rest.HTTPClientFor. base is where to ask, for a
// kube-apiserver its URL, which need not be its issuer URL.
//
// The keys are read once: an issuer that rotates its keys later needs a new
// Issuer, as a test fixture never outlives one API server.
func DiscoverIssuer(ctx context.Context, client *http.Client, base string) (*Issuer, error) {
	if client == nil {
		return nil, errors.New("failed to discover issuer: no HTTP client")
	}
	discoveryURL := strings.TrimSuffix(base, "/") + "/.well-known/openid-configuration"
	body, err := externalIssuerGet(ctx, client, discoveryURL, "application/json")
	if err != nil {
		return nil, fmt.Errorf("failed to discover issuer: %w", err)
	}
	var doc oidcDiscovery
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("failed to discover issuer: invalid discovery document at '%s': %w", discoveryURL, err)
	}
	if doc.Issuer == "" || doc.JWKSURI == "" {
		return nil, fmt.Errorf("failed to discover issuer: discovery document at '%s' lacks issuer or jwks_uri", discoveryURL)
	}
	// A kube-apiserver answers 406 to a JWKS request that does not accept
	// the JWK Set media type (RFC 7517).
	jwks, err := externalIssuerGet(ctx, client, doc.JWKSURI, "application/jwk-set+json, application/json")
	if err != nil {
		return nil, fmt.Errorf("failed to discover issuer '%s': %w", doc.Issuer, err)
	}
	return NewExternalIssuer(doc.Issuer, jwks)
}

func externalIssuerGet(ctx context.Context, client *http.Client, u, accept string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("invalid URL '%s': %w", u, err)
	}
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to get '%s': %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, externalIssuerMaxBody+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("failed to read '%s': %w", u, err)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("failed to get '%s': HTTP %d: %s", u, resp.StatusCode, replyPrefix(body))
	case len(body) > externalIssuerMaxBody:
		return nil, fmt.Errorf("failed to read '%s': larger than %d bytes", u, externalIssuerMaxBody)
	}
	return body, nil
}

// replyPrefix is the start of an error body, enough to tell a 403
// from RBAC apart from a 404 without repeating a whole page.
func replyPrefix(b []byte) string {
	const max = 200
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
