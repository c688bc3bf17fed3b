package api

import "time"

// The wire types of the REST API under /api/v1. They are the contract that lq, lqcoord
// and the web UI share: add fields freely, never rename or remove one.

// Error is the body of every non-2xx response.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody says what went wrong: a stable machine-readable code and a message for people.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes.
const (
	CodeBadRequest   = "bad_request"  // malformed JSON, unknown fields
	CodeInvalid      = "invalid"      // a value fails validation
	CodeNotFound     = "not_found"    // no such resource
	CodeConflict     = "conflict"     // name taken, or wrong state for the action
	CodeInUse        = "in_use"       // cannot delete: something depends on it
	CodeTooLarge     = "too_large"    // request body over its limit
	CodeUnauthorized = "unauthorized" // missing or bad token
	CodeUnavailable  = "unavailable"  // e.g. the guest agent does not answer
	CodeInternal     = "internal"     // a bug or a host failure; see lqd's log
)

// VM is a virtual machine as the API shows it.
type VM struct {
	UUID          string     `json:"uuid"`
	Name          string     `json:"name"`
	Host          string     `json:"host"`
	State         string     `json:"state"`
	CPUs          int        `json:"cpus"`
	MemoryMiB     int        `json:"memory_mib"`
	DiskGiB       int        `json:"disk_gib"`
	Image         string     `json:"image"`
	SSHKeys       []string   `json:"ssh_keys,omitempty"`
	UserData      string     `json:"user_data,omitempty"`
	RestartPolicy string     `json:"restart_policy"`
	Autostart     bool       `json:"autostart"`
	Accel         string     `json:"accel,omitempty"`
	PID           int        `json:"pid,omitempty"`
	StartedAt     *time.Time `json:"started_at,omitempty"`
	UptimeSeconds int64      `json:"uptime_seconds,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	LastError     string     `json:"last_error,omitempty"`
	NICs          []NIC      `json:"nics,omitempty"`
	Disks         []VMDisk   `json:"disks,omitempty"` // attached volumes`
	Guest         *Guest     `json:"guest,omitempty"`
}

// NIC is a VM's network interface.
type NIC struct {
	Network        string   `json:"network"`
	MAC            string   `json:"mac"`
	IP             string   `json:"ip,omitempty"` // from IPAM
	Tap            string   `json:"tap"`
	SecurityGroups []string `json:"security_groups,omitempty"`
	GuestIPs       []string `json:"guest_ips,omitempty"` // as the guest agent reports them
}

// NICRequest asks for a NIC when creating a VM.
type NICRequest struct {
	Network        string   `json:"network"`
	IP             string   `json:"ip,omitempty"` // optional fixed address
	SecurityGroups []string `json:"security_groups,omitempty"`
}

// Guest is what the qemu-guest-agent reports; nil when no agent has answered.
type Guest struct {
	AgentVersion string           `json:"agent_version,omitempty"`
	OS           *GuestOS         `json:"os,omitempty"`
	Hostname     string           `json:"hostname,omitempty"`
	Interfaces   []GuestInterface `json:"interfaces,omitempty"`
	UpdatedAt    time.Time        `json:"updated_at"`
}

// GuestOS is guest-get-osinfo's answer.
type GuestOS struct {
	ID            string `json:"id,omitempty"`
	Name          string `json:"name,omitempty"`
	PrettyName    string `json:"pretty_name,omitempty"`
	Version       string `json:"version,omitempty"`
	KernelRelease string `json:"kernel_release,omitempty"`
	Machine       string `json:"machine,omitempty"`
}

// GuestInterface is one network interface inside the guest.
type GuestInterface struct {
	Name string   `json:"name"`
	MAC  string   `json:"mac,omitempty"`
	IPs  []string `json:"ips,omitempty"` // CIDR notation
}

// CreateVMRequest is the body of POST /api/v1/vms.
type CreateVMRequest struct {
	Name          string   `json:"name"`
	Image         string   `json:"image"`
	CPUs          int      `json:"cpus,omitempty"`       // default 1
	MemoryMiB     int      `json:"memory_mib,omitempty"` // default 512
	DiskGiB       int      `json:"disk_gib,omitempty"`   // default: the image's size
	SSHKeys       []string `json:"ssh_keys,omitempty"`
	UserData      string   `json:"user_data,omitempty"`
	RestartPolicy string   `json:"restart_policy,omitempty"` // never (default) | on-crash | always
	Autostart     bool     `json:"autostart,omitempty"`
	Start         bool     `json:"start,omitempty"`
	// NICs omitted: one NIC on the host's default network; [] for none.
	NICs []NICRequest `json:"nics,omitempty"`
}

// UpdateVMRequest is the body of PATCH /api/v1/vms/{name}; nil fields stay as they are.
// CPUs, memory and disk change only while the VM is stopped.
type UpdateVMRequest struct {
	CPUs          *int      `json:"cpus,omitempty"`
	MemoryMiB     *int      `json:"memory_mib,omitempty"`
	DiskGiB       *int      `json:"disk_gib,omitempty"`
	SSHKeys       *[]string `json:"ssh_keys,omitempty"`
	UserData      *string   `json:"user_data,omitempty"`
	RestartPolicy *string   `json:"restart_policy,omitempty"`
	Autostart     *bool     `json:"autostart,omitempty"`
}

// ShutdownRequest is the optional body of POST /api/v1/vms/{name}/shutdown and /reboot.
type ShutdownRequest struct {
	TimeoutSeconds int `json:"timeout_seconds,omitempty"` // default 60; then the VM is stopped by force
}

// ExecRequest is the body of POST /api/v1/vms/{name}/exec: run a program through the guest agent.
type ExecRequest struct {
	Command        []string `json:"command"`         // argv; Command[0] is the program
	Input          []byte   `json:"input,omitempty"` // stdin (base64 in JSON)
	TimeoutSeconds int      `json:"timeout_seconds,omitempty"`
}

// ExecResult is the answer to an ExecRequest.
type ExecResult struct {
	ExitCode int    `json:"exit_code"`
	Signal   int    `json:"signal,omitempty"`
	Stdout   []byte `json:"stdout"` // base64 in JSON
	Stderr   []byte `json:"stderr"`
}

// Image is an entry of the image library. Upload: POST /api/v1/images as multipart/form-data
// with fields name, format (optional), cmdline (optional), then file parts disk, kernel and
// initrd (the last two optional, for direct kernel boot), in that order.
type Image struct {
	Name        string    `json:"name"`
	Format      string    `json:"format"`
	Size        int64     `json:"size"`
	VirtualSize int64     `json:"virtual_size"`
	SHA256      string    `json:"sha256"`
	Kernel      bool      `json:"kernel"`
	Initrd      bool      `json:"initrd"`
	Cmdline     string    `json:"cmdline,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Host describes the host lqd runs on.
type Host struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	QEMUVersion string `json:"qemu_version"`
	Accel       string `json:"accel"`
	AccelReason string `json:"accel_reason,omitempty"`
	CPUs        int    `json:"cpus"`
	MemoryBytes int64  `json:"memory_bytes"`
	VMs         int    `json:"vms"`
	VMsRunning  int    `json:"vms_running"`
	Pools       []Pool `json:"pools"`
}

// Pool is a storage pool's capacity.
type Pool struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	Total int64  `json:"total"`
	Used  int64  `json:"used"`
	Free  int64  `json:"free"`
}

// Event is an entry of the host's event log.
type Event struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	VM      string    `json:"vm,omitempty"`
	Message string    `json:"message,omitempty"`
}
