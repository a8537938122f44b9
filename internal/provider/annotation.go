// Package provider holds what the aws, gcp and azure packages share to read
// the annotations of a ServiceAccount, so that each reads and refuses them
// the same way.
package provider

import (
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/internal/annotation"
)

// Key is the namespace/name of sa. Unlike client.ObjectKeyFromObject it does
// not take sa's address, which would move every ServiceAccount of every
// lookup to the heap.
func Key(sa corev1.ServiceAccount) client.ObjectKey {
	return client.ObjectKey{Namespace: sa.Namespace, Name: sa.Name}
}

// DecodeAnnotation strictly decodes the YAML value of annotation key of sa
// into out, a pointer to a struct with json tags, and reports false when
// the annotation is absent. The value is tenant-written, so it is read as
// the YAML subset of internal/annotation, bounded in size, time and memory
// before it is parsed. A present but empty value, unknown fields, wrong
// types and duplicate fields are an *auth.AnnotationError: a typo must
// never silently change which identity is used.
func DecodeAnnotation(sa corev1.ServiceAccount, key string, out any) (bool, error) {
	value, ok := sa.Annotations[key]
	if !ok {
		return false, nil
	}
	if err := annotation.Decode(value, out); err != nil {
		return true, Invalid(sa, key, err.Error())
	}
	return true, nil
}

// Invalid is the refusal of annotation key of sa for reason.
func Invalid(sa corev1.ServiceAccount, key, reason string) *auth.AnnotationError {
	return &auth.AnnotationError{Key: key, ServiceAccount: Key(sa), Reason: reason}
}
