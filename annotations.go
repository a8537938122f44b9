package auth

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/identitychain/auth/internal/quote"
)

// ErrInvalidAnnotation is matched by every *AnnotationError.
var ErrInvalidAnnotation = errors.New("invalid annotation")

// AnnotationError says which annotation of which ServiceAccount is wrong and why.
type AnnotationError struct {
	Key            string
	ServiceAccount client.ObjectKey
	Reason         string
}

// Error quotes the ServiceAccount and cleans the reason: both can carry
// tenant-written text.
func (e *AnnotationError) Error() string {
	return fmt.Sprintf("invalid %s annotation on service account %s: %s",
		e.Key, quote.Tenant(e.ServiceAccount.String()), quote.Clean(e.Reason, quote.MaxErrorBytes))
}

// Unwrap makes errors.Is(err, ErrInvalidAnnotation) true.
func (e *AnnotationError) Unwrap() error { return ErrInvalidAnnotation }

// ServiceAccountKey is the namespace/name of sa. Unlike
// client.ObjectKeyFromObject it does not take sa's address, which would move
// every ServiceAccount of every lookup to the heap.
func ServiceAccountKey(sa corev1.ServiceAccount) client.ObjectKey {
	return client.ObjectKey{Namespace: sa.Namespace, Name: sa.Name}
}

// DecodeAnnotation strictly decodes the YAML value of annotation key into
// out, a pointer to a struct with json tags. It reports false when the
// annotation is absent. A present but empty value, unknown fields, wrong
// types and duplicate fields are errors: a typo must never silently change
// which identity is used.
func DecodeAnnotation(sa corev1.ServiceAccount, key string, out any) (bool, error) {
	value, ok := sa.Annotations[key]
	if !ok {
		return false, nil
	}
	fail := func(reason string) (bool, error) {
		return true, &AnnotationError{Key: key, ServiceAccount: ServiceAccountKey(sa), Reason: reason}
	}
	if strings.TrimSpace(value) == "" {
		return fail("the value is empty. remove the annotation or set its fields")
	}
	data, err := annotationJSON.convert(value)
	if err != nil {
		return fail(cleanYAMLError(err))
	}
	// Case-sensitive, unlike encoding/json: 'roleArn' is a typo to report.
	strict, err := kjson.UnmarshalStrict(data, out)
	if err != nil {
		return fail(cleanYAMLError(err))
	}
	if len(strict) > 0 {
		return fail(cleanYAMLError(errors.Join(strict...)))
	}
	return true, nil
}

// cleanYAMLError drops the layers of decoder wording that say nothing to a
// person editing a manifest.
func cleanYAMLError(err error) string {
	var parts []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(line, "yaml: unmarshal errors:"))
		for _, p := range []string{"error unmarshaling JSON: ", "while decoding JSON: ", "json: ", "yaml: "} {
			line = strings.ReplaceAll(line, p, "")
		}
		if line != "" {
			parts = append(parts, line)
		}
	}
	msg := strings.Join(parts, "; ")
	if strings.Contains(msg, "cannot unmarshal") && !strings.Contains(msg, "Go struct field") {
		return "the value must be a YAML mapping of fields, e.g. 'field: value'"
	}
	return msg
}

// annotationJSON memoizes the YAML to JSON conversion of annotation values.
// Annotations are parsed on every token lookup, cache hits included, and
// YAML parsing would dominate a hit; the same few values repeat across every
// object of a cluster. Only successes are kept, and the memo is emptied when
// full, so a tenant writing many distinct values cannot grow it without bound.
var annotationJSON = jsonMemo{m: map[string][]byte{}}

const jsonMemoMax = 4096

// jsonMemo is safe for concurrent use.
type jsonMemo struct {
	mu sync.RWMutex // guards m
	m  map[string][]byte
}

func (j *jsonMemo) convert(value string) ([]byte, error) {
	j.mu.RLock()
	data, ok := j.m[value]
	j.mu.RUnlock()
	if ok {
		return data, nil
	}
	data, err := yaml.YAMLToJSONStrict([]byte(value))
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	if len(j.m) >= jsonMemoMax {
		clear(j.m)
	}
	j.m[value] = data
	j.mu.Unlock()
	return data, nil
}
