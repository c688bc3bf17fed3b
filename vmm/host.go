package vmm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Accelerators.
const (
	AccelAuto = "auto"
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// Host holds the facts about this machine that shape every argv. Probe fills it in; tests
// construct it directly.
type Host struct {
	QEMU        string // path of qemu-system-x86_64
	QEMUVersion string
	Accel       string // kvm or tcg, never auto
	AccelReason string // why auto chose what it chose
	CPUs        int
	MemoryBytes int64
	VhostNet    bool // /dev/vhost-net exists: NICs use in-kernel virtio-net under KVM
}

// CPUModel is the -cpu model for the host's accelerator: all of the host's features under
// KVM, everything TCG can emulate under TCG.
func (h Host) CPUModel() string {
	if h.Accel == AccelKVM {
		return "host"
	}
	return "max"
}

// Limits bounds VM specs on this host.
func (h Host) Limits() Limits {
	return Limits{MaxCPUs: h.CPUs, MaxMemoryMiB: int(h.MemoryBytes >> 20)}
}

// KVMProbe is what accelerator selection looks at; a field per fact so tests can fake them.
type KVMProbe struct {
	DevKVMUsable bool // /dev/kvm opens read-write
	PVMLoaded    bool // the kvm_pvm module is loaded: stock guest kernels hang under it
}

// ChooseAccel resolves the requested accelerator. "auto" picks KVM only where it can run a
// stock guest; asking for kvm where it cannot is an error, not a silent fallback.
func ChooseAccel(requested string, p KVMProbe) (accel, reason string, err error) {
	switch requested {
	case AccelTCG:
		return AccelTCG, "requested", nil
	case AccelKVM:
		if !p.DevKVMUsable {
			return "", "", fmt.Errorf("accel kvm: /dev/kvm is not usable")
		}
		return AccelKVM, "requested", nil
	case AccelAuto, "":
		switch {
		case !p.DevKVMUsable:
			return AccelTCG, "/dev/kvm is not usable; using TCG (slow)", nil
		case p.PVMLoaded:
			return AccelTCG, "KVM here is PVM-only (kvm_pvm loaded), which hangs stock guest kernels; using TCG (slow)", nil
		default:
			return AccelKVM, "/dev/kvm usable", nil
		}
	default:
		return "", "", fmt.Errorf("accel %q: must be auto, kvm or tcg", requested)
	}
}

// ProbeKVM looks at the real /dev/kvm and loaded modules.
func ProbeKVM() KVMProbe {
	var p KVMProbe
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
		f.Close()
		p.DevKVMUsable = true
	}
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		p.PVMLoaded = true
	}
	return p
}

var qemuVersionRE = regexp.MustCompile(`version (\d+\.\d+\.\d+)`)

// ProbeHost finds qemu and the host's size and resolves the accelerator.
func ProbeHost(ctx context.Context, qemuPath, accel string) (Host, error) {
	if qemuPath == "" {
		qemuPath = "qemu-system-x86_64"
	}
	path, err := exec.LookPath(qemuPath)
	if err != nil {
		return Host{}, fmt.Errorf("vmm: find qemu: %w (install qemu-system-x86)", err)
	}
	out, err := exec.CommandContext(ctx, path, "-version").Output()
	if err != nil {
		return Host{}, fmt.Errorf("vmm: %s -version: %w", path, err)
	}
	h := Host{QEMU: path, CPUs: runtime.NumCPU()}
	if m := qemuVersionRE.FindStringSubmatch(string(out)); m != nil {
		h.QEMUVersion = m[1]
	} else {
		h.QEMUVersion = strings.TrimSpace(string(out))
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return Host{}, fmt.Errorf("vmm: sysinfo: %w", err)
	}
	h.MemoryBytes = int64(si.Totalram) * int64(si.Unit)
	if _, err := os.Stat("/dev/vhost-net"); err == nil {
		h.VhostNet = true
	}
	h.Accel, h.AccelReason, err = ChooseAccel(accel, ProbeKVM())
	if err != nil {
		return Host{}, fmt.Errorf("vmm: %w", err)
	}
	return h, nil
}
