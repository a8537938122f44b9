package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// keyField is one named input of a cache key. Keys are the SHA-256 of the
// JSON encoding of their fields, so list values keep their boundaries
// (["a,b"] and ["a","b"] differ) and no value can imitate another field.
type keyField struct {
	Name  string `json:"n"`
	Value any    `json:"v"`
}

func hashKey(fields ...keyField) string {
	b, err := json.Marshal(fields)
	if err != nil {
		// Values are strings, bools and string slices: they always encode.
		panic("auth: cannot encode cache key: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// keyInputs returns every input of the chain's token cache key, in order,
// for people debugging which objects share a token. audiences are the
// ServiceAccount token audiences, nil for a controller source.
func (c *Chain) keyInputs(audiences []string) []keyField {
	o := c.opts
	fields := []keyField{
		{"provider", c.Provider},
		{"source", string(c.Source.Kind)},
	}
	if c.Source.Kind == SourceServiceAccount {
		fields = append(fields,
			keyField{"serviceAccountNamespace", c.Source.ServiceAccount.Namespace},
			keyField{"serviceAccountName", c.Source.ServiceAccount.Name},
			keyField{"providerIdentity", c.Source.Identity},
			keyField{"audiences", audiences},
		)
	} else {
		fields = append(fields, keyField{"audiences", o.Audiences})
	}
	proxy := ""
	if o.ProxyURL != nil {
		proxy = o.ProxyURL.String()
	}
	return append(fields,
		keyField{"scopes", o.Scopes},
		keyField{"stsRegion", o.STSRegion},
		keyField{"stsEndpoint", o.STSEndpoint},
		keyField{"proxyURL", proxy},
		keyField{"caData", o.CAData},
	)
}

func (c *Chain) sourceKey(audiences []string) string {
	return hashKey(c.keyInputs(audiences)...)
}

// targetKey adds the impersonation to the source key. The ServiceAccount is
// part of it even when the controller is the source, because the session
// name (and so the token) names it.
func (c *Chain) targetKey(sourceKey string) string {
	imp := c.Impersonation
	return hashKey(
		keyField{"source", sourceKey},
		keyField{"annotation", imp.Annotation},
		keyField{"serviceAccountNamespace", imp.ServiceAccount.Namespace},
		keyField{"serviceAccountName", imp.ServiceAccount.Name},
		keyField{"target", imp.Target},
	)
}
