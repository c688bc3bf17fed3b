package vmm

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
)

// Boot says how the guest boots: from its disk through SeaBIOS, or, when Kernel is set,
// directly from a kernel (and initrd) with a command line.
type Boot struct {
	Kernel  string `json:"kernel,omitempty"`
	Initrd  string `json:"initrd,omitempty"`
	Cmdline string `json:"cmdline,omitempty"`
}

// Plan is everything one start of a VM needs beyond the host: the spec plus resolved paths.
type Plan struct {
	Spec       Spec   `json:"spec"`
	Boot       Boot   `json:"boot"`
	RootDisk   string `json:"root_disk"`   // qcow2 overlay
	SeedISO    string `json:"seed_iso"`    // NoCloud seed
	RunDir     string `json:"run_dir"`     // sockets and pidfile
	ConsoleLog string `json:"console_log"` // serial output, kept across restarts
}

// Runtime file names inside Plan.RunDir.
const (
	QMPSocket    = "qmp.sock"
	AgentSocket  = "qga.sock"
	SerialSocket = "serial.sock"
	VNCSocket    = "vnc.sock"
	PIDFile      = "qemu.pid"
)

// Root-port layout. Every PCIe device sits behind its own pcie-root-port so it can be
// unplugged, and spare ports are reserved because hotplug on q35 needs a free port.
const (
	RootPorts      = 16 // ports rp0..rp15, eight functions on each of slots 2 and 3
	portRootDisk   = 0
	portSerial     = 1
	portRNG        = 2
	portSeed       = 3
	FirstFreePort  = 4 // the first port hotplug (NICs, disks) may use
	agentPortName  = "org.qemu.guest_agent.0"
	rootDiskNode   = "disk-root"
	seedNode       = "disk-seed"
	rootDiskDevice = "vda"
)

// Argv builds the qemu command line for one start of a VM. It is a pure function of the
// host facts and the plan: the same inputs always give the same argv (golden-tested), and
// it is what a migration target must reproduce.
func Argv(h Host, p Plan) ([]string, error) {
	s := p.Spec
	if s.UUID == "" || s.Name == "" {
		return nil, fmt.Errorf("vmm: argv: spec lacks uuid or name")
	}
	if h.Accel != AccelKVM && h.Accel != AccelTCG {
		return nil, fmt.Errorf("vmm: argv: accelerator %q is not kvm or tcg", h.Accel)
	}
	if p.Boot.Kernel == "" && (p.Boot.Initrd != "" || p.Boot.Cmdline != "") {
		return nil, fmt.Errorf("vmm: argv: initrd or cmdline without a kernel")
	}
	run := func(name string) string { return filepath.Join(p.RunDir, name) }
	a := []string{
		h.QEMU,
		"-name", "guest=" + s.Name + ",debug-threads=on",
		"-uuid", s.UUID,
		"-machine", "q35,accel=" + h.Accel + ",usb=off,dump-guest-core=off",
		"-cpu", h.CPUModel(),
		"-smp", strconv.Itoa(s.CPUs),
		"-m", strconv.Itoa(s.MemoryMiB) + "M",
		"-nodefaults",
		"-no-user-config",
		"-rtc", "base=utc",
		"-global", "ICH9-LPC.disable_s3=1",
		"-global", "ICH9-LPC.disable_s4=1",
		"-boot", "strict=on",
		"-msg", "timestamp=on",
		// Control and consoles: all on unix sockets in the run dir, never on TCP.
		"-chardev", "socket,id=qmp,path=" + run(QMPSocket) + ",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-chardev", "socket,id=serial0,path=" + run(SerialSocket) + ",server=on,wait=off,logfile=" + p.ConsoleLog + ",logappend=on",
		"-serial", "chardev:serial0",
		"-device", "VGA,id=video0,bus=pcie.0,addr=0x1",
		"-vnc", "unix:" + run(VNCSocket),
	}
	for i := 0; i < RootPorts; i++ {
		slot, fn := 2+i/8, i%8
		dev := fmt.Sprintf("pcie-root-port,id=rp%d,bus=pcie.0,chassis=%d,port=0x%x,addr=0x%x.0x%x", i, i+1, 0x10+i, slot, fn)
		if fn == 0 {
			dev += ",multifunction=on"
		}
		a = append(a, "-device", dev)
	}
	a = append(a,
		"-blockdev", blockdev(rootDiskNode, "qcow2", p.RootDisk, false),
		"-device", fmt.Sprintf("virtio-blk-pci,id=%s,drive=%s,bus=rp%d,bootindex=1", rootDiskDevice, rootDiskNode, portRootDisk),
		// The seed is a read-only virtio disk, not an emulated CD-ROM: cloud kernels (Debian's
		// linux-image-cloud-amd64) carry no AHCI or CD drivers. cloud-init finds it by label.
		"-blockdev", blockdev(seedNode, "raw", p.SeedISO, true),
		"-device", fmt.Sprintf("virtio-blk-pci,id=cidata,drive=%s,bus=rp%d", seedNode, portSeed),
		// The guest agent's channel.
		"-device", fmt.Sprintf("virtio-serial-pci,id=vser0,bus=rp%d", portSerial),
		"-chardev", "socket,id=qga0,path="+run(AgentSocket)+",server=on,wait=off",
		"-device", "virtserialport,id=qga0-port,bus=vser0.0,chardev=qga0,name="+agentPortName,
		// Entropy: guests (sshd keys, cloud-init) otherwise starve at boot, worst under TCG.
		"-object", "rng-random,id=rng0,filename=/dev/urandom",
		"-device", fmt.Sprintf("virtio-rng-pci,id=rng0-dev,rng=rng0,bus=rp%d", portRNG),
	)
	for i, n := range s.NICs {
		if n.Port < FirstFreePort || n.Port >= RootPorts {
			return nil, fmt.Errorf("vmm: argv: nic %d: root port %d is not a free port (%d..%d)", i, n.Port, FirstFreePort, RootPorts-1)
		}
		a = append(a, "-netdev", netdevArg(h, n, s.CPUs), "-device", nicDevice(n, s.CPUs))
	}
	// Attached volumes, each on its own root port, named as hotplug names them (disks.go).
	if err := checkPorts(s); err != nil {
		return nil, err
	}
	for _, d := range s.Disks {
		a = append(a, "-blockdev", blockdev(diskNode(d), "qcow2", d.Path, false), "-device", diskDeviceArg(d))
	}
	if p.Boot.Kernel != "" {
		a = append(a, "-kernel", p.Boot.Kernel)
		if p.Boot.Initrd != "" {
			a = append(a, "-initrd", p.Boot.Initrd)
		}
		if p.Boot.Cmdline != "" {
			a = append(a, "-append", p.Boot.Cmdline)
		}
	}
	// Detached: qemu outlives lqd. -S holds the vCPUs until lqd has attached QMP and says cont.
	a = append(a, "-S", "-daemonize", "-pidfile", run(PIDFile))
	return a, nil
}

// blockdev renders a -blockdev JSON argument (map keys marshal sorted: deterministic).
func blockdev(node, format, path string, readOnly bool) string {
	file := map[string]any{"driver": "file", "filename": path}
	dev := map[string]any{"node-name": node, "driver": format, "file": file}
	if readOnly {
		file["read-only"] = true
		dev["read-only"] = true
	} else {
		dev["discard"] = "unmap"
		file["aio"] = "threads"
	}
	b, _ := json.Marshal(dev)
	return string(b)
}

// NICQueues is how many queue pairs a VM's NICs get: one per vCPU, up to 8.
func NICQueues(cpus int) int { return min(max(cpus, 1), 8) }

// NIC devices are named after their tap (unique per host), so hotplug and unplug address
// them the same way however NICs come and go.
func nicNetdevID(n NIC) string { return "net-" + n.Tap }
func nicDeviceID(n NIC) string { return "nic-" + n.Tap }

// netdevArg is a NIC's tap backend. lqd made the tap beforehand (persistent, on the
// bridge); qemu only opens it, so it runs no scripts.
func netdevArg(h Host, n NIC, cpus int) string {
	arg := fmt.Sprintf("tap,id=%s,ifname=%s,script=no,downscript=no", nicNetdevID(n), n.Tap)
	if q := NICQueues(cpus); q > 1 {
		arg += fmt.Sprintf(",queues=%d", q)
	}
	if h.Accel == AccelKVM && h.VhostNet {
		arg += ",vhost=on"
	}
	return arg
}

func nicDevice(n NIC, cpus int) string {
	dev := fmt.Sprintf("virtio-net-pci,id=%s,netdev=%s,mac=%s,bus=rp%d", nicDeviceID(n), nicNetdevID(n), n.MAC, n.Port)
	if q := NICQueues(cpus); q > 1 {
		dev += fmt.Sprintf(",mq=on,vectors=%d", 2*q+2)
	}
	return dev
}
