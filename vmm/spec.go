package vmm

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/limiquantix/limiquantix/cloudinit"
)

// Errors that callers (the API) map to statuses. Every error returned for bad input wraps
// ErrInvalid; for a missing VM or image, ErrNotFound; for a taken name or an action the VM's
// state does not allow, ErrConflict.
var (
	ErrInvalid  = errors.New("invalid")
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInUse    = errors.New("in use")
	// ErrAgent means the guest agent did not answer.
	ErrAgent = errors.New("guest agent unavailable")
)

// RestartPolicy says what lqd does when a VM's qemu exits without being asked to.
type RestartPolicy string

// Restart policies.
const (
	RestartNever   RestartPolicy = "never"    // leave it crashed or stopped
	RestartOnCrash RestartPolicy = "on-crash" // restart when qemu dies unexpectedly
	RestartAlways  RestartPolicy = "always"   // also restart when the guest powers off
)

// Spec is what a user asks for; it is persisted as JSON and rebuilt into an argv at every start.
type Spec struct {
	UUID          string           `json:"uuid"`
	Name          string           `json:"name"`
	Image         string           `json:"image"`
	CPUs          int              `json:"cpus"`
	MemoryMiB     int              `json:"memory_mib"`
	DiskGiB       int              `json:"disk_gib"`
	SSHKeys       []string         `json:"ssh_keys,omitempty"`
	UserData      string           `json:"user_data,omitempty"`
	RestartPolicy RestartPolicy    `json:"restart_policy"`
	Autostart     bool             `json:"autostart,omitempty"`
	NICs          []NIC            `json:"nics,omitempty"`
	Disks         []DiskAttachment `json:"disks,omitempty"` // attached volumes (disks.go)
}

// NIC is a VM's network interface: a virtio-net device on its own root port, backed by a
// tap on the network's bridge. Network, MAC, IP and Tap are assigned once, at creation,
// and never change: the guest and the firewall both know the NIC by them.
type NIC struct {
	Network        string   `json:"network"`
	MAC            string   `json:"mac"`
	IP             string   `json:"ip,omitempty"`
	Tap            string   `json:"tap"`
	SecurityGroups []string `json:"security_groups,omitempty"`
	Port           int      `json:"port"`  // pcie-root-port index
	Index          int      `json:"index"` // the NIC's number in the VM; its tap is named after it
	// How the guest configures it without DHCP (cloud-init network-config).
	PrefixLen int    `json:"prefix_len,omitempty"`
	Gateway   string `json:"gateway,omitempty"`
	Domain    string `json:"domain,omitempty"`
}

// NICRequest asks for a NIC on a network, in some security groups.
type NICRequest struct {
	Network        string
	IP             string // optional: a fixed address
	SecurityGroups []string
}

// Limits bound a spec; they come from the host.
type Limits struct {
	MaxCPUs      int
	MaxMemoryMiB int
}

// Defaults and bounds that do not depend on the host.
const (
	DefaultCPUs      = 1
	DefaultMemoryMiB = 512
	MinMemoryMiB     = 64
	MaxDiskGiB       = 64 << 10 // 64 TiB
	maxSSHKeys       = 64
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidName reports whether s is a valid resource name.
func ValidName(s string) bool { return nameRE.MatchString(s) }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// applyDefaults fills zero fields.
func (s *Spec) applyDefaults() {
	if s.CPUs == 0 {
		s.CPUs = DefaultCPUs
	}
	if s.MemoryMiB == 0 {
		s.MemoryMiB = DefaultMemoryMiB
	}
	if s.RestartPolicy == "" {
		s.RestartPolicy = RestartNever
	}
}

// Validate checks a spec against the host's limits. The disk is checked against the image
// by the caller, which knows the image's size.
func (s *Spec) Validate(l Limits) error {
	if !ValidName(s.Name) {
		return invalid("name %q: must match ^[a-z0-9][a-z0-9-]{0,62}$", s.Name)
	}
	if !ValidName(s.Image) {
		return invalid("image %q: not a valid image name", s.Image)
	}
	if s.CPUs < 1 || s.CPUs > l.MaxCPUs {
		return invalid("cpus %d: must be between 1 and %d (this host's CPUs)", s.CPUs, l.MaxCPUs)
	}
	if s.MemoryMiB < MinMemoryMiB || s.MemoryMiB > l.MaxMemoryMiB {
		return invalid("memory %d MiB: must be between %d and %d MiB (this host's memory)", s.MemoryMiB, MinMemoryMiB, l.MaxMemoryMiB)
	}
	if s.DiskGiB < 0 || s.DiskGiB > MaxDiskGiB {
		return invalid("disk %d GiB: must be between 1 and %d GiB", s.DiskGiB, MaxDiskGiB)
	}
	switch s.RestartPolicy {
	case RestartNever, RestartOnCrash, RestartAlways:
	default:
		return invalid("restart policy %q: must be never, on-crash or always", s.RestartPolicy)
	}
	if len(s.SSHKeys) > maxSSHKeys {
		return invalid("%d ssh keys: at most %d", len(s.SSHKeys), maxSSHKeys)
	}
	for i, k := range s.SSHKeys {
		if err := cloudinit.ValidateSSHKey(k); err != nil {
			return invalid("ssh key %d: %v", i+1, err)
		}
	}
	if err := cloudinit.ValidateUserData(s.UserData); err != nil {
		return invalid("user-data: %v", err)
	}
	return nil
}
