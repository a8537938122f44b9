package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
)

const (
	hopGSA   = "hop-sa@middle-project.iam.gserviceaccount.com"
	readOnly = "https://www.googleapis.com/auth/devstorage.read_only"
)

// The delegates, lifetime and scopes of testdata/gcp-impersonate-delegates.yaml
// reach IAM Credentials as sent, and the fake walks the chain as Google does.
func TestGCPImpersonateDelegatesLifetimeScopes(t *testing.T) {
	g := NewWithT(t)
	w := newGCPWorld(t)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "gcp-impersonate-delegates.yaml"))
	get := func() (any, error) {
		// The annotation's scopes take the place of the caller's.
		return auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube, auth.WithScopes(cloudPlatform))...)
	}
	wantChainHint := "failed to get gcp credentials of '" + targetGSA + "' impersonated from the controller identity: " +
		"iamcredentials generateAccessToken for '" + targetGSA + "': HTTP 403: Permission " +
		"'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist) (IAM_PERMISSION_DENIED). " +
		"the annotation's delegates make a chain: grant roles/iam.serviceAccountTokenCreator to the source identity on '" +
		hopGSA + "', '" + hopGSA + "' on '" + targetGSA + "' (Google does not say which link is missing)"

	// The controller may reach the target directly, but the annotation
	// asks for the chain, whose first link is missing.
	w.iam.AllowImpersonation(controllerGSA, targetGSA)
	_, err := get()
	g.Expect(err).To(MatchError(wantChainHint))

	// The first link alone is not enough.
	w.iam.AllowImpersonation(controllerGSA, hopGSA)
	_, err = get()
	g.Expect(err).To(MatchError(wantChainHint))

	w.iam.AllowImpersonation(hopGSA, targetGSA)
	before := time.Now()
	token, err := get()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(w.whoAmI(t, token)).To(Equal(targetGSA))
	calls := w.iam.Calls()
	g.Expect(calls[len(calls)-1]).To(Equal(fakes.GCPIAMCall{
		Target: targetGSA, Caller: controllerGSA, Delegates: []string{hopGSA},
		Scopes: []string{readOnly}, Lifetime: "1800s",
	}))
	expiry := token.(*gcp.Token).Expiry
	g.Expect(expiry).To(BeTemporally("~", before.Add(30*time.Minute), 5*time.Second), "the lifetime asked for")
}

// A lifetime above 1h needs an organization policy: without it, Google
// refuses and the error says which.
func TestGCPImpersonateLongLifetime(t *testing.T) {
	annotated := sa("my-app", map[string]string{
		gcp.ImpersonateAnnotation: "gcpServiceAccount: " + targetGSA + "\nlifetime: 2h",
	})
	t.Run("without the organization policy", func(t *testing.T) {
		g := NewWithT(t)
		w := newGCPWorld(t)
		w.iam.AllowImpersonation(controllerGSA, targetGSA)
		kube := fakes.NewKubeClient(w.issuer, annotated)
		_, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube)...)
		g.Expect(err).To(MatchError("failed to get gcp credentials of '" + targetGSA + "' impersonated from the controller identity: " +
			"iamcredentials generateAccessToken for '" + targetGSA + "': HTTP 400: The lifetime requested is not valid. " +
			"Please provide a lifetime between 1s and 3600s. the annotation asks for lifetime 2h, above 1h: " +
			"that needs the organization policy constraints/iam.allowServiceAccountCredentialLifetimeExtension to list '" +
			targetGSA + "'. ask the organization's administrator for it, or set lifetime to 1h or less"))
	})
	t.Run("with it", func(t *testing.T) {
		g := NewWithT(t)
		w := newGCPWorldWith(t, fakes.GCPIAMCredentialsOptions{MaxLifetime: 12 * time.Hour})
		w.iam.AllowImpersonation(controllerGSA, targetGSA)
		kube := fakes.NewKubeClient(w.issuer, annotated)
		before := time.Now()
		token, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube)...)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(token.(*gcp.Token).Expiry).To(BeTemporally("~", before.Add(2*time.Hour), 5*time.Second))
	})
}

// The cache keeps an impersonated token for as long as the lifetime the
// annotation asked for allows, not for the default hour.
func TestGCPCacheFollowsLifetime(t *testing.T) {
	g := NewWithT(t)
	w := newGCPWorld(t)
	w.iam.AllowImpersonation(controllerGSA, hopGSA)
	w.iam.AllowImpersonation(hopGSA, targetGSA)
	w.iam.AllowImpersonation(controllerGSA, targetGSA)
	short := loadServiceAccount(t, "gcp-impersonate-delegates.yaml") // lifetime: 30m
	long := sa("other", map[string]string{gcp.ImpersonateAnnotation: "gcpServiceAccount: " + targetGSA})
	long.Namespace = "my-app"
	kube := fakes.NewKubeClient(w.issuer, short, long)
	clock := newAdapterClock()
	tc, err := auth.NewTokenCache(10, auth.CacheClock(clock.Now))
	g.Expect(err).NotTo(HaveOccurred())
	calls := func(name string) int {
		n := 0
		_, err := auth.GetAccessToken(context.Background(), w.provider, auth.WithClient(kube),
			auth.WithServiceAccountNamespace("my-app"), auth.WithServiceAccountName(name),
			auth.WithTokenCache(tc, cache.InvolvedObject{Kind: "Bucket", Name: name, Namespace: "my-app"}))
		g.Expect(err).NotTo(HaveOccurred())
		for _, c := range w.iam.Calls() {
			if strings.HasPrefix(c.Lifetime, map[string]string{"my-app": "1800s", "other": "3600s"}[name]) {
				n++
			}
		}
		return n
	}
	g.Expect(calls("my-app")).To(Equal(1))
	g.Expect(calls("other")).To(Equal(1))

	clock.Add(29*time.Minute + 45*time.Second) // past the 30m token's usable life, early in the 1h one's
	g.Expect(calls("my-app")).To(Equal(2), "the 30m token was fetched again")
	g.Expect(calls("other")).To(Equal(1), "the 1h token is still served")
}
