package qmp

import (
	"context"
	"fmt"
	"time"
)

// execPollInterval is how often Agent.Run polls guest-exec-status.
const execPollInterval = 100 * time.Millisecond

// AgentInfo is the reply of guest-info.
type AgentInfo struct {
	Version  string         `json:"version"`
	Commands []AgentCommand `json:"supported_commands"`
}

// AgentCommand is one command the agent knows.
type AgentCommand struct {
	Name            string `json:"name"`
	Enabled         bool   `json:"enabled"`
	SuccessResponse bool   `json:"success-response"`
}

// OSInfo is the reply of guest-get-osinfo; fields the guest does not know
// are empty.
type OSInfo struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	PrettyName    string `json:"pretty-name"`
	Version       string `json:"version"`
	VersionID     string `json:"version-id"`
	Variant       string `json:"variant"`
	VariantID     string `json:"variant-id"`
	KernelRelease string `json:"kernel-release"`
	KernelVersion string `json:"kernel-version"`
	Machine       string `json:"machine"`
}

// Interface is a guest network interface (guest-network-get-interfaces).
type Interface struct {
	Name            string      `json:"name"`
	HardwareAddress string      `json:"hardware-address"`
	IPAddresses     []IPAddress `json:"ip-addresses"`
}

// IPAddress is an address of a guest Interface.
type IPAddress struct {
	Type    string `json:"ip-address-type"` // "ipv4" or "ipv6"
	Address string `json:"ip-address"`
	Prefix  int    `json:"prefix"`
}

// ExecStatus is the reply of guest-exec-status; output is base64-decoded.
type ExecStatus struct {
	Exited          bool   `json:"exited"`
	ExitCode        int    `json:"exitcode"`
	Signal          int    `json:"signal"`
	Stdout          []byte `json:"out-data"`
	Stderr          []byte `json:"err-data"`
	StdoutTruncated bool   `json:"out-truncated"`
	StderrTruncated bool   `json:"err-truncated"`
}

// ExecResult is the outcome of Agent.Run.
type ExecResult struct {
	ExitCode int
	Signal   int // non-zero if killed by a signal
	Stdout   []byte
	Stderr   []byte
}

// Ping checks that the agent answers.
func (a *Agent) Ping(ctx context.Context) error { return a.call(ctx, "guest-ping", nil, nil) }

// Info reports the agent's version and commands.
func (a *Agent) Info(ctx context.Context) (AgentInfo, error) {
	var info AgentInfo
	err := a.call(ctx, "guest-info", nil, &info)
	return info, err
}

// OSInfo reports the guest operating system.
func (a *Agent) OSInfo(ctx context.Context) (OSInfo, error) {
	var info OSInfo
	err := a.call(ctx, "guest-get-osinfo", nil, &info)
	return info, err
}

// HostName reports the guest's host name.
func (a *Agent) HostName(ctx context.Context) (string, error) {
	var reply struct {
		HostName string `json:"host-name"`
	}
	err := a.call(ctx, "guest-get-host-name", nil, &reply)
	return reply.HostName, err
}

// NetworkInterfaces lists the guest's network interfaces and addresses.
func (a *Agent) NetworkInterfaces(ctx context.Context) ([]Interface, error) {
	var ifaces []Interface
	err := a.call(ctx, "guest-network-get-interfaces", nil, &ifaces)
	return ifaces, err
}

// Exec starts path with args and env ("NAME=value") in the guest, feeding
// it input, and returns its pid for ExecStatus. With captureOutput, stdout
// and stderr are kept for ExecStatus.
func (a *Agent) Exec(ctx context.Context, path string, args, env []string, input []byte, captureOutput bool) (int, error) {
	req := struct {
		Path          string   `json:"path"`
		Args          []string `json:"arg,omitempty"`
		Env           []string `json:"env,omitempty"`
		Input         []byte   `json:"input-data,omitempty"` // base64 by encoding/json
		CaptureOutput bool     `json:"capture-output"`
	}{path, args, env, input, captureOutput}
	var reply struct {
		PID int `json:"pid"`
	}
	err := a.call(ctx, "guest-exec", req, &reply)
	return reply.PID, err
}

// ExecStatus reports on a process started by Exec.
func (a *Agent) ExecStatus(ctx context.Context, pid int) (ExecStatus, error) {
	var st ExecStatus
	err := a.call(ctx, "guest-exec-status", map[string]int{"pid": pid}, &st)
	return st, err
}

// Run runs path with args in the guest, feeding it input, and waits for it
// to exit, polling every 100 ms until ctx ends.
func (a *Agent) Run(ctx context.Context, path string, args []string, input []byte) (ExecResult, error) {
	pid, err := a.Exec(ctx, path, args, nil, input, true)
	if err != nil {
		return ExecResult{}, err
	}
	tick := time.NewTicker(execPollInterval)
	defer tick.Stop()
	for {
		st, err := a.ExecStatus(ctx, pid)
		if err != nil {
			return ExecResult{}, err
		}
		if st.Exited {
			return ExecResult{ExitCode: st.ExitCode, Signal: st.Signal, Stdout: st.Stdout, Stderr: st.Stderr}, nil
		}
		select {
		case <-ctx.Done():
			return ExecResult{}, fmt.Errorf("qmp: guest-exec %s (pid %d): %w", path, pid, ctx.Err())
		case <-tick.C:
		}
	}
}

// Shutdown asks the guest to shut down; mode is "powerdown", "reboot" or
// "halt" ("" means powerdown). The agent replies only on failure, so
// silence for a short while, or the connection closing, is success.
func (a *Agent) Shutdown(ctx context.Context, mode string) error {
	var args any
	if mode != "" {
		args = map[string]string{"mode": mode}
	}
	return a.do(ctx, "guest-shutdown", args, nil, true)
}

// FSFreeze freezes guest filesystems and reports how many were frozen.
func (a *Agent) FSFreeze(ctx context.Context) (int, error) {
	var n int
	err := a.call(ctx, "guest-fsfreeze-freeze", nil, &n)
	return n, err
}

// FSThaw thaws guest filesystems and reports how many were thawed.
func (a *Agent) FSThaw(ctx context.Context) (int, error) {
	var n int
	err := a.call(ctx, "guest-fsfreeze-thaw", nil, &n)
	return n, err
}

// FSFreezeStatus reports "frozen" or "thawed".
func (a *Agent) FSFreezeStatus(ctx context.Context) (string, error) {
	var s string
	err := a.call(ctx, "guest-fsfreeze-status", nil, &s)
	return s, err
}
