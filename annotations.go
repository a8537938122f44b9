package auth

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth/internal/annotation"
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
// annotation is absent. The value is tenant-written, so it is read as a
// YAML subset with one meaning only, bounded in size, time and memory
// before it is parsed (see internal/annotation): one document, no anchors,
// aliases, merge keys or tags, booleans only true/false, no nulls. A
// present but empty value, unknown fields, wrong types and duplicate
// fields are errors: a typo must never silently change which identity is
// used.
func DecodeAnnotation(sa corev1.ServiceAccount, key string, out any) (bool, error) {
	value, ok := sa.Annotations[key]
	if !ok {
		return false, nil
	}
	if err := annotation.Decode(value, out); err != nil {
		return true, &AnnotationError{Key: key, ServiceAccount: ServiceAccountKey(sa), Reason: err.Error()}
	}
	return true, nil
}
