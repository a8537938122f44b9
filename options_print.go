package auth

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/identitychain/auth/internal/redact"
)

// String describes the options for people: what a call asks for, never a
// secret. The proxy and Git URLs lose their user info and the CA data shows
// only its length.
func (o Options) String() string {
	var b strings.Builder
	b.WriteString("{")
	for i, a := range o.attrs() {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:%v", a.Key, a.Value)
	}
	b.WriteString("}")
	return b.String()
}

// Format makes every fmt verb (%v, %+v, %#v, %s, ...) print String, so no
// verb can reach the fields that hold secrets.
func (o Options) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", o.String())
		return
	}
	_, _ = f.Write([]byte(o.String()))
}

// LogValue implements slog.LogValuer with the same redaction as String.
func (o Options) LogValue() slog.Value { return slog.GroupValue(o.attrs()...) }

// attrs lists the set fields, secrets redacted.
func (o Options) attrs() []slog.Attr {
	var as []slog.Attr
	add := func(key string, set bool, v any) {
		if set {
			as = append(as, slog.Any(key, v))
		}
	}
	add("serviceAccountNamespace", o.ServiceAccountNamespace != "", o.ServiceAccountNamespace)
	add("serviceAccountName", o.ServiceAccountName != "", o.ServiceAccountName)
	add("defaultServiceAccount", o.DefaultServiceAccount != "", o.DefaultServiceAccount)
	add("audiences", len(o.Audiences) > 0, o.Audiences)
	add("scopes", len(o.Scopes) > 0, o.Scopes)
	add("stsRegion", o.STSRegion != "", o.STSRegion)
	add("stsEndpoint", o.STSEndpoint != "", o.STSEndpoint)
	add("proxyURL", o.ProxyURL != nil, redact.URL(o.ProxyURL))
	add("gitURL", o.GitURL != nil, redact.URL(o.GitURL))
	add("caData", o.CAData != "", fmt.Sprintf("(%d bytes)", len(o.CAData)))
	add("clusterResource", o.ClusterResource != "", o.ClusterResource)
	add("clusterAddress", o.ClusterAddress != "", o.ClusterAddress)
	add("allowShellOut", o.AllowShellOut, true)
	add("client", o.Client != nil, true)
	add("tokenCache", o.TokenCache != nil, true)
	add("upstreamCache", o.Cache != nil, true)
	obj := o.InvolvedObject
	add("involvedObject", obj.Name != "", obj.Kind+" "+obj.Namespace+"/"+obj.Name)
	return as
}
