// This file is the only one that touches the upstream provider, so moving
// to a newer fluxcd/pkg/auth changes this file alone.

package azure

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	fluxauth "github.com/fluxcd/pkg/auth"
	azureauth "github.com/fluxcd/pkg/auth/azure"
	corev1 "k8s.io/api/core/v1"
)

// ProviderName is the name of the Azure provider.
const ProviderName = azureauth.ProviderName

// Token is the token type this provider returns: the upstream one.
type Token = azureauth.Token

// Implementation is the seam to the Azure SDK, upstream's own. Its
// NewClientAssertionCredential makes the credential of the impersonation
// hop too, so the fakes package can point both at a fake Entra.
type Implementation = azureauth.Implementation

// Provider is the Azure provider. The zero value is ready to use and calls
// the real Azure APIs. It is safe for concurrent use.
type Provider struct {
	// Implementation replaces the Azure SDK calls. Optional. Defaults to the
	// real SDK.
	Implementation Implementation
}

func (p Provider) upstream() azureauth.Provider {
	return azureauth.Provider{Implementation: p.Implementation}
}

// newClientAssertionCredential is azidentity's, or the Implementation's
// when there is one, as upstream's object-level exchange makes it.
func (p Provider) newClientAssertionCredential(tenantID, clientID string, getAssertion func(context.Context) (string, error),
	o *azidentity.ClientAssertionCredentialOptions) (azcore.TokenCredential, error) {
	if p.Implementation != nil {
		return p.Implementation.NewClientAssertionCredential(tenantID, clientID, getAssertion, o)
	}
	return azidentity.NewClientAssertionCredential(tenantID, clientID, getAssertion, o)
}

// GetName implements fluxauth.Provider.
func (Provider) GetName() string { return ProviderName }

// NewControllerToken implements fluxauth.Provider: the controller's own
// token (AKS workload identity, or a managed identity), with Entra's
// refusals on one line.
func (p Provider) NewControllerToken(ctx context.Context, opts ...fluxauth.Option) (fluxauth.Token, error) {
	token, err := p.upstream().NewControllerToken(ctx, opts...)
	if err != nil {
		return nil, requestError(ctx, err, oneLine)
	}
	return token, nil
}

// GetAudiences implements fluxauth.Provider.
func (p Provider) GetAudiences(ctx context.Context, sa corev1.ServiceAccount) ([]string, error) {
	return p.upstream().GetAudiences(ctx, sa)
}

// GetIdentity implements fluxauth.Provider: "<tenant-id>/<client-id>". A
// missing annotation gets its own error, naming every one missing:
// upstream reports the first alone.
func (p Provider) GetIdentity(sa corev1.ServiceAccount) (string, error) {
	var missing []string
	for _, key := range sourceAnnotationKeys {
		if _, ok := sa.Annotations[key]; !ok {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: add %s with the managed identity the service account's token is exchanged for",
			ErrNoServiceAccountIdentity, strings.Join(missing, " and "))
	}
	return p.upstream().GetIdentity(sa)
}

// ErrNoServiceAccountIdentity is returned when the ServiceAccount is the
// source of the credentials but names no managed identity.
var ErrNoServiceAccountIdentity = errors.New("the service account names no managed identity")

// NewTokenForServiceAccount implements fluxauth.Provider: the
// ServiceAccount's token exchanged for its managed identity's at Entra.
// Entra's refusals are on one line, and when the managed identity trusts no
// federated credential for the ServiceAccount, the error names the one to
// create.
func (p Provider) NewTokenForServiceAccount(ctx context.Context, oidcToken string,
	sa corev1.ServiceAccount, opts ...fluxauth.Option) (fluxauth.Token, error) {
	token, err := p.upstream().NewTokenForServiceAccount(ctx, oidcToken, sa, opts...)
	if err != nil {
		return nil, requestError(ctx, err, func(err error) error {
			return sourceRefusal(err, sa.Annotations[ClientIDAnnotation], oidcToken)
		})
	}
	return token, nil
}

// requestError is err of a token request: the context's error when
// the context ended (MSAL keeps only its words), or else translate(err).
func requestError(ctx context.Context, err error, translate func(error) error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w: %w", ctxErr, err)
	}
	return translate(err)
}

// GetAccessTokenOptionsForArtifactRepository implements auth.RegistryProvider.
func (p Provider) GetAccessTokenOptionsForArtifactRepository(repo string) ([]fluxauth.Option, error) {
	return p.upstream().GetAccessTokenOptionsForArtifactRepository(repo)
}

// ParseArtifactRepository implements auth.RegistryProvider.
func (p Provider) ParseArtifactRepository(repo string) (string, error) {
	return p.upstream().ParseArtifactRepository(repo)
}

// NewArtifactRegistryCredentials implements auth.RegistryProvider.
func (p Provider) NewArtifactRegistryCredentials(ctx context.Context, registryInput string,
	accessToken fluxauth.Token, opts ...fluxauth.Option) (*fluxauth.ArtifactRegistryCredentials, error) {
	return p.upstream().NewArtifactRegistryCredentials(ctx, registryInput, accessToken, opts...)
}

// GetAccessTokenOptionsForCluster implements auth.RESTConfigProvider.
func (p Provider) GetAccessTokenOptionsForCluster(opts ...fluxauth.Option) ([][]fluxauth.Option, error) {
	return p.upstream().GetAccessTokenOptionsForCluster(opts...)
}

// NewRESTConfig implements auth.RESTConfigProvider.
func (p Provider) NewRESTConfig(ctx context.Context, accessTokens []fluxauth.Token,
	opts ...fluxauth.Option) (*fluxauth.RESTConfig, error) {
	return p.upstream().NewRESTConfig(ctx, accessTokens, opts...)
}
