package netdev

import "errors"

// Sentinel errors; callers match them with errors.Is (the api maps them to status codes).
var (
	// ErrInvalid: the request is malformed (bad prefix, address outside the subnet, bad name).
	ErrInvalid = errors.New("invalid")
	// ErrConflict: the request is well formed but clashes with existing state (address in
	// use, an interface name taken by another kind of link, a tap in use by a process).
	ErrConflict = errors.New("conflict")
	// ErrExhausted: no free address is left in the pool.
	ErrExhausted = errors.New("address pool exhausted")
)
