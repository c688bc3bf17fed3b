package storage

import (
	"errors"
	"fmt"
)

// Sentinel errors the API maps to HTTP statuses. Wrapped errors carry the detail.
var (
	// ErrInvalid: the request or the uploaded content is not acceptable (400).
	ErrInvalid = errors.New("invalid request")
	// ErrTooLarge: an upload exceeded its size limit (413).
	ErrTooLarge = errors.New("too large")
)

// invalid returns an error wrapping ErrInvalid with a reason.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
