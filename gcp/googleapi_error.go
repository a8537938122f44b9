package gcp

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/api/googleapi"
)

// googleError is a *googleapi.Error on one line: its own Error() adds the
// details as indented JSON, which makes a Kubernetes status condition hard
// to read. errors.As still reaches the *googleapi.Error.
type googleError struct{ err *googleapi.Error }

func (e googleError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.err.Code)
	if e.err.Message != "" {
		fmt.Fprintf(&b, ": %s", strings.TrimSuffix(e.err.Message, "."))
	}
	var reasons []string
	for _, d := range e.err.Details {
		if m, ok := d.(map[string]any); ok {
			if r, ok := m["reason"].(string); ok && r != "" {
				reasons = append(reasons, r)
			}
		}
	}
	for _, item := range e.err.Errors {
		if item.Reason != "" {
			reasons = append(reasons, item.Reason)
		}
	}
	if len(reasons) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(reasons, ", "))
	}
	return b.String()
}

func (e googleError) Unwrap() error { return e.err }

// oneLine returns err with any *googleapi.Error in it shown on one line.
func oneLine(err error) error {
	var apiErr *googleapi.Error
	if !errors.As(err, &apiErr) {
		return err
	}
	return googleError{apiErr}
}
