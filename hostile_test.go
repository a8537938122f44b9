package auth_test

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unicode"

	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
	"github.com/identitychain/auth/internal/quote"
)

// TestHostileAnnotationsGiveSmallSafeErrors: whatever a tenant writes in
// the annotations the library or upstream reads, the error stays a few KiB
// (a status condition holds 32 KiB) and carries no character a terminal or
// a log parser would act on.
func TestHostileAnnotationsGiveSmallSafeErrors(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("r", 1<<20)
	escape := "x\x1b[2J\x1b]0;pwned\a\nERROR forged line\u202e"
	for _, tt := range []struct {
		name        string
		provider    auth.Provider
		annotations map[string]string
		saName      string
	}{
		{name: "1 MiB role ARN", provider: aws.Provider{},
			annotations: map[string]string{aws.AssumeRoleAnnotation: "roleARN: arn:aws:iam::123456789012:role/" + huge}},
		{name: "1 MiB identity annotation read by upstream", provider: aws.Provider{},
			annotations: map[string]string{aws.RoleARNAnnotation: huge + escape}},
		{name: "escapes in the identity annotation read by upstream", provider: gcp.Provider{},
			annotations: map[string]string{gcp.ServiceAccountAnnotation: escape}},
		{name: "escapes in the ambiguous identity", provider: aws.Provider{},
			annotations: map[string]string{aws.RoleARNAnnotation: escape,
				aws.AssumeRoleAnnotation: "roleARN: arn:aws:iam::123456789012:role/t\nuseServiceAccount: false"}},
		{name: "escapes in the object's ServiceAccount name", provider: aws.Provider{}, saName: escape + huge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
			g.Expect(err).NotTo(HaveOccurred())
			kube := fakes.NewKubeClient(issuer, sa("app", tt.annotations))
			name := "app"
			if tt.saName != "" {
				name = tt.saName
			}
			_, err = auth.GetAccessToken(context.Background(), tt.provider, auth.WithClient(kube),
				auth.WithServiceAccountNamespace("my-app"), auth.WithServiceAccountName(name), auth.WithSTSRegion(region))
			g.Expect(err).To(HaveOccurred())
			msg := err.Error()
			g.Expect(len(msg)).To(BeNumerically("<=", quote.MaxErrorBytes+64))
			g.Expect(msg).NotTo(ContainSubstring("\nERROR forged line"))
			for _, r := range msg {
				if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
					t.Fatalf("error carries %U: %.300q", r, msg)
				}
			}
		})
	}
}

// TestHostileAnnotationsAreCheapToRefuse takes the inputs through
// Plan: the 115 KB and 120 KB alias bombs (seconds and gigabytes to parse
// before) and six 253 KB values, each refused before parsing, with little
// memory, and nothing kept for the next lookup.
func TestHostileAnnotationsAreCheapToRefuse(t *testing.T) {
	bomb := func(size int) string {
		v := `a: &a "` + strings.Repeat("x", 100_000) + "\"\nb: ["
		for len(v) < size {
			v += "*a, "
		}
		return v + "*a]"
	}
	values := []string{bomb(115_000), bomb(120_000)}
	for i := range 6 {
		values = append(values, "roleARN: arn:aws:iam::123456789012:role/"+strings.Repeat(string(rune('a'+i)), 253_000))
	}
	for _, v := range values {
		g := NewWithT(t)
		issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
		g.Expect(err).NotTo(HaveOccurred())
		kube := fakes.NewKubeClient(issuer, sa("app", map[string]string{aws.AssumeRoleAnnotation: v}))
		opts := []auth.Option{auth.WithClient(kube), auth.WithServiceAccountNamespace("my-app"),
			auth.WithServiceAccountName("app"), auth.WithSTSRegion(region)}

		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err = auth.Plan(context.Background(), aws.Provider{}, opts...)
		runtime.ReadMemStats(&after)

		g.Expect(err).To(MatchError(auth.ErrInvalidAnnotation))
		g.Expect(err.Error()).To(HavePrefix("invalid aws.auth.fluxcd.io/assume-role annotation on service account " +
			"'my-app/app': the value is " + strconv.Itoa(len(v)) + " bytes, more than the limit of 32768: shorten it"))
		// The fake client's Get copies the object (and so the value): the
		// bound is a few copies of the input, not gigabytes.
		g.Expect(after.TotalAlloc - before.TotalAlloc).To(BeNumerically("<", 8*len(v)+(1<<20)))
	}
}
