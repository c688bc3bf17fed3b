package vmm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/limiquantix/limiquantix/qmp"
	"github.com/limiquantix/limiquantix/store"
)

// Disks is what vmm needs from a storage pool: a VM's root disk.
type Disks interface {
	CreateOverlay(ctx context.Context, base store.Image, id string, sizeBytes int64) (string, error)
	DiskPath(id string) string
	RemoveDisk(id string) error
}

// Networks is what vmm needs from the host's networking; package netdev provides it.
type Networks interface {
	// AllocateNICs assigns a MAC, an address and a tap name to each request of a VM, records
	// them, and updates DHCP and the firewall. Errors for bad requests wrap netdev's
	// ErrInvalid, ErrNotFound or ErrConflict.
	// The NICs get indexes first, first+1, ... (a VM's NIC index never repeats).
	AllocateNICs(ctx context.Context, vmUUID, vmName string, first int, reqs []NICRequest) ([]NIC, error)
	// ReleaseNICs forgets every NIC of a VM; its addresses return to their pools.
	ReleaseNICs(ctx context.Context, vmUUID string) error
	// ReleaseNIC forgets one NIC, by tap.
	ReleaseNIC(ctx context.Context, tap string) error
	// PlugNIC makes the NIC's tap on its network's bridge, for qemu to open.
	PlugNIC(ctx context.Context, n NIC, queues int) error
	// UnplugNIC removes the NIC's tap; a missing tap is fine.
	UnplugNIC(ctx context.Context, n NIC) error
	// DefaultNetwork names the network a VM created without NIC requests joins; "" for none.
	DefaultNetwork(ctx context.Context) string
}

// Config wires a Manager to its host.
type Config struct {
	DataDir string // persistent: <data-dir>/vms/<uuid>/{seed.iso,console.log}
	RunDir  string // volatile: <run-dir>/vms/<uuid>/{qmp,qga,serial,vnc}.sock, qemu.pid
	Host    Host
	DB      *store.DB
	Disks   Disks
	Nets    Networks // nil: VMs have no NICs
	Storage Storage  // volumes, snapshots, clones, backups (disks.go)
	Bus     *Bus
	Log     *slog.Logger
	// AgentPoll is how often the guest agent is asked for facts; 0 means 10 s.
	AgentPoll time.Duration
}

// Manager owns the VMs of one host.
type Manager struct {
	cfg Config
	log *slog.Logger
	bus *Bus

	ctx    context.Context // ends when Close is called: stops watchers, not guests
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	vms     map[string]*machine // by name
	pending map[string]bool     // taps of NICs being hot-added, not yet in a spec
}

// VM is a snapshot of one VM's spec and runtime, as callers see it.
type VM struct {
	Spec
	State     State
	PID       int
	StartedAt time.Time
	CreatedAt time.Time
	LastError string
	Accel     string
	Guest     *GuestInfo
}

// GuestInfo is what the guest agent last reported.
type GuestInfo struct {
	AgentVersion string
	OS           qmp.OSInfo
	Hostname     string
	Interfaces   []qmp.Interface
	UpdatedAt    time.Time
}

// New returns a Manager; call Reconcile before serving requests.
func New(cfg Config) *Manager {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Bus == nil {
		cfg.Bus = NewBus(cfg.DB, cfg.Log)
	}
	if cfg.AgentPoll == 0 {
		cfg.AgentPoll = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, log: cfg.Log, bus: cfg.Bus, ctx: ctx, cancel: cancel, vms: map[string]*machine{}, pending: map[string]bool{}}
}

// Host returns the host facts the manager runs with.
func (m *Manager) Host() Host { return m.cfg.Host }

// Bus returns the event bus.
func (m *Manager) Bus() *Bus { return m.bus }

// Close detaches from every VM (closing QMP and agent connections) and leaves the guests
// running: lqd may stop, restart or be upgraded without touching them.
func (m *Manager) Close() {
	m.cancel()
	m.mu.Lock()
	for _, vm := range m.vms {
		vm.detach()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

func (m *Manager) vmDataDir(id string) string { return filepath.Join(m.cfg.DataDir, "vms", id) }
func (m *Manager) vmRunDir(id string) string  { return filepath.Join(m.cfg.RunDir, "vms", id) }

func (m *Manager) get(name string) (*machine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	vm, ok := m.vms[name]
	if !ok {
		return nil, fmt.Errorf("%w: vm %q", ErrNotFound, name)
	}
	return vm, nil
}

// List returns every VM, by name, from cached state: it never waits on a qemu.
func (m *Manager) List() []VM {
	m.mu.Lock()
	all := make([]*machine, 0, len(m.vms))
	for _, vm := range m.vms {
		all = append(all, vm)
	}
	m.mu.Unlock()
	out := make([]VM, 0, len(all))
	for _, vm := range all {
		out = append(out, vm.view(m.cfg.Host.Accel))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns one VM from cached state.
func (m *Manager) Get(name string) (VM, error) {
	vm, err := m.get(name)
	if err != nil {
		return VM{}, err
	}
	return vm.view(m.cfg.Host.Accel), nil
}

const gib = int64(1) << 30

// Create validates a spec, makes the VM's root disk and NICs and records it. nics nil
// means one NIC on the default network (if there is one); an empty slice means none. With
// start, it then starts the VM; a failed start leaves the VM created and stopped, and says so.
func (m *Manager) Create(ctx context.Context, spec Spec, nics []NICRequest, start bool) (VM, error) {
	spec.UUID = uuid.NewString()
	spec.applyDefaults()
	if err := spec.Validate(m.cfg.Host.Limits()); err != nil {
		return VM{}, err
	}
	img, err := m.cfg.DB.Image(ctx, spec.Image)
	if errors.Is(err, store.ErrNotFound) {
		return VM{}, fmt.Errorf("%w: image %q", ErrNotFound, spec.Image)
	}
	if err != nil {
		return VM{}, err
	}
	minGiB := int((img.VirtualSize + gib - 1) / gib)
	if spec.DiskGiB == 0 {
		spec.DiskGiB = max(minGiB, 1)
	}
	if int64(spec.DiskGiB)*gib < img.VirtualSize {
		return VM{}, invalid("disk %d GiB is smaller than image %q (%d GiB)", spec.DiskGiB, img.Name, minGiB)
	}
	m.mu.Lock()
	_, taken := m.vms[spec.Name]
	m.mu.Unlock()
	if taken {
		return VM{}, fmt.Errorf("%w: vm %q already exists", ErrConflict, spec.Name)
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return VM{}, fmt.Errorf("vmm: create %s: %w", spec.Name, err)
	}
	err = m.cfg.DB.CreateVM(ctx, store.VM{UUID: spec.UUID, Name: spec.Name, Image: spec.Image, Spec: raw, State: string(StateStopped)})
	switch {
	case errors.Is(err, store.ErrConflict):
		return VM{}, fmt.Errorf("%w: vm %q already exists", ErrConflict, spec.Name)
	case errors.Is(err, store.ErrNotFound):
		return VM{}, fmt.Errorf("%w: image %q", ErrNotFound, spec.Image)
	case err != nil:
		return VM{}, err
	}
	undo := func(cause error) error {
		if m.cfg.Nets != nil {
			if err := m.cfg.Nets.ReleaseNICs(context.WithoutCancel(ctx), spec.UUID); err != nil {
				m.log.Error("undo create: release nics", "vm", spec.Name, "err", err)
			}
		}
		m.cfg.Disks.RemoveDisk(spec.UUID)
		os.RemoveAll(m.vmDataDir(spec.UUID))
		if err := m.cfg.DB.DeleteVM(context.WithoutCancel(ctx), spec.UUID); err != nil {
			m.log.Error("undo create", "vm", spec.Name, "err", err)
		}
		return cause
	}
	if _, err := m.cfg.Disks.CreateOverlay(ctx, img, spec.UUID, int64(spec.DiskGiB)*gib); err != nil {
		return VM{}, undo(fmt.Errorf("vmm: create %s: root disk: %w", spec.Name, err))
	}
	if err := os.MkdirAll(m.vmDataDir(spec.UUID), 0o700); err != nil {
		return VM{}, undo(fmt.Errorf("vmm: create %s: %w", spec.Name, err))
	}
	if len(nics) > 0 || nics == nil {
		if spec.NICs, err = m.allocateNICs(ctx, spec, nics); err != nil {
			return VM{}, undo(err)
		}
		if len(spec.NICs) > 0 {
			if raw, err = json.Marshal(spec); err != nil {
				return VM{}, undo(fmt.Errorf("vmm: create %s: %w", spec.Name, err))
			}
			if err := m.cfg.DB.UpdateVMSpec(ctx, spec.UUID, raw); err != nil {
				return VM{}, undo(err)
			}
		}
	}
	vm := newMachine(m, spec, StateStopped, time.Now())
	m.mu.Lock()
	m.vms[spec.Name] = vm
	m.mu.Unlock()
	m.bus.Publish(EventCreated, spec.Name, "")
	if start {
		if _, err := m.Start(ctx, spec.Name); err != nil {
			return vm.view(m.cfg.Host.Accel), fmt.Errorf("vm %q was created but did not start: %w", spec.Name, err)
		}
	}
	return vm.view(m.cfg.Host.Accel), nil
}

// maxNICs bounds a VM's NICs: each takes a root port, and disks need some too.
const maxNICs = 8

// allocateNICs asks the network layer for the VM's NICs and gives each a root port.
func (m *Manager) allocateNICs(ctx context.Context, spec Spec, reqs []NICRequest) ([]NIC, error) {
	if reqs == nil {
		if m.cfg.Nets == nil {
			return nil, nil
		}
		def := m.cfg.Nets.DefaultNetwork(ctx)
		if def == "" {
			return nil, nil
		}
		reqs = []NICRequest{{Network: def}}
	}
	if len(reqs) > maxNICs {
		return nil, invalid("%d nics: at most %d", len(reqs), maxNICs)
	}
	if m.cfg.Nets == nil {
		return nil, invalid("this host has no networking configured; create the VM without nics")
	}
	nics, err := m.cfg.Nets.AllocateNICs(ctx, spec.UUID, spec.Name, 0, reqs)
	if err != nil {
		return nil, fmt.Errorf("vmm: create %s: nics: %w", spec.Name, err)
	}
	for i := range nics {
		nics[i].Port = FirstFreePort + i
	}
	return nics, nil
}

// Update is a change to a VM's spec; nil fields stay as they are.
type Update struct {
	CPUs          *int
	MemoryMiB     *int
	SSHKeys       *[]string
	UserData      *string
	RestartPolicy *RestartPolicy
	Autostart     *bool
}

// Update edits a VM's spec. CPUs and memory change only while it is stopped; keys and
// user-data take effect at its next start (the seed is rebuilt at every start).
func (m *Manager) Update(ctx context.Context, name string, u Update) (VM, error) {
	vm, err := m.get(name)
	if err != nil {
		return VM{}, err
	}
	vm.op.Lock()
	defer vm.op.Unlock()
	vm.mu.Lock()
	spec, state := vm.spec, vm.state
	vm.mu.Unlock()
	if (u.CPUs != nil || u.MemoryMiB != nil) && state.Active() {
		return VM{}, fmt.Errorf("%w: cpus and memory change only while the VM is stopped (it is %s)", ErrConflict, state)
	}
	if u.CPUs != nil {
		spec.CPUs = *u.CPUs
	}
	if u.MemoryMiB != nil {
		spec.MemoryMiB = *u.MemoryMiB
	}
	if u.SSHKeys != nil {
		spec.SSHKeys = *u.SSHKeys
	}
	if u.UserData != nil {
		spec.UserData = *u.UserData
	}
	if u.RestartPolicy != nil {
		spec.RestartPolicy = *u.RestartPolicy
	}
	if u.Autostart != nil {
		spec.Autostart = *u.Autostart
	}
	if err := spec.Validate(m.cfg.Host.Limits()); err != nil {
		return VM{}, err
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return VM{}, fmt.Errorf("vmm: update %s: %w", name, err)
	}
	if err := m.cfg.DB.UpdateVMSpec(ctx, spec.UUID, raw); err != nil {
		return VM{}, err
	}
	vm.mu.Lock()
	vm.spec = spec
	vm.mu.Unlock()
	m.bus.Publish(EventUpdated, name, "")
	return vm.view(m.cfg.Host.Accel), nil
}

// Delete removes a VM and everything it owns: its qemu (with force), root disk, seed,
// console log and sockets. Files go first and the record last, so a crash midway leaves a
// record that a second delete finishes.
func (m *Manager) Delete(ctx context.Context, name string, force bool) error {
	vm, err := m.get(name)
	if err != nil {
		return err
	}
	vm.op.Lock()
	defer vm.op.Unlock()
	if vm.State().Active() {
		if !force {
			return fmt.Errorf("%w: vm %q is %s: stop it first, or delete with force", ErrConflict, name, vm.State())
		}
		if err := vm.forceStop(ctx); err != nil {
			return err
		}
	}
	id := vm.spec.UUID
	if err := m.cfg.Disks.RemoveDisk(id); err != nil {
		return fmt.Errorf("vmm: delete %s: %w", name, err)
	}
	if err := os.RemoveAll(m.vmDataDir(id)); err != nil {
		return fmt.Errorf("vmm: delete %s: %w", name, err)
	}
	if err := os.RemoveAll(m.vmRunDir(id)); err != nil {
		return fmt.Errorf("vmm: delete %s: %w", name, err)
	}
	if m.cfg.Nets != nil {
		if err := m.cfg.Nets.ReleaseNICs(ctx, id); err != nil {
			return fmt.Errorf("vmm: delete %s: %w", name, err)
		}
	}
	if err := m.cfg.DB.DeleteVM(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	vm.mu.Lock()
	vm.deleted = true
	vm.mu.Unlock()
	m.mu.Lock()
	delete(m.vms, name)
	m.mu.Unlock()
	m.bus.Publish(EventDeleted, name, "")
	return nil
}

// ConsoleLog returns the serial output so far, the last tail bytes of it when tail > 0.
func (m *Manager) ConsoleLog(name string, tail int64) ([]byte, error) {
	vm, err := m.get(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(m.vmDataDir(vm.spec.UUID), "console.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vmm: console log %s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("vmm: console log %s: %w", name, err)
	}
	off := int64(0)
	if tail > 0 && st.Size() > tail {
		off = st.Size() - tail
	}
	buf := make([]byte, st.Size()-off)
	n, err := f.ReadAt(buf, off)
	if err != nil && n < len(buf) {
		return nil, fmt.Errorf("vmm: console log %s: %w", name, err)
	}
	return buf[:n], nil
}

// ActiveTaps returns the taps of every VM that has (or is about to have) a qemu: the
// network layer removes any other tap of lqd's as stale.
func (m *Manager) ActiveTaps() map[string]bool {
	out := map[string]bool{}
	m.mu.Lock()
	for t := range m.pending {
		out[t] = true
	}
	m.mu.Unlock()
	for _, v := range m.List() {
		if v.State.Active() {
			for _, n := range v.NICs {
				out[n.Tap] = true
			}
		}
	}
	return out
}
