package auth_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"testing"

	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

// An option written as a function, the way upstream's tests write them,
// must take effect: Options embeds the upstream view, and a function that
// sets a field of it once vanished when the view was rebuilt.
func TestOptionWrittenAsFunction(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
	g.Expect(err).NotTo(HaveOccurred())
	kube := fakes.NewKubeClient(issuer, sa("app", map[string]string{aws.AssumeRoleAnnotation: impUnset}))
	opts := []auth.Option{auth.WithClient(kube), auth.WithServiceAccountNamespace("my-app"),
		auth.WithServiceAccountName("app")}

	_, err = auth.Plan(context.Background(), aws.Provider{}, opts...)
	g.Expect(err).To(MatchError(aws.ErrRegionRequired))

	c, err := auth.Plan(context.Background(), aws.Provider{},
		append(opts, func(o *auth.Options) { o.STSRegion = region })...)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Impersonation.Target).To(Equal(targetRole))

	// Upstream options passed through, and functions of the upstream type.
	var o auth.Options
	applyOptions(&o, auth.WithFluxOptions(fluxauth.WithSTSRegion("eu-west-1"), func(fo *fluxauth.Options) { fo.Scopes = []string{"s"} }),
		func(o *auth.Options) { o.STSEndpoint = "https://sts.eu-west-1.amazonaws.com" })
	view := o.Options // what the upstream providers are given
	g.Expect(view.STSRegion).To(Equal("eu-west-1"))
	g.Expect(view.Scopes).To(Equal([]string{"s"}))
	g.Expect(view.STSEndpoint).To(Equal("https://sts.eu-west-1.amazonaws.com"))
}

// No fmt verb and no slog handler shows the proxy's or Git URL's user info,
// or the CA data.
func TestOptionsNeverPrintSecrets(t *testing.T) {
	t.Parallel()
	proxy, _ := url.Parse("http://proxyuser:pr0xy-s3cret@proxy.internal:3128")
	git, _ := url.Parse("https://x-access-token:ghs_g1t-s3cret@github.com/org/repo")
	var o auth.Options
	applyOptions(&o, auth.WithProxyURL(*proxy), auth.WithFluxOptions(fluxauth.WithGitURL(*git)),
		auth.WithCAData("-----BEGIN CERTIFICATE-----ca-s3cret"), auth.WithSTSRegion(region),
		auth.WithServiceAccountNamespace("my-app"), auth.WithServiceAccountName("app"))

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("options", "opts", o, "ptr", &o)
	var text bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("options", "opts", o)

	outputs := map[string]string{"slog json": logged.String(), "slog text": text.String(), "String": o.String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		outputs[verb] = fmt.Sprintf(verb, o)
		outputs[verb+" pointer"] = fmt.Sprintf(verb, &o)
	}
	outputs["in a struct"] = fmt.Sprintf("%+v", struct{ O auth.Options }{o})
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(out).NotTo(Or(ContainSubstring("s3cret"), ContainSubstring("proxyuser"), ContainSubstring("x-access-token")))
			g.Expect(out).To(ContainSubstring("REDACTED@proxy.internal:3128"))
			g.Expect(out).To(ContainSubstring(region))
		})
	}
	g := NewWithT(t)
	g.Expect(o.String()).To(Equal("{serviceAccountNamespace:my-app serviceAccountName:app stsRegion:us-east-1 " +
		"proxyURL:http://REDACTED@proxy.internal:3128 gitURL:https://REDACTED@github.com/org/repo caData:(36 bytes)}"))
}
