package cloudinit

import "errors"

// ErrInvalid matches every validation error from this package under
// errors.Is; the API layer maps it to 400 Bad Request.
var ErrInvalid = errors.New("invalid cloud-init input")

// ValidationError reports input that cannot go into a seed.
type ValidationError struct {
	Field  string // "user-data", "ssh-key[2]", "instance-id", ...
	Reason string // human-readable, safe to show to the API client
	Err    error  // underlying cause (e.g. a YAML parse error), may be nil
}

func (e *ValidationError) Error() string {
	msg := "cloudinit: invalid " + e.Field + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying cause, if any.
func (e *ValidationError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrInvalid].
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, reason string, err error) *ValidationError {
	return &ValidationError{Field: field, Reason: reason, Err: err}
}
