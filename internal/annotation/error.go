package annotation

// Error is a problem with an annotation value, worded for the person who
// wrote it: its text is lowercase, says what to fix, and quotes what the
// tenant wrote only escaped and cut (internal/quote), so it is a few hundred
// bytes at most whatever the value and safe for logs, terminals and status
// conditions. Decode returns no other error for a value it refuses.
type Error struct {
	// Field is the path of the field at fault, such as 'useServiceAccount'
	// or 'sessionTags[2].key', or empty when the fault is the value's as a
	// whole. It is tenant text when it names an unknown field or map key.
	Field string
	// Line is the 1-based line of the value at fault, or 0 when none
	// applies.
	Line int
	// Reason is the error text.
	Reason string
}

func (e *Error) Error() string { return e.Reason }
