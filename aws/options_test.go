package aws_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
)

func serviceAccount(annotations map[string]string) corev1.ServiceAccount {
	return corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Namespace: "team-a", Name: "app", Annotations: annotations,
	}}
}

func TestParseAssumeRole(t *testing.T) {
	const prefix = "invalid aws.auth.fluxcd.io/assume-role annotation on service account 'team-a/app': "
	for _, tt := range []struct {
		name    string
		value   *string
		want    *aws.AssumeRoleConfig
		wantErr string
	}{
		{name: "absent", value: nil},
		{
			name:  "role only",
			value: ptr.To("roleARN: arn:aws:iam::123456789012:role/target"),
			want:  &aws.AssumeRoleConfig{RoleARN: "arn:aws:iam::123456789012:role/target"},
		},
		{
			name:  "useServiceAccount true",
			value: ptr.To("roleARN: arn:aws:iam::123456789012:role/target\nuseServiceAccount: true\n"),
			want:  &aws.AssumeRoleConfig{RoleARN: "arn:aws:iam::123456789012:role/target", UseServiceAccount: ptr.To(true)},
		},
		{
			name:  "useServiceAccount false",
			value: ptr.To("roleARN: arn:aws:iam::123456789012:role/target\nuseServiceAccount: false\n"),
			want:  &aws.AssumeRoleConfig{RoleARN: "arn:aws:iam::123456789012:role/target", UseServiceAccount: ptr.To(false)},
		},
		{name: "empty", value: ptr.To("  \n"), wantErr: prefix + "the value is empty: remove the annotation or set its fields"},
		{
			name:    "unknown field (typo)",
			value:   ptr.To("roleArn: arn:aws:iam::123456789012:role/target"),
			wantErr: prefix + "unknown field 'roleArn': did you mean 'roleARN'? field names are case-sensitive",
		},
		{
			name:    "duplicate field",
			value:   ptr.To("roleARN: arn:aws:iam::123456789012:role/a\nroleARN: arn:aws:iam::123456789012:role/b"),
			wantErr: prefix + "field 'roleARN' is set twice (lines 1 and 2): keep one",
		},
		{
			name:    "wrong type",
			value:   ptr.To("roleARN: arn:aws:iam::123456789012:role/target\nuseServiceAccount: \"yes\""),
			wantErr: prefix + "useServiceAccount must be true or false, without quotes",
		},
		{
			name:    "bare ARN instead of a mapping",
			value:   ptr.To("arn:aws:iam::123456789012:role/target"),
			wantErr: prefix + "the value must be a YAML mapping of fields, e.g. 'field: value'",
		},
		{
			name:    "missing roleARN",
			value:   ptr.To("useServiceAccount: true"),
			wantErr: prefix + "roleARN is required, e.g. 'roleARN: arn:aws:iam::123456789012:role/target'",
		},
		{name: "YAML 1.1 boolean yes", value: ptr.To("roleARN: arn:aws:iam::123456789012:role/target\nuseServiceAccount: yes"),
			wantErr: prefix + "useServiceAccount must be true or false, not 'yes'"},
		{name: "YAML 1.1 boolean on", value: ptr.To("roleARN: arn:aws:iam::123456789012:role/target\nuseServiceAccount: on"),
			wantErr: prefix + "useServiceAccount must be true or false, not 'on'"},
		{name: "YAML 1.1 boolean y", value: ptr.To("roleARN: arn:aws:iam::123456789012:role/target\nuseServiceAccount: y"),
			wantErr: prefix + "useServiceAccount must be true or false, not 'y'"},
		{name: "YAML 1.1 boolean NO", value: ptr.To("roleARN: arn:aws:iam::123456789012:role/target\nuseServiceAccount: NO"),
			wantErr: prefix + "useServiceAccount must be true or false, not 'NO'"},
		{name: "YAML 1.1 boolean off", value: ptr.To("roleARN: arn:aws:iam::123456789012:role/target\nuseServiceAccount: off"),
			wantErr: prefix + "useServiceAccount must be true or false, not 'off'"},
		{name: "null as unset", value: ptr.To("roleARN: arn:aws:iam::123456789012:role/target\nuseServiceAccount: ~"),
			wantErr: prefix + "useServiceAccount is null ('~'): set a value or remove the field"},
		{name: "empty as unset", value: ptr.To("roleARN: arn:aws:iam::123456789012:role/target\nuseServiceAccount:"),
			wantErr: prefix + "useServiceAccount has no value: set one or remove the field"},
		{name: "merge key", value: ptr.To("<<: {roleARN: arn:aws:iam::123456789012:role/target}"),
			wantErr: prefix + "line 1: merge keys ('<<') are not allowed: write the fields out"},
		{name: "binary tag", value: ptr.To("roleARN: !!binary YXJuOmF3czppYW06OjEyMzQ1Njc4OTAxMjpyb2xlL3RhcmdldA=="),
			wantErr: prefix + "line 1: tags are not allowed ('!!binary'): remove it and write the plain value"},
		{name: "local tag", value: ptr.To("roleARN: !foo arn:aws:iam::123456789012:role/target"),
			wantErr: prefix + "line 1: tags are not allowed ('!foo'): remove it and write the plain value"},
		{name: "second document", value: ptr.To("roleARN: arn:aws:iam::123456789012:role/a\n---\nroleARN: arn:aws:iam::123456789012:role/b"),
			wantErr: prefix + "the value holds more than one YAML document: keep one, with no '---' or '...' line after it"},
		{name: "text after the document end", value: ptr.To("roleARN: arn:aws:iam::123456789012:role/a\n...\nroleARN: arn:aws:iam::123456789012:role/b"),
			wantErr: prefix + "the value holds more than one YAML document: keep one, with no '---' or '...' line after it"},
		{name: "anchors and aliases", value: ptr.To("roleARN: &a arn:aws:iam::123456789012:role/a\nb: *a"),
			wantErr: prefix + "line 1: anchors and aliases are not allowed ('&a'): write each value out in full"},
		{
			name:    "not a role",
			value:   ptr.To("roleARN: arn:aws:iam::123456789012:user/bob"),
			wantErr: prefix + "roleARN 'arn:aws:iam::123456789012:user/bob' is not an IAM role ARN: its resource must start with 'role/', as in arn:aws:iam::123456789012:role/name",
		},
		{
			name:    "short account",
			value:   ptr.To("roleARN: arn:aws:iam::1234:role/x"),
			wantErr: prefix + "roleARN 'arn:aws:iam::1234:role/x' has account '1234': an AWS account ID is 12 digits",
		},
		{
			name:  "unknown partition",
			value: ptr.To("roleARN: arn:aws-evil:iam::123456789012:role/x"),
			wantErr: prefix + "roleARN 'arn:aws-evil:iam::123456789012:role/x' names partition 'aws-evil', which AWS does not have: " +
				"use one of aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc",
		},
		{
			name:    "another service",
			value:   ptr.To("roleARN: arn:aws:sts::123456789012:assumed-role/x/y"),
			wantErr: prefix + "roleARN 'arn:aws:sts::123456789012:assumed-role/x/y' is not an IAM role ARN: it must look like arn:aws:iam::123456789012:role/name (service iam, no region)",
		},
		{
			name:    "role name too long",
			value:   ptr.To("roleARN: arn:aws:iam::123456789012:role/" + strings.Repeat("r", 65)),
			wantErr: prefix + "roleARN 'arn:aws:iam::123456789012:role/" + strings.Repeat("r", 65) + "' has role name '" + strings.Repeat("r", 65) + "': it must be 1 to 64 characters of letters, digits and +=,.@_-",
		},
		{
			name:    "control characters are escaped",
			value:   ptr.To(`roleARN: "arn:aws:iam::123456789012:role/x\e[2J\nFAKE LOG LINE"`),
			wantErr: prefix + `roleARN 'arn:aws:iam::123456789012:role/x\x1b[2J\nFAKE LOG LINE' has role name 'x\x1b[2J\nFAKE LOG LINE': it must be 1 to 64 characters of letters, digits and +=,.@_-`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ann := map[string]string{}
			if tt.value != nil {
				ann[aws.AssumeRoleAnnotation] = *tt.value
			}
			got, err := aws.ParseAssumeRole(serviceAccount(ann))
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				g.Expect(errors.Is(err, auth.ErrInvalidAnnotation)).To(BeTrue())
				g.Expect(got).To(BeNil())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestRoleARNPattern(t *testing.T) {
	t.Parallel()
	name64 := strings.Repeat("r", 64)
	for arn, valid := range map[string]bool{
		"arn:aws:iam::123456789012:role/target":                             true,
		"arn:aws-cn:iam::123456789012:role/target":                          true,
		"arn:aws-us-gov:iam::123456789012:role/target":                      true,
		"arn:aws-iso:iam::123456789012:role/target":                         true,
		"arn:aws-iso-b:iam::123456789012:role/target":                       true,
		"arn:aws-iso-f:iam::123456789012:role/target":                       true,
		"arn:aws-iso-e:iam::123456789012:role/target":                       true,
		"arn:aws-eusc:iam::123456789012:role/target":                        true,
		"arn:aws-evil:iam::123456789012:role/target":                        false,
		"arn:aws:iam:us-east-1:123456789012:role/target":                    false,
		"arn:aws:iam::123456789012:role/" + strings.Repeat("p/", 256) + "x": false,
		"arn:aws:iam::123456789012:role/" + strings.Repeat("p/", 255) + "x": true,
		"arn:aws:iam::123456789012:role/team-a/x":                           true,
		"arn:aws:iam::123456789012:role/a/b/c/deploy+=,.@-_9":               true,
		"arn:aws:iam::123456789012:role/" + name64:                          true,
		"arn:aws:iam::123456789012:role/" + name64 + "x":                    false,
		"arn:aws:iam::123456789012:role/path/":                              false,
		"arn:aws:iam::123456789012:role/":                                   false,
		"arn:aws:sts::123456789012:assumed-role/target/session":             false,
		"arn:azure:iam::123456789012:role/target":                           false,
		"arn:aws:iam::123456789012:role/has space":                          false,
		"arn:aws:iam::12345678901a:role/target":                             false,
		" arn:aws:iam::123456789012:role/target":                            false,
		"arn:aws:iam::123456789012:role/target\n":                           false,
		"arn:aws:iam::123456789012:role/target:extra":                       false,
		"arn:aws:iam::123456789012:role/pa th/target":                       false,
		"arn:aws:iam::123456789012:role/path/" + name64:                     true,
		"arn:aws:iam::123456789012:role/" + strings.Repeat("p/", 100) + "x": true,
	} {
		ann := map[string]string{aws.AssumeRoleAnnotation: "roleARN: '" + arn + "'"}
		_, err := aws.ParseAssumeRole(serviceAccount(ann))
		if valid && err != nil {
			t.Errorf("%q: want valid, got %v", arn, err)
		}
		if !valid && err == nil {
			t.Errorf("%q: want invalid, got valid", arn)
		}
	}
}

func TestParseImpersonation(t *testing.T) {
	t.Parallel()
	ann := map[string]string{aws.AssumeRoleAnnotation: "roleARN: arn:aws:iam::123456789012:role/target"}
	sa := serviceAccount(ann)

	t.Run("region required", func(t *testing.T) {
		g := NewWithT(t)
		_, err := aws.Provider{}.ParseImpersonation(sa)
		g.Expect(err).To(MatchError(aws.ErrRegionRequired))
		g.Expect(err).To(MatchError("an AWS region is required to assume a role: service account 'team-a/app' " +
			"asks to assume role 'arn:aws:iam::123456789012:role/target'. set the region in the object spec (auth.WithSTSRegion)"))
	})
	t.Run("endpoint validated as upstream", func(t *testing.T) {
		g := NewWithT(t)
		_, err := aws.Provider{}.ParseImpersonation(sa, fluxauth.WithSTSRegion("us-east-1"),
			fluxauth.WithSTSEndpoint("https://evil.example.com"))
		g.Expect(err).To(MatchError(HavePrefix("invalid STS endpoint: 'https://evil.example.com'. must match")))
	})
	t.Run("parsed", func(t *testing.T) {
		g := NewWithT(t)
		imp, err := aws.Provider{}.ParseImpersonation(sa, fluxauth.WithSTSRegion("us-east-1"),
			fluxauth.WithSTSEndpoint("https://sts.us-east-1.amazonaws.com"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(*imp).To(Equal(auth.Impersonation{
			Annotation:     aws.AssumeRoleAnnotation,
			ServiceAccount: client.ObjectKey{Namespace: "team-a", Name: "app"},
			Target:         "arn:aws:iam::123456789012:role/target",
		}))
	})
	t.Run("absent", func(t *testing.T) {
		g := NewWithT(t)
		imp, err := aws.Provider{}.ParseImpersonation(serviceAccount(nil))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(imp).To(BeNil())
	})
}

var stsSessionName = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

func TestRoleSessionName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("n", 253)
	for _, tt := range []struct {
		ns, name, want string
	}{
		{"team-a", "app", "team-a.app.fluxcd.io"},
		{"flux-system", "kustomize.controller", "flux-system.kustomize.controller.fluxcd.io"},
		{strings.Repeat("a", 63), "app", ""},
		{"team-a", long, ""},
	} {
		got := aws.RoleSessionName(client.ObjectKey{Namespace: tt.ns, Name: tt.name})
		if !stsSessionName.MatchString(got) {
			t.Errorf("%s/%s: %q is not a valid STS RoleSessionName", tt.ns, tt.name, got)
		}
		if tt.want != "" && got != tt.want {
			t.Errorf("%s/%s: got %q, want %q", tt.ns, tt.name, got, tt.want)
		}
		if tt.want == "" && !strings.HasPrefix(got, (tt.ns + "." + tt.name)[:20]) {
			t.Errorf("%s/%s: %q lost its readable prefix", tt.ns, tt.name, got)
		}
	}
	// Truncation must not merge two ServiceAccounts into one session name.
	a := aws.RoleSessionName(client.ObjectKey{Namespace: "team-a", Name: long + "1"})
	b := aws.RoleSessionName(client.ObjectKey{Namespace: "team-a", Name: long + "2"})
	if a == b {
		t.Errorf("long names share session name %q", a)
	}
}

// Parsing is memoized for speed; callers must still get their own copy.
func TestParseAssumeRoleReturnsACopy(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	sa := serviceAccount(map[string]string{aws.AssumeRoleAnnotation: "roleARN: arn:aws:iam::123456789012:role/copy\nuseServiceAccount: true"})
	a, err := aws.ParseAssumeRole(sa)
	g.Expect(err).NotTo(HaveOccurred())
	*a.UseServiceAccount = false
	a.RoleARN = "changed"
	b, err := aws.ParseAssumeRole(sa)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*b).To(Equal(aws.AssumeRoleConfig{RoleARN: "arn:aws:iam::123456789012:role/copy", UseServiceAccount: ptr.To(true)}))
}

func TestImpersonateNeedsAWSCredentials(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	_, err := aws.Provider{}.Impersonate(context.Background(), notAWS{}, auth.Impersonation{}, fluxauth.WithSTSRegion("us-east-1"))
	g.Expect(err).To(MatchError("source credentials are aws_test.notAWS, not AWS credentials"))
}

type notAWS struct{}

func (notAWS) GetDuration() time.Duration { return time.Hour }

func TestImpersonateNeedsARegion(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	_, err := aws.Provider{}.Impersonate(context.Background(), &aws.Credentials{}, auth.Impersonation{})
	g.Expect(err).To(MatchError("an AWS region is required to assume a role: set it with auth.WithSTSRegion"))
}

// Whole and cut names never meet: a cut one ends in '_' and a hash, which
// no Kubernetes name holds, and names that are not valid Kubernetes names
// (with a '_') are always hashed.
func TestTenantNamesNeverCollide(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	long := client.ObjectKey{Namespace: "team-a", Name: strings.Repeat("n", 100)}
	cut := aws.SourceIdentity(long)
	g.Expect(cut).To(HaveLen(64))
	g.Expect(cut).To(MatchRegexp(`^team-a\.n{40}_[0-9a-f]{16}$`))
	// A ServiceAccount named after the cut name cannot take it.
	mimic := client.ObjectKey{Namespace: "team-a", Name: strings.TrimPrefix(cut, "team-a.")}
	g.Expect(aws.SourceIdentity(mimic)).NotTo(Equal(cut))
	g.Expect(aws.SourceIdentity(client.ObjectKey{Namespace: "team-a", Name: "app"})).To(Equal("team-a.app"))
	g.Expect(aws.RoleSessionName(long)).To(MatchRegexp(`^team-a\.n{40}_[0-9a-f]{16}$`))
	g.Expect(aws.RoleSessionName(long)).To(Equal(cut), "one scheme: the same cut for both")
}
