// Package qmp speaks QEMU's machine protocol (QMP) and the qemu-guest-agent protocol.
//
// [Monitor] is a QMP client that multiplexes concurrent commands over one
// socket by "id", never blocks on slow event consumers and satisfies
// go-qemu's qmp.Monitor interface, so go-qemu's raw and qemu helpers run
// on top of it. [Agent] talks to qemu-guest-agent through the chardev
// socket that backs its virtio-serial port.
package qmp
