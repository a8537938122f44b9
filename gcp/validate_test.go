package gcp_test

import (
	"errors"
	"testing"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	awsauth "github.com/fluxcd/pkg/auth/aws"
	. "github.com/onsi/gomega"
	"golang.org/x/oauth2"

	"github.com/identitychain/auth/gcp"
)

func TestValidateToken(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	token := func(access string, expiry time.Time) *gcp.Token {
		return &gcp.Token{Token: oauth2.Token{AccessToken: access, TokenType: "Bearer", Expiry: expiry}}
	}
	const prefix = "invalid GCP access token: "
	for _, tt := range []struct {
		name    string
		token   fluxauth.Token
		wantErr string
	}{
		{name: "valid", token: token("ya29.x", now.Add(time.Hour))},
		{name: "just beyond the margin", token: token("ya29.x", now.Add(gcp.ExpiryMargin+1))},
		{
			name:    "at the margin",
			token:   token("ya29.x", now.Add(gcp.ExpiryMargin)),
			wantErr: prefix + "Expiry 2026-05-01T10:01:00Z is not more than 1m0s after the current time 2026-05-01T10:00:00Z",
		},
		{
			name:    "expired",
			token:   token("ya29.x", now.Add(-time.Second)),
			wantErr: prefix + "Expiry 2026-05-01T09:59:59Z is not more than 1m0s after the current time 2026-05-01T10:00:00Z",
		},
		{
			name:    "no expiry, which oauth2 would take for a token that never expires",
			token:   token("ya29.x", time.Time{}),
			wantErr: prefix + "Expiry is missing",
		},
		{
			name:    "empty access token",
			token:   token("", now.Add(time.Hour)),
			wantErr: prefix + "AccessToken is empty",
		},
		{
			name:    "empty",
			token:   &gcp.Token{},
			wantErr: prefix + "AccessToken is empty; Expiry is missing",
		},
		{
			name:    "nil token",
			token:   (*gcp.Token)(nil),
			wantErr: prefix + "the token is a nil *gcp.Token",
		},
		{
			name:    "AWS credentials",
			token:   &awsauth.Credentials{},
			wantErr: prefix + "the token is *aws.Credentials, not *gcp.Token",
		},
		{
			name:    "no token",
			token:   nil,
			wantErr: prefix + "the token is <nil>, not *gcp.Token",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			err := gcp.Provider{}.ValidateToken(tt.token, now)
			if tt.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(tt.wantErr))
			g.Expect(errors.Is(err, gcp.ErrInvalidToken)).To(BeTrue())
		})
	}
}

func TestValidateTokenNeverShowsTheToken(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	err := gcp.Provider{}.ValidateToken(&gcp.Token{Token: oauth2.Token{AccessToken: "SECRET"}}, time.Now())
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).NotTo(ContainSubstring("SECRET"))
}
