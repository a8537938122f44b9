package aws

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/identitychain/auth"
)

// Attribute implements the attribution hook of auth.Plan. It adds to imp
// what the operator's impersonation policy asks sessions to carry to name
// the tenant that made them: the session tags flux-tenant-namespace and
// flux-tenant-service-account, transitive, so they pass on to every later
// session, and a SourceIdentity (see SourceIdentity). Both become request
// parameters of imp, so they are sent, shown and part of the cache key
// like the annotation's own.
//
// The tenant tags are not EKS Pod Identity's kubernetes-namespace and
// kubernetes-service-account: a Pod Identity session already carries those,
// transitive, naming the controller, and STS refuses to set an inherited
// key again. With the controller on Pod Identity the session carries both
// sets: kubernetes-* name the controller, flux-tenant-* the tenant.
func (Provider) Attribute(imp *auth.Impersonation, a auth.Attribution) error {
	if !a.TenantSessionTags && !a.SourceIdentity {
		return nil
	}
	var p assumeRoleParams
	switch cur, ok := imp.Request.(*assumeRoleParams); {
	case ok && cur != nil:
		p = *cur
	case imp.Request != nil:
		return fmt.Errorf("the impersonation's request is %T, not AWS AssumeRole parameters", imp.Request)
	}
	sa := imp.ServiceAccount
	if a.TenantSessionTags {
		if n := len(p.tags) + len(TenantTagKeys); n > maxSessionTags {
			return &auth.AnnotationError{Key: AssumeRoleAnnotation, ServiceAccount: sa, Reason: fmt.Sprintf(
				"sessionTags has %d tags, and the impersonation policy adds %s: STS takes at most %d in all. "+
					"remove %d", len(p.tags), strings.Join(TenantTagKeys, " and "), maxSessionTags, n-maxSessionTags)}
		}
		values := []string{sa.Namespace, sa.Name}
		p.tags = slices.Clone(p.tags)
		for i, k := range TenantTagKeys {
			p.tags = append(p.tags, types.Tag{Key: aws.String(k), Value: aws.String(values[i])})
		}
		p.transitiveTagKeys = append(slices.Clone(p.transitiveTagKeys), TenantTagKeys...)
		p.tenantTags = true
		imp.Parameters = append(imp.Parameters, auth.Parameter{Field: "tenantSessionTags", SentAs: "Tags, transitive",
			Keys: TenantTagKeys, Values: values})
	}
	if a.SourceIdentity {
		id := SourceIdentity(sa)
		p.sourceIdentity = &id
		imp.Parameters = append(imp.Parameters, auth.Parameter{Field: "sourceIdentity", SentAs: "SourceIdentity", Value: id})
	}
	imp.Request = &p
	return nil
}
