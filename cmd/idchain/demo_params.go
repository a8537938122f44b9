package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	corev1 "k8s.io/api/core/v1"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/fakes"
	"github.com/identitychain/auth/internal/quote"
)

// demoSent is what the impersonation call of a case with request
// parameters sent, as the fake recorded it, and what came of it.
type demoSent struct {
	// call is the call, as explain names it.
	call string
	// parameters are the parameters the fake received, as explain shows
	// them.
	parameters []string
	// sessionTags are the tags of the session the fake issued (AWS).
	sessionTags string
	// resolved says which tenant a verified domain named (Azure).
	resolved string
	// lasts is how long the token lasts, to the minute.
	lasts time.Duration
}

// demoMark counts the impersonation calls the fakes have recorded, so the
// ones of a run can be told apart.
type demoMark struct{ sts, iam, entra int }

func (w *demoWorld) mark() demoMark {
	return demoMark{len(w.sts.Calls()), len(w.iam.Calls()), len(w.entra.Calls())}
}

// checkSent compares the parameters the fake received on the case's
// impersonation call since mark with the ones the library reports for the
// ServiceAccount's annotation and the object's options opts, which explain
// shows: the demo passes only when the cloud received what explain
// promised. It returns "" when they agree, or how they differ.
func (w *demoWorld) checkSent(p auth.Provider, sa *corev1.ServiceAccount, since demoMark, token fluxauth.Token,
	opts ...fluxauth.Option) (*demoSent, string) {
	imp, err := p.ParseImpersonation(*sa, append([]fluxauth.Option{fluxauth.WithSTSRegion(demoRegion)}, opts...)...)
	if err != nil || imp == nil || len(imp.Parameters) == 0 {
		return nil, "" // nothing promised
	}
	var got []auth.Parameter
	sent := &demoSent{lasts: token.GetDuration().Round(time.Minute)}
	switch p.GetName() {
	case aws.ProviderName:
		calls := w.sts.Calls()[since.sts:]
		i := slices.IndexFunc(calls, func(c fakes.AWSSTSCall) bool { return c.Action == "AssumeRole" && c.Err == "" })
		if i < 0 {
			return nil, "the fake STS recorded no AssumeRole it accepted"
		}
		c := calls[i]
		sent.call, got = "sts:AssumeRole "+c.RoleARN, awsReceived(c)
		if c.SessionTags != nil {
			sent.sessionTags = tagList(c.SessionTags)
		}
	case azure.ProviderName:
		calls := w.entra.Calls()[since.entra:]
		i := slices.IndexFunc(calls, func(c fakes.EntraCall) bool { return c.ClientID == imp.Target && c.Err == "" })
		if i < 0 {
			return nil, "the fake Entra recorded no token request of the app it accepted"
		}
		c := calls[i]
		sent.call, got = "Entra client credentials, app "+c.ClientID, azureReceived(c)
		// azidentity asks the OpenID configuration of the tenant the
		// annotation names for its token endpoint, which is under the
		// tenant's ID: a verified domain arrives there as the ID.
		if want, ok := parameter(imp.Parameters, "tenantID"); ok && want.Value != c.Tenant &&
			demoAzureTenantOf(want.Value) == c.Tenant {
			got[0].Value = want.Value
			sent.resolved = fmt.Sprintf("Entra resolved %s to tenant %s, whose token endpoint its OpenID configuration names",
				quote.Tenant(want.Value), quote.Tenant(c.Tenant))
		}
	default:
		calls := w.iam.Calls()[since.iam:]
		i := slices.IndexFunc(calls, func(c fakes.GCPIAMCall) bool { return c.Target == imp.Target && c.Err == "" })
		if i < 0 {
			return nil, "the fake IAM Credentials recorded no generateAccessToken of the target it accepted"
		}
		c := calls[i]
		sent.call, got = "iamcredentials generateAccessToken "+c.Target, gcpReceived(c)
	}
	sent.parameters = sentParameters(got)

	// Every parameter promised was received as promised, and on AWS,
	// where nothing is sent by default, nothing else was.
	for _, want := range imp.Parameters {
		i := slices.IndexFunc(got, func(g auth.Parameter) bool { return g.SentAs == want.SentAs })
		if i < 0 {
			return sent, fmt.Sprintf("the fake received no %s", want.SentAs)
		}
		if have, wanted := sentParameters(got[i : i+1])[0], sentParameters([]auth.Parameter{want})[0]; have != wanted {
			return sent, fmt.Sprintf("the fake received %s, explain shows %s", have, wanted)
		}
		if asked, ok := askedLifetime(want); ok && sent.lasts != asked {
			return sent, fmt.Sprintf("the token lasts %s, %s asked for %s", minutes(sent.lasts), want.SentAs, minutes(asked))
		}
	}
	if p.GetName() == aws.ProviderName && len(got) != len(imp.Parameters) {
		return sent, fmt.Sprintf("the fake received %s, the annotation sets %s", strings.Join(sent.parameters, ", "),
			strings.Join(sentParameters(imp.Parameters), ", "))
	}
	return sent, ""
}

// askedLifetime is the lifetime a duration or lifetime parameter asks for.
func askedLifetime(p auth.Parameter) (time.Duration, bool) {
	switch p.SentAs {
	case "DurationSeconds":
		n, err := strconv.Atoi(p.Value)
		return time.Duration(n) * time.Second, err == nil
	case "lifetime":
		d, err := time.ParseDuration(p.Value)
		return d, err == nil
	}
	return 0, false
}

// awsReceived reads the parameters of an AssumeRole as the fake STS
// recorded them.
func awsReceived(c fakes.AWSSTSCall) []auth.Parameter {
	var out []auth.Parameter
	if c.ExternalID != "" {
		out = append(out, auth.Parameter{Field: "externalID", SentAs: "ExternalId", Value: c.ExternalID})
	}
	if c.DurationSeconds != 0 {
		out = append(out, auth.Parameter{Field: "duration", SentAs: "DurationSeconds", Value: strconv.Itoa(c.DurationSeconds)})
	}
	if c.Tags != nil {
		keys := slices.Sorted(maps.Keys(c.Tags))
		values := make([]string, len(keys))
		for i, k := range keys {
			values[i] = c.Tags[k]
		}
		out = append(out, auth.Parameter{Field: "sessionTags", SentAs: "Tags", Keys: keys, Values: values})
	}
	if c.TransitiveTagKeys != nil {
		out = append(out, auth.Parameter{Field: "transitiveTagKeys", SentAs: "TransitiveTagKeys", Values: c.TransitiveTagKeys})
	}
	if c.PolicyARNs != nil {
		out = append(out, auth.Parameter{Field: "policyARNs", SentAs: "PolicyArns", Values: c.PolicyARNs})
	}
	if c.Policy != "" {
		out = append(out, auth.Parameter{Field: "policy", SentAs: "Policy", Value: c.Policy})
	}
	return out
}

// azureReceived reads the parameters of a client credentials request as
// the fake Entra recorded them: the tenant of the request's path, as sent
// (an ID or a verified domain), and the scopes.
func azureReceived(c fakes.EntraCall) []auth.Parameter {
	return []auth.Parameter{
		{Field: "tenantID", SentAs: "tenant", Value: c.Tenant},
		{Field: "scopes", SentAs: "scope", Values: c.Scopes},
	}
}

// gcpReceived reads the parameters of a generateAccessToken as the fake
// IAM Credentials recorded them. It records the email of each delegate;
// the request names it projects/-/serviceAccounts/<email>.
func gcpReceived(c fakes.GCPIAMCall) []auth.Parameter {
	var out []auth.Parameter
	if c.Delegates != nil {
		names := make([]string, len(c.Delegates))
		for i, d := range c.Delegates {
			names[i] = "projects/-/serviceAccounts/" + d
		}
		out = append(out, auth.Parameter{Field: "delegates", SentAs: "delegates", Values: names})
	}
	out = append(out, auth.Parameter{Field: "lifetime", SentAs: "lifetime", Value: c.Lifetime},
		auth.Parameter{Field: "scopes", SentAs: "scope", Values: c.Scopes})
	return out
}

// tagList shows tags sorted by key, quoted: 'team'='payments', ...
func tagList(tags map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		parts = append(parts, quote.Tenant(k)+"="+quote.Tenant(tags[k]))
	}
	return strings.Join(parts, ", ")
}
