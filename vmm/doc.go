// Package vmm owns virtual machines on one host: the VM spec, the pure qemu argv builder,
// launching detached qemu processes, the lifecycle state machine fed by QMP events, graceful
// and forced shutdown, restart policies, and reconciling with running qemu processes when
// lqd starts. It never imports net/http: package api translates requests into calls here.
package vmm
