package azure_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	fluxauth "github.com/fluxcd/pkg/auth"
	gcpauth "github.com/fluxcd/pkg/auth/gcp"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/azure"
)

func TestValidateToken(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	token := func(access string, expiry time.Time) *azure.Token {
		return &azure.Token{AccessToken: azcore.AccessToken{Token: access, ExpiresOn: expiry}}
	}
	const prefix = "invalid Azure access token: "
	for _, tt := range []struct {
		name    string
		token   fluxauth.Token
		wantErr string
	}{
		{name: "valid", token: token("SECRET", now.Add(time.Hour))},
		{name: "just beyond the margin", token: token("SECRET", now.Add(azure.ExpiryMargin+1))},
		{name: "at the margin", token: token("SECRET", now.Add(azure.ExpiryMargin)),
			wantErr: prefix + "ExpiresOn 2026-05-01T10:01:00Z is not more than 1m0s after the current time 2026-05-01T10:00:00Z"},
		{name: "expired", token: token("SECRET", now.Add(-time.Second)),
			wantErr: prefix + "ExpiresOn 2026-05-01T09:59:59Z is not more than 1m0s after the current time 2026-05-01T10:00:00Z"},
		{name: "no expiry", token: token("SECRET", time.Time{}), wantErr: prefix + "ExpiresOn is missing"},
		{name: "empty token", token: token("", now.Add(time.Hour)), wantErr: prefix + "Token is empty"},
		{name: "empty", token: &azure.Token{}, wantErr: prefix + "Token is empty; ExpiresOn is missing"},
		{name: "nil token", token: (*azure.Token)(nil), wantErr: prefix + "the token is a nil *azure.Token"},
		{name: "GCP token", token: &gcpauth.Token{}, wantErr: prefix + "the token is *gcp.Token, not *azure.Token"},
		{name: "no token", token: nil, wantErr: prefix + "the token is <nil>, not *azure.Token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			err := azure.Provider{}.ValidateToken(tt.token, now)
			if tt.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(tt.wantErr))
			g.Expect(errors.Is(err, azure.ErrInvalidToken)).To(BeTrue())
			g.Expect(err.Error()).NotTo(ContainSubstring("SECRET"))
		})
	}
}

// The longest tenant and client IDs Entra takes fit, and one more byte
// does not.
func TestValidateIDs(t *testing.T) {
	t.Parallel()
	label := strings.Repeat("a", 63)
	longest := label + "." + label + "." + label + "." + strings.Repeat("b", 61) // 253
	for _, tt := range []struct {
		id   string
		ok   bool
		fail func(string) error
	}{
		{id: longest, ok: true, fail: azure.ValidateTenantID},
		{id: longest + "b", fail: azure.ValidateTenantID},
		{id: "contoso.onmicrosoft.com", ok: true, fail: azure.ValidateTenantID},
		{id: "xn--bcher-kva.example", ok: true, fail: azure.ValidateTenantID},
		{id: "-contoso.com", fail: azure.ValidateTenantID},
		{id: "contoso..com", fail: azure.ValidateTenantID},
		{id: "contoso.com.", fail: azure.ValidateTenantID},
		{id: "contoso", fail: azure.ValidateTenantID},
		{id: "contoso.123", fail: azure.ValidateTenantID},
		{id: "aaaabbbb-0000-cccc-1111-dddd2222eeee", ok: true, fail: azure.ValidateTenantID},
		{id: "aaaabbbb-0000-cccc-1111-dddd2222eeee", ok: true, fail: azure.ValidateClientID},
		{id: "aaaabbbb-0000-cccc-1111-dddd2222eeeg", fail: azure.ValidateClientID},
		{id: "aaaabbbb00000cccc11111dddd2222eeee", fail: azure.ValidateClientID},
		{id: "contoso.onmicrosoft.com", fail: azure.ValidateClientID},
		{id: "", fail: azure.ValidateClientID},
	} {
		err := tt.fail(tt.id)
		if tt.ok && err != nil || !tt.ok && err == nil {
			t.Errorf("%q: got %v, want ok %v", tt.id, err, tt.ok)
		}
	}
}
