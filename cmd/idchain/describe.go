package main

import (
	"fmt"
	"strings"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/gcp"
)

// description is a chain told as a person reads it: which calls are made,
// in order, with what.
type description struct {
	source      string
	hops        []hop
	warnings    []string
	region      string
	endpoint    string
	sessionName string
	scopes      []string
}

// describe tells the calls a planned chain makes. It only names them: the
// chain itself, and every rule about it, is the library's.
func describe(c *auth.Chain, f *chainFlags, audiences []string, audNote string) description {
	d := description{source: "the controller's own identity"}
	aud := strings.Join(audiences, ", ")
	if audNote != "" {
		aud = audNote
	}
	sa := c.Source.ServiceAccount.String()
	tokenRequest := hop{"Kubernetes TokenRequest", fmt.Sprintf("a token of ServiceAccount %s, audience %s", sa, aud)}
	bySA := c.Source.Kind == auth.SourceServiceAccount
	switch {
	case bySA && c.Source.Identity == "":
		d.source = fmt.Sprintf("ServiceAccount %s, by direct access (object level)", sa)
	case bySA:
		d.source = fmt.Sprintf("ServiceAccount %s as %s (object level)", sa, c.Source.Identity)
	}

	switch c.Provider {
	case aws.ProviderName:
		d.region = f.region
		if d.region == "" {
			d.region = "none (the controller's AWS_REGION for its own credentials)"
		}
		d.endpoint = f.stsEndpoint
		if d.endpoint == "" {
			d.endpoint = "the regional default"
		}
		if !bySA {
			d.source += " (EKS Pod Identity or IRSA)"
			d.hops = append(d.hops, hop{"controller credentials",
				"from the AWS SDK default chain of the controller pod: EKS Pod Identity or IRSA"})
		} else {
			d.hops = append(d.hops, tokenRequest, hop{"sts:AssumeRoleWithWebIdentity " + c.Source.Identity,
				"with the ServiceAccount token, region " + orNone(f.region)})
			if f.region == "" {
				d.warnings = append(d.warnings, "a ServiceAccount source needs an AWS region: "+
					"set it in the object spec (--region), or the exchange fails at runtime")
			}
		}
		if imp := c.Impersonation; imp != nil {
			d.sessionName = aws.RoleSessionName(imp.ServiceAccount)
			d.hops = append(d.hops, hop{"sts:AssumeRole " + imp.Target,
				fmt.Sprintf("signed with the source credentials, session %s, region %s", d.sessionName, orNone(f.region))})
		}

	case gcp.ProviderName:
		if !bySA {
			d.source += " (GKE workload identity)"
			d.hops = append(d.hops, hop{"metadata server token",
				"the controller pod's Google service account (GKE workload identity)"})
		} else {
			d.hops = append(d.hops, tokenRequest, hop{"Google STS token exchange",
				fmt.Sprintf("a federated token of principal .../subject/ns/%s/sa/%s",
					c.Source.ServiceAccount.Namespace, c.Source.ServiceAccount.Name)})
			if c.Source.Identity != "" {
				d.hops = append(d.hops, hop{"iamcredentials generateAccessToken " + c.Source.Identity,
					"as the federated principal (" + gcp.ServiceAccountAnnotation + ")"})
			}
		}
		if imp := c.Impersonation; imp != nil {
			d.scopes = f.scopes
			if len(d.scopes) == 0 {
				d.scopes = gcp.DefaultScopes
			}
			d.hops = append(d.hops, hop{"iamcredentials generateAccessToken " + imp.Target,
				"bearing the source token, scopes " + strings.Join(d.scopes, ", ")})
		}

	case azure.ProviderName:
		if !bySA {
			d.source += " (Azure workload identity)"
			d.hops = append(d.hops, hop{"controller credentials", "Azure workload identity of the controller pod"})
		} else {
			d.hops = append(d.hops, tokenRequest, hop{"Microsoft Entra ID token exchange",
				"for tenant/client " + c.Source.Identity})
		}
	}
	return d
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
