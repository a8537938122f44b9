package fakes

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// gcpMetadataTimeout bounds one token request to the fake metadata server:
// an oauth2.TokenSource has no context of its own.
const gcpMetadataTimeout = 30 * time.Second

// GCPControllerImplementation is a GCPImplementation whose controller
// identity is set per instance: DefaultTokenSource takes the tokens of the
// default service account straight from one Metadata, instead of finding
// a metadata server through GCE_METADATA_HOST (GCPEnv). Tests whose
// controllers have different identities can then run in parallel.
//
// Object-level tests on GKE still need GCPEnv: upstream reads the cluster's
// project, location and name through the process-wide metadata client.
//
// GCPControllerImplementation is immutable and safe for concurrent use.
type GCPControllerImplementation struct {
	*GCPImplementation
	md *GCPMetadata
}

// NewGCPControllerImplementation returns an implementation that exchanges
// at sts, impersonates at iam and takes the controller's tokens from md.
// All are required.
func NewGCPControllerImplementation(sts *GCPSTS, iam *GCPIAMCredentials, md *GCPMetadata) *GCPControllerImplementation {
	return &GCPControllerImplementation{GCPImplementation: NewGCPImplementation(sts, iam), md: md}
}

// DefaultTokenSource returns tokens of md's default service account for
// scope, requested with the HTTP client that ctx carries under
// oauth2.HTTPClient (upstream puts its proxy-aware client there), as
// google.DefaultTokenSource does on GKE. It reads no environment variable.
func (g *GCPControllerImplementation) DefaultTokenSource(ctx context.Context, scope ...string) (oauth2.TokenSource, error) {
	client := http.DefaultClient
	if c, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && c != nil {
		client = c
	}
	u := g.md.URL + "/computeMetadata/v1/instance/service-accounts/default/token"
	if len(scope) > 0 {
		u += "?" + url.Values{"scopes": {strings.Join(scope, ",")}}.Encode()
	}
	return oauth2.ReuseTokenSource(nil, gcpMetadataTokenSource{client: client, url: u}), nil
}

type gcpMetadataTokenSource struct {
	client *http.Client
	url    string
}

func (s gcpMetadataTokenSource) Token() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), gcpMetadataTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to get a token from the metadata server: %w", err)
	}
	req.Header.Set("Metadata-Flavor", "Google")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to get a token from the metadata server: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("failed to read a token from the metadata server: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("failed to get a token from the metadata server: HTTP %d: %s",
			resp.StatusCode, replyPrefix(body))
	}
	var reply struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &reply); err != nil {
		return nil, fmt.Errorf("failed to decode a token from the metadata server: %w", err)
	}
	if reply.AccessToken == "" {
		return nil, fmt.Errorf("failed to get a token from the metadata server: the reply has no access_token")
	}
	t := &oauth2.Token{AccessToken: reply.AccessToken, TokenType: reply.TokenType}
	if reply.ExpiresIn > 0 {
		t.Expiry = time.Now().Add(time.Duration(reply.ExpiresIn) * time.Second)
	}
	return t, nil
}
