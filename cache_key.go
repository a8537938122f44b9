package auth

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/identitychain/auth/internal/inspect"
)

// keyInput is one named input of a cache key, as internal/inspect shows it.
type keyInput = inspect.KeyInput

func init() {
	inspect.SourceKeyInputs = func(chain any, audiences []string) []inspect.KeyInput {
		var l keyList
		chain.(*Chain).writeSourceKey(&l, audiences)
		return l
	}
	inspect.TargetKeyInputs = func(chain any) []inspect.KeyInput {
		c := chain.(*Chain)
		if c.Impersonation == nil {
			return nil
		}
		var l keyList
		c.writeTargetKey(&l)
		return l
	}
	inspect.Lockdown = func(opts any) bool { return newOptions(opts.([]Option)...).lockdown() }
}

// keyWriter receives the inputs of a key. The chain describes its inputs
// once, to a keyHash on every lookup and to a keyList for people.
type keyWriter interface {
	str(name, value string)
	list(name string, value []string)
	// annotation is an annotation's value, or its absence, which differs
	// from an empty value.
	annotation(key, value string, present bool)
}

// keyHash encodes inputs unambiguously: each name and value is written with
// its length, lists with a type tag and their count, so list values keep
// their boundaries (["a,b"] and ["a","b"] differ) and no value can imitate
// another input. It runs on every lookup, hits included, so it appends to
// one buffer and hashes once.
type keyHash struct{ buf []byte }

func (h *keyHash) str(name, value string) {
	h.string(name)
	h.buf = append(h.buf, 's')
	h.string(value)
}

func (h *keyHash) annotation(key, value string, present bool) {
	h.string(key)
	if !present {
		h.buf = append(h.buf, 'a')
		return
	}
	h.buf = append(h.buf, 'p')
	h.string(value)
}

func (h *keyHash) list(name string, value []string) {
	h.string(name)
	h.buf = append(h.buf, 'l')
	h.buf = binary.AppendUvarint(h.buf, uint64(len(value)))
	for _, v := range value {
		h.string(v)
	}
}

func (h *keyHash) string(s string) {
	h.buf = binary.AppendUvarint(h.buf, uint64(len(s)))
	h.buf = append(h.buf, s...)
}

func (h *keyHash) sum() string {
	sum := sha256.Sum256(h.buf)
	return hex.EncodeToString(sum[:])
}

// keyList collects the inputs for display.
type keyList []keyInput

func (l *keyList) str(name, value string) { *l = append(*l, keyInput{Name: name, Value: value}) }
func (l *keyList) list(name string, value []string) {
	*l = append(*l, keyInput{Name: name, Value: value})
}
func (l *keyList) annotation(key, value string, present bool) {
	if present {
		*l = append(*l, keyInput{Name: "annotation " + key, Value: value})
	} else {
		*l = append(*l, keyInput{Name: "annotation " + key})
	}
}

// hashKey hashes explicit inputs, for keys built outside the chain.
func hashKey(inputs ...keyInput) string {
	h := keyHash{buf: make([]byte, 0, 256)}
	for _, in := range inputs {
		switch v := in.Value.(type) {
		case string:
			h.str(in.Name, v)
		case []string:
			h.list(in.Name, v)
		default:
			panic(fmt.Sprintf("auth: cache key input %s has unsupported type %T", in.Name, in.Value))
		}
	}
	return h.sum()
}

// writeSourceKey describes every input of the source credentials' key.
// audiences are the ServiceAccount token audiences (ignored for a
// controller source).
func (c *Chain) writeSourceKey(w keyWriter, audiences []string) {
	o := c.opts
	w.str("provider", c.Provider)
	w.str("source", string(c.Source.Kind))
	if c.Source.Kind == SourceServiceAccount {
		w.str("serviceAccountNamespace", c.Source.ServiceAccount.Namespace)
		w.str("serviceAccountName", c.Source.ServiceAccount.Name)
		w.str("providerIdentity", c.Source.Identity)
		for _, a := range c.provider.SourceAnnotations() {
			writeAnnotation(w, c.serviceAccount.Annotations, a)
		}
		w.list("audiences", audiences)
	} else {
		w.list("audiences", o.Audiences)
	}
	w.list("scopes", c.sourceScopesOf())
	w.str("stsRegion", o.STSRegion)
	w.str("stsEndpoint", o.STSEndpoint)
	// Shelling out may reach another identity (a CLI's login). The proxy,
	// the CA data and a Git URL change how a call travels or what is built
	// from the token, never whose token it is: they stay out, so
	// GetAccessToken, GetArtifactRegistryCredentials and GetRESTConfig of
	// one chain share its tokens.
	w.str("allowShellOut", strconv.FormatBool(o.AllowShellOut))
}

// writeAnnotation writes an annotation's value and whether it is present:
// some providers tell an absent annotation from an empty one. The key is
// the input's name as it is: annotation keys hold a '/', no other name does.
func writeAnnotation(w keyWriter, annotations map[string]string, key string) {
	v, ok := annotations[key]
	w.annotation(key, v, ok)
}

// writeTargetKey describes what the impersonation adds to the source key.
// The ServiceAccount is part of it even when the controller is the source,
// because the session name (and so the token) names it.
func (c *Chain) writeTargetKey(w keyWriter) {
	imp := c.Impersonation
	w.str("serviceAccountNamespace", imp.ServiceAccount.Namespace)
	w.str("serviceAccountName", imp.ServiceAccount.Name)
	w.str("target", imp.Target)
	if c.sourceScopes != nil {
		// The source key holds the provider's scopes, not the caller's,
		// which the target's token is for.
		w.list("callerScopes", c.opts.Scopes)
	}
	for _, p := range imp.Parameters {
		if p.Keys != nil {
			w.list(p.Field+" keys", p.Keys)
		}
		if p.IsList() {
			w.list(p.Field, p.Values)
		} else {
			w.str(p.Field, p.Value)
		}
	}
	// What the operator's policy adds to the session names the tenant,
	// whose namespace and name are above.
	if a := imp.Attribution; a.TenantSessionTags || a.SourceIdentity {
		w.str("policy tenantSessionTags", strconv.FormatBool(a.TenantSessionTags))
		w.str("policy sourceIdentity", strconv.FormatBool(a.SourceIdentity))
	}
	// The annotation's name and value as written: whatever field the
	// annotation gains, a change to it changes the key. Spelling it
	// differently costs a miss, never a wrong token.
	writeAnnotation(w, c.serviceAccount.Annotations, imp.Annotation)
}

func (c *Chain) sourceKey(audiences []string) string {
	h := keyHash{buf: make([]byte, 0, 512)}
	c.writeSourceKey(&h, audiences)
	return h.sum()
}

func (c *Chain) targetKey(sourceKey string) string {
	h := keyHash{buf: make([]byte, 0, 512)}
	h.str("source", sourceKey)
	c.writeTargetKey(&h)
	return h.sum()
}
