package api

import "time"

// Wire types of the browser consoles. Like types.go: add fields freely, never rename or
// remove one.

// CodeForbidden is the error code of a request that is authenticated but not allowed, such
// as a console WebSocket opened from a page of a foreign origin.
const CodeForbidden = "forbidden"

// ConsoleTicket is the answer to POST /api/v1/vms/{name}/console-ticket: a single-use
// credential for one console WebSocket of that VM (browsers cannot set an Authorization
// header on a WebSocket). It is valid until ExpiresAt for either URL, once.
type ConsoleTicket struct {
	Ticket    string    `json:"ticket"`
	ExpiresAt time.Time `json:"expires_at"`
	VNCURL    string    `json:"vnc_url"`    // WebSocket path of the VNC console (subprotocol "binary")
	SerialURL string    `json:"serial_url"` // WebSocket path of the serial console
}
