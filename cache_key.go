package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// KeyInput is one named input of a cache key. Keys are the SHA-256 of the
// JSON encoding of their fields, so list values keep their boundaries
// (["a,b"] and ["a","b"] differ) and no value can imitate another field.
type KeyInput struct {
	Name  string `json:"n"`
	Value any    `json:"v"`
}

func hashKey(fields ...KeyInput) string {
	b, err := json.Marshal(fields)
	if err != nil {
		// Values are strings, bools and string slices: they always encode.
		panic("auth: cannot encode cache key: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// SourceKeyInputs returns every input of the cache key of the chain's source
// credentials, in order, for people debugging which objects share a token.
// audiences are the ServiceAccount token audiences (ignored for a
// controller source).
func (c *Chain) SourceKeyInputs(audiences []string) []KeyInput {
	o := c.opts
	fields := []KeyInput{
		{"provider", c.Provider},
		{"source", string(c.Source.Kind)},
	}
	if c.Source.Kind == SourceServiceAccount {
		fields = append(fields,
			KeyInput{"serviceAccountNamespace", c.Source.ServiceAccount.Namespace},
			KeyInput{"serviceAccountName", c.Source.ServiceAccount.Name},
			KeyInput{"providerIdentity", c.Source.Identity},
			KeyInput{"audiences", audiences},
		)
	} else {
		fields = append(fields, KeyInput{"audiences", o.Audiences})
	}
	proxy := ""
	if o.ProxyURL != nil {
		proxy = o.ProxyURL.String()
	}
	return append(fields,
		KeyInput{"scopes", o.Scopes},
		KeyInput{"stsRegion", o.STSRegion},
		KeyInput{"stsEndpoint", o.STSEndpoint},
		KeyInput{"proxyURL", proxy},
		KeyInput{"caData", o.CAData},
	)
}

func (c *Chain) sourceKey(audiences []string) string {
	return hashKey(c.SourceKeyInputs(audiences)...)
}

// targetKey adds the impersonation to the source key. The ServiceAccount is
// part of it even when the controller is the source, because the session
// name (and so the token) names it.
func (c *Chain) targetKey(sourceKey string) string {
	return hashKey(append([]KeyInput{{"source", sourceKey}}, c.TargetKeyInputs()...)...)
}

// TargetKeyInputs returns the inputs the impersonation adds to the source
// key, or nil when the chain impersonates nobody.
func (c *Chain) TargetKeyInputs() []KeyInput {
	imp := c.Impersonation
	if imp == nil {
		return nil
	}
	return []KeyInput{
		{"annotation", imp.Annotation},
		{"serviceAccountNamespace", imp.ServiceAccount.Namespace},
		{"serviceAccountName", imp.ServiceAccount.Name},
		{"target", imp.Target},
	}
}
