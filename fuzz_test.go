package auth_test

import (
	"context"
	"strings"
	"testing"
	"unicode"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/gcp"
	"github.com/identitychain/auth/internal/quote"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FuzzPlan feeds Plan, without a policy, every annotation a tenant writes
// and the ServiceAccount name an object gives, under and without lockdown.
// Whatever the input: no panic, a small clean error or a chain whose
// target is a valid identity. `go test` runs the seeds; `make fuzz`
// explores.
func FuzzPlan(f *testing.F) {
	seeds := []struct{ imp, identity, name string }{
		{"roleARN: arn:aws:iam::123456789012:role/t", "", "app"},
		{"roleARN: arn:aws:iam::123456789012:role/t\nuseServiceAccount: true", "arn:aws:iam::111111111111:role/s", "app"},
		{"roleARN: arn:aws:iam::123456789012:role/t\nuseServiceAccount: false", "arn:aws:iam::111111111111:role/s", "app"},
		{"roleARN: arn:aws-evil:iam::123456789012:role/t", "", "app"},
		{"useServiceAccount: yes\nroleARN: arn:aws:iam::123456789012:role/t", "", "app"},
		{"roleARN: A\n---\nroleARN: B", "", "app"},
		{"a: &a [x, x]\nb: [*a, *a]", "", "app"},
		{"<<: {roleARN: x}", "", "app"},
		{"roleARN: !!binary YXJu", "", "app"},
		{"gcpServiceAccount: target@target-project.iam.gserviceaccount.com", "source@source-project.iam.gserviceaccount.com", "app"},
		{"gcpServiceAccount: -x-@" + strings.Repeat("p", 100) + ".iam.gserviceaccount.com", "", "app"},
		{"roleARN: \"x\\e[2J\\nforged\"", "x\x1b[2J\n", "a\x1b"},
		{"roleARN: arn:aws:iam::123456789012:role/t\nexternalID: x:y\nduration: 15m\nsessionTags: {a: b, A: c}\n" +
			"transitiveTagKeys: [a]\npolicyARNs: [arn:aws:iam::aws:policy/p]\npolicy: '{\"Statement\": []}'", "", "app"},
		{"roleARN: arn:aws:iam::123456789012:role/t\nduration: 3600\nsessionTags: {flux-tenant-namespace: x}", "", "app"},
		{"gcpServiceAccount: target@target-project.iam.gserviceaccount.com\ndelegates: [hop-sa@p-project.iam.gserviceaccount.com]\n" +
			"lifetime: 12h\nscopes: [s]", "", "app"},
		{"", "", ""},
	}
	for _, s := range seeds {
		for _, provider := range []uint8{0, 1} {
			for _, lockdown := range []bool{false, true} {
				f.Add(s.imp, s.identity, s.name, provider, lockdown)
			}
		}
	}
	issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
	if err != nil {
		f.Fatal(err)
	}
	// One client, with the annotations of the current input: building a
	// fake client per input would cost most of the time.
	kube := &editedServiceAccounts{Client: fakes.NewKubeClient(issuer, tenantSA("my-app", "app", nil)),
		annotations: map[client.ObjectKey]map[string]string{}}
	f.Fuzz(func(t *testing.T, imp, identity, name string, provider uint8, lockdown bool) {
		var p auth.Provider = aws.Provider{}
		impKey, identityKey := aws.AssumeRoleAnnotation, aws.RoleARNAnnotation
		if provider%2 == 1 {
			p = gcp.Provider{}
			impKey, identityKey = gcp.ImpersonateAnnotation, gcp.ServiceAccountAnnotation
		}
		kube.annotations[client.ObjectKey{Namespace: "my-app", Name: "app"}] = map[string]string{
			impKey: imp, identityKey: identity,
		}
		opts := []auth.Option{auth.WithClient(kube), auth.WithServiceAccountNamespace("my-app"),
			auth.WithServiceAccountName(name), auth.WithSTSRegion(region)}
		if lockdown {
			opts = append(opts, auth.WithDefaultServiceAccount("app"))
		}
		c, err := auth.Plan(context.Background(), p, opts...)
		if err != nil {
			msg := err.Error()
			if len(msg) > quote.MaxErrorBytes+64 {
				t.Fatalf("error of %d bytes", len(msg))
			}
			for _, r := range msg {
				if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
					t.Fatalf("error carries %U: %.200q", r, msg)
				}
			}
			return
		}
		if c.Impersonation == nil {
			return
		}
		validate := aws.ValidateRoleARN
		if provider%2 == 1 {
			validate = gcp.ValidateServiceAccountEmail
		}
		if err := validate(c.Impersonation.Target); err != nil {
			t.Fatalf("Plan accepted target %q: %v", c.Impersonation.Target, err)
		}
		if lockdown && c.Source.Kind != auth.SourceServiceAccount {
			t.Fatalf("lockdown let %s be the source", c.Source)
		}
	})
}
