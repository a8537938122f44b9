package aws

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	fluxauth "github.com/fluxcd/pkg/auth"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/internal/provider"
	"github.com/identitychain/auth/internal/quote"
)

const (
	// AssumeRoleAnnotation configures impersonation of an IAM role.
	AssumeRoleAnnotation = "aws.auth.fluxcd.io/assume-role"

	// RoleARNAnnotation names the ServiceAccount's own IAM role (IRSA); it is
	// the source when the ServiceAccount is.
	RoleARNAnnotation = "eks.amazonaws.com/role-arn"
)

// AssumeRoleConfig is the YAML value of the AssumeRoleAnnotation.
type AssumeRoleConfig struct {
	// RoleARN is the IAM role to assume. Required.
	RoleARN string `json:"roleARN"`
	// UseServiceAccount makes the ServiceAccount's own role (its
	// eks.amazonaws.com/role-arn) the source instead of the controller's
	// credentials. Optional. Defaults to true under multi-tenancy lockdown
	// and false otherwise.
	UseServiceAccount *bool `json:"useServiceAccount,omitempty"`

	// ExternalID is sent as ExternalId, for a trust policy with an
	// sts:ExternalId condition: 2 to 1224 characters of letters, digits
	// and _+=,.@:/-. Optional.
	ExternalID *string `json:"externalID,omitempty"`
	// Duration is the session's lifetime, sent as DurationSeconds: a
	// duration with a unit, such as "15m" or "1h", from MinDuration to
	// MaxDuration. Optional; STS grants 1h without it.
	Duration *string `json:"duration,omitempty" annotation:"duration"`
	// SessionTags are sent as Tags: at most 50, keys of 1 to 128 and
	// values of at most 256 letters, digits, spaces and _.:/=+-@, no key
	// starting with "aws:", none of TenantTagKeys, no two keys equal but
	// for letter case. The role's trust policy must allow sts:TagSession.
	// Optional.
	SessionTags map[string]string `json:"sessionTags,omitempty"`
	// TransitiveTagKeys are the keys of SessionTags that pass on to any
	// session made with this one, sent as TransitiveTagKeys. Optional.
	TransitiveTagKeys []string `json:"transitiveTagKeys,omitempty"`
	// PolicyARNs are managed policies that limit the session, sent as
	// PolicyArns: at most 10. Optional.
	PolicyARNs []string `json:"policyARNs,omitempty"`
	// Policy is an inline session policy, a JSON object, sent compacted as
	// Policy: at most 2048 characters once compacted. Optional.
	Policy *string `json:"policy,omitempty"`
}

// ErrRegionRequired is returned when a role is to be assumed without a region.
var ErrRegionRequired = errors.New("an AWS region is required to assume a role")

// ParseAssumeRole strictly parses the AssumeRoleAnnotation of sa. It returns
// nil, nil when the annotation is absent.
// Every field is checked against STS's own limits, so a value STS would
// refuse costs no cloud call.
func ParseAssumeRole(sa corev1.ServiceAccount) (*AssumeRoleConfig, error) {
	conf, _, err := parseAssumeRole(sa)
	return conf, err
}

func parseAssumeRole(sa corev1.ServiceAccount) (*AssumeRoleConfig, *assumeRoleParams, error) {
	var conf AssumeRoleConfig
	ok, err := provider.DecodeAnnotation(sa, AssumeRoleAnnotation, &conf)
	if !ok || err != nil {
		return nil, nil, err
	}
	invalid := func(reason string) error {
		return provider.Invalid(sa, AssumeRoleAnnotation, reason)
	}
	switch {
	case conf.RoleARN == "":
		return nil, nil, invalid("roleARN is required, e.g. 'roleARN: arn:aws:iam::123456789012:role/target'")
	}
	if err := ValidateRoleARN(conf.RoleARN); err != nil {
		return nil, nil, invalid("roleARN " + err.Error())
	}
	params, err := conf.params()
	if err != nil {
		return nil, nil, invalid(err.Error())
	}
	return &conf, params, nil
}

// SourceAnnotations implements auth.Provider: the ServiceAccount's role is
// all the upstream provider reads.
func (Provider) SourceAnnotations() []string { return sourceAnnotations }

var sourceAnnotations = []string{RoleARNAnnotation}

// ParseImpersonation implements auth.Provider. Besides the annotation, it
// checks the region and STS endpoint now, so a misconfiguration costs no
// cloud call.
func (Provider) ParseImpersonation(sa corev1.ServiceAccount, opts ...fluxauth.Option) (*auth.Impersonation, error) {
	conf, params, err := parseAssumeRole(sa)
	if conf == nil || err != nil {
		return nil, err
	}
	var o fluxauth.Options
	o.Apply(opts...)
	key := provider.Key(sa)
	if o.STSRegion == "" {
		return nil, fmt.Errorf("%w: service account %s asks to assume role %s. "+
			"set the region in the object spec (auth.WithSTSRegion)", ErrRegionRequired,
			quote.Tenant(key.String()), quote.Tenant(conf.RoleARN))
	}
	if e := o.STSEndpoint; e != "" {
		if err := ValidateSTSEndpoint(e); err != nil {
			return nil, err
		}
	}
	imp := &auth.Impersonation{
		Annotation:        AssumeRoleAnnotation,
		ServiceAccount:    key,
		Target:            conf.RoleARN,
		UseServiceAccount: conf.UseServiceAccount,
	}
	if params != nil {
		imp.Parameters, imp.Request = params.parameters(), params
	}
	return imp, nil
}

const (
	sessionNameSuffix = ".fluxcd.io"
	sessionNameMax    = 64
	// sessionHashLen hex digits (64 bits) of SHA-256 end a name that was
	// cut: no one can make another ServiceAccount's name end the same.
	sessionHashLen = 16
)

var sessionNameUnsafe = regexp.MustCompile(`[^\w+=,.@-]`)

// RoleSessionName is the RoleSessionName of an AssumeRole made for the
// ServiceAccount sa: "<namespace>.<name>.fluxcd.io", so CloudTrail tells
// tenants apart. See tenantName for the names too long for STS.
func RoleSessionName(sa client.ObjectKey) string { return tenantName(sa, sessionNameSuffix) }

// SourceIdentity is the SourceIdentity of an AssumeRole made for the
// ServiceAccount sa when the impersonation policy asks for one:
// "<namespace>.<name>". AWS carries it through every later session and
// records it in CloudTrail. See tenantName for the names too long for STS.
func SourceIdentity(sa client.ObjectKey) string { return tenantName(sa, "") }

// tenantName names the ServiceAccount sa within STS's 64 characters of
// [\w+=,.@-]: "<namespace>.<name><suffix>". Namespaces have no dots, so the
// first dot ends the namespace. A name too long keeps a readable prefix
// and ends in '_' and a hash of namespace and name: Kubernetes names have
// no '_', so a cut name never equals a whole one, and the hash keeps two
// cut names apart.
func tenantName(sa client.ObjectKey, suffix string) string {
	name := sessionNameUnsafe.ReplaceAllString(sa.Namespace+"."+sa.Name, "-") + suffix
	if len(name) <= sessionNameMax && !strings.Contains(name, "_") {
		return name
	}
	sum := sha256.Sum256([]byte(sa.Namespace + "/" + sa.Name))
	hash := hex.EncodeToString(sum[:])[:sessionHashLen]
	return name[:min(len(name), sessionNameMax-sessionHashLen-1)] + "_" + hash
}
