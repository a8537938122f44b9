package main

import (
	"fmt"
	"strings"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/gcp"
	"github.com/identitychain/auth/internal/quote"
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
	// scopesNote says where scopes come from when not from --scopes.
	scopesNote string
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
	tokenRequest := hop{Call: "Kubernetes TokenRequest", Details: fmt.Sprintf("a token of ServiceAccount %s, audience %s", sa, aud)}
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
			d.hops = append(d.hops, hop{Call: "controller credentials",
				Details: "from the AWS SDK default chain of the controller pod: EKS Pod Identity or IRSA"})
		} else {
			d.hops = append(d.hops, tokenRequest, hop{Call: "sts:AssumeRoleWithWebIdentity " + c.Source.Identity,
				Details: "with the ServiceAccount token, region " + orNone(f.region)})
			if f.region == "" {
				d.warnings = append(d.warnings, "a ServiceAccount source needs an AWS region: "+
					"set it in the object spec (--region), or the exchange fails at runtime")
			}
		}
		if imp := c.Impersonation; imp != nil {
			d.sessionName = aws.RoleSessionName(imp.ServiceAccount)
			d.hops = append(d.hops, hop{Call: "sts:AssumeRole " + imp.Target,
				Details: fmt.Sprintf("signed with the source credentials, session %s, region %s", d.sessionName, orNone(f.region)),
				sends:   sentParameters(imp.Parameters)})
		}

	case gcp.ProviderName:
		if !bySA {
			d.source += " (GKE workload identity)"
			d.hops = append(d.hops, hop{Call: "metadata server token",
				Details: "the controller pod's Google service account (GKE workload identity)"})
		} else {
			d.hops = append(d.hops, tokenRequest, hop{Call: "Google STS token exchange",
				Details: fmt.Sprintf("a federated token of principal .../subject/ns/%s/sa/%s",
					c.Source.ServiceAccount.Namespace, c.Source.ServiceAccount.Name)})
			if c.Source.Identity != "" {
				d.hops = append(d.hops, hop{Call: "iamcredentials generateAccessToken " + c.Source.Identity,
					Details: "as the federated principal (" + gcp.ServiceAccountAnnotation + ")"})
			}
		}
		if imp := c.Impersonation; imp != nil {
			d.scopes = f.scopes
			if len(d.scopes) == 0 {
				d.scopes = gcp.DefaultScopes
			}
			details := "bearing the source token, scopes " + strings.Join(d.scopes, ", ")
			if s, ok := parameter(imp.Parameters, "scopes"); ok {
				// The annotation's scopes take the place of the caller's:
				// the parameter shows them as sent.
				d.scopes, details = s.Values, "bearing the source token"
				d.scopesNote = "the annotation's, in place of --scopes or the default"
				if len(f.scopes) > 0 {
					d.warnings = append(d.warnings, "--scopes is not used for this ServiceAccount: the scopes of its "+
						gcp.ImpersonateAnnotation+" annotation take their place")
				}
			}
			d.hops = append(d.hops, hop{Call: "iamcredentials generateAccessToken " + imp.Target, Details: details,
				sends: sentParameters(imp.Parameters)})
		}

	case azure.ProviderName:
		imp := c.Impersonation
		// The source's token is the client assertion of the app's hop: it
		// is for the exchange audience, whatever the object asks for.
		forExchange := ""
		if imp != nil {
			forExchange = ", for scope " + azure.TokenExchangeAudience + "/.default"
		}
		if !bySA {
			d.source += " (Azure workload identity)"
			d.hops = append(d.hops, hop{Call: "controller credentials",
				Details: "Azure workload identity of the controller pod" + forExchange})
		} else {
			d.hops = append(d.hops, tokenRequest, hop{Call: "Microsoft Entra ID token exchange",
				Details: "for tenant/client " + c.Source.Identity + forExchange})
		}
		if imp != nil {
			d.scopes = f.scopes
			tenant, _ := parameter(imp.Parameters, "tenantID")
			d.hops = append(d.hops, hop{Call: "Entra client credentials, app " + imp.Target,
				Details: fmt.Sprintf("in tenant %s, client assertion = the source token, scopes %s", tenant.Value,
					strings.Join(d.scopes, ", "))})
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

// parameter returns the parameter of params that field sets.
func parameter(params []auth.Parameter, field string) (auth.Parameter, bool) {
	for _, p := range params {
		if p.Field == field {
			return p, true
		}
	}
	return auth.Parameter{}, false
}

// computedParameters are the parameters whose value the library computes
// from the annotation's (seconds from a duration), rather than sends as
// the tenant wrote it: shown unquoted.
var computedParameters = map[string]bool{"duration": true, "lifetime": true}

// sentParameters shows each parameter as the API receives it, by the
// API's name: "ExternalId 'my-app'", "DurationSeconds 1800",
// "Tags ['team'='payments']". Tenant text is quoted and escaped.
func sentParameters(params []auth.Parameter) []string {
	var out []string
	for _, p := range params {
		if !p.IsList() {
			v := quote.Tenant(p.Value)
			if computedParameters[p.Field] {
				v = quote.Clean(p.Value, quote.MaxBytes)
			}
			out = append(out, p.SentAs+" "+v)
			continue
		}
		values := make([]string, len(p.Values))
		for i, v := range p.Values {
			values[i] = quote.Tenant(v)
			if p.Keys != nil {
				values[i] = quote.Tenant(p.Keys[i]) + "=" + values[i]
			}
		}
		out = append(out, p.SentAs+" ["+strings.Join(values, ", ")+"]")
	}
	return out
}
