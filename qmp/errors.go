package qmp

import (
	"errors"
	"fmt"
)

// ErrDisconnected is wrapped by every error caused by a lost or closed
// connection: commands pending when it dropped and commands issued after.
var ErrDisconnected = errors.New("disconnected")

// Error is an error reply from QEMU or from the guest agent.
type Error struct {
	Command string // command that failed, e.g. "blockdev-add"
	Class   string // QAPI error class, e.g. "GenericError", "CommandNotFound"
	Desc    string // human-readable description
}

func (e *Error) Error() string {
	return fmt.Sprintf("qmp: %s: %s: %s", e.Command, e.Class, e.Desc)
}

// errorBody is the "error" member of a reply.
type errorBody struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}
