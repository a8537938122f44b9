package auth

import (
	"errors"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth/internal/quote"
)

// ErrInvalidAnnotation is matched by every *AnnotationError.
var ErrInvalidAnnotation = errors.New("invalid annotation")

// AnnotationError says which annotation of which ServiceAccount is wrong and
// why. Plan returns it, wrapped, for a value it refuses: one that is not of
// the YAML subset the annotations are read as, has an unknown, missing or
// duplicate field, or a field the cloud would refuse.
type AnnotationError struct {
	// Key is the annotation, e.g. "aws.auth.fluxcd.io/assume-role".
	Key string
	// ServiceAccount carries the annotation.
	ServiceAccount client.ObjectKey
	// Reason says what is wrong and what to write instead.
	Reason string
}

// Error quotes the ServiceAccount and cleans the reason: both can carry
// tenant-written text.
func (e *AnnotationError) Error() string {
	return fmt.Sprintf("invalid %s annotation on service account %s: %s",
		e.Key, quote.Tenant(e.ServiceAccount.String()), quote.Clean(e.Reason, quote.MaxErrorBytes))
}

// Unwrap makes errors.Is(err, ErrInvalidAnnotation) true.
func (e *AnnotationError) Unwrap() error { return ErrInvalidAnnotation }
