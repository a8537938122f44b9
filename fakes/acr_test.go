package fakes_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/containers/azcontainerregistry"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

const (
	registry = "prodregistry.azurecr.io"
	acrScope = "https://containerregistry.azure.net/.default"
)

// exchangeAtACR exchanges an access token for a refresh token through the
// implementation, as upstream does.
func exchangeAtACR(impl *fakes.AzureImplementation, service, accessToken string) (string, error) {
	resp, err := impl.ExchangeAADAccessTokenForACRRefreshToken(context.Background(), nil,
		azcontainerregistry.PostContentSchemaGrantTypeAccessToken, service,
		&azcontainerregistry.AuthenticationClientExchangeAADAccessTokenForACRRefreshTokenOptions{AccessToken: &accessToken})
	if err != nil {
		return "", err
	}
	return *resp.RefreshToken, nil
}

// ACR exchanges the tokens of the clients with pull access in the
// registry's tenant, for its audience or ARM's, and nothing else.
func TestACRExchange(t *testing.T) {
	t.Parallel()
	w := newEntraWorld(t)
	acr := fakes.StartACR(w.entra)
	t.Cleanup(acr.Close)
	acr.AddRegistry(registry, targetTenant, appID)
	impl := w.impl.WithACR(acr)
	mi := w.managedIdentityToken(t, nil)
	app := func(scope string) string {
		tok, err := w.appToken(nil, targetTenant, appID, mi, scope)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Token
	}
	homeACR, _ := w.entra.IssueToken(homeTenant, miClientID, acrScope)

	for _, tt := range []struct {
		name, service, token string
		wantErr              bool
	}{
		{name: "the app's ACR token", service: registry, token: app(acrScope)},
		{name: "the app's ARM token", service: registry, token: app(armScope)},
		{name: "a token for another resource", service: registry, token: app("https://vault.azure.net/.default"), wantErr: true},
		{name: "a token of another tenant", service: registry, token: homeACR, wantErr: true},
		{name: "another registry", service: "other.azurecr.io", token: app(acrScope), wantErr: true},
		{name: "a token Entra did not mint", service: registry, token: "forged", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			refresh, err := exchangeAtACR(impl, tt.service, tt.token)
			if tt.wantErr {
				var respErr *azcore.ResponseError
				g.Expect(err).To(BeAssignableToTypeOf(respErr))
				g.Expect(err.(*azcore.ResponseError).StatusCode).To(Equal(http.StatusUnauthorized))
				g.Expect(acr.Calls()[len(acr.Calls())-1].Err).To(Equal("UNAUTHORIZED"))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			who, ok := acr.WhoIs(refresh)
			g.Expect(ok).To(BeTrue())
			g.Expect(who.ClientID).To(Equal(appID))
			g.Expect(who.TenantID).To(Equal(targetTenant))
			// Upstream reads the expiry from the refresh token.
			parsed, err := jwt.ParseSigned(refresh, []jose.SignatureAlgorithm{jose.ES256})
			g.Expect(err).NotTo(HaveOccurred())
			var claims jwt.Claims
			g.Expect(parsed.UnsafeClaimsWithoutVerification(&claims)).To(Succeed())
			g.Expect(claims.Expiry.Time()).To(BeTemporally("~", who.Expiry, time.Second))
			g.Expect(acr.Calls()[len(acr.Calls())-1]).To(Equal(fakes.ACRCall{Service: registry, TenantID: targetTenant, ClientID: appID}))
		})
	}

	g := NewWithT(t)
	_, err := exchangeAtACR(w.impl, registry, app(acrScope))
	g.Expect(err).To(MatchError(fakes.ErrAzureNotFaked))
}
