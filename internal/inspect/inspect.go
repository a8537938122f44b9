// Package inspect shows the library's internals to its own tools: the
// inputs of a chain's cache keys and whether options mean multi-tenancy
// lockdown. idchain explains chains with it and the tests pin keys with it;
// controllers have no use for it, so it is not part of the public API.
//
// The root package fills in the functions when it is initialized, since
// this package cannot import it.
package inspect

// KeyInput is one named input of a cache key. Values are strings or string
// lists, or nil for an annotation that is absent.
type KeyInput struct {
	// Name names the input, e.g. "stsRegion" or "annotation <key>".
	Name string `json:"name"`
	// Value is a string, a []string, or nil.
	Value any `json:"value"`
}

var (
	// SourceKeyInputs returns every input of the cache key of the source
	// credentials of chain (an *auth.Chain), in order; audiences are the
	// ServiceAccount token's (ignored for a controller source).
	SourceKeyInputs func(chain any, audiences []string) []KeyInput
	// TargetKeyInputs returns the inputs the impersonation of chain adds to
	// the source key, or nil when it impersonates nobody.
	TargetKeyInputs func(chain any) []KeyInput
	// Lockdown reports whether opts (a []auth.Option) turn multi-tenancy
	// lockdown on, the process-wide upstream settings included.
	Lockdown func(opts any) bool
)
