package vmm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/limiquantix/limiquantix/qmp"
)

// Events of NIC hotplug.
const (
	EventNICAdded   = "vm.nic.added"
	EventNICRemoved = "vm.nic.removed"
)

// nicUnplugTimeout bounds how long a hot-unplug waits for the guest to release a NIC.
const nicUnplugTimeout = 30 * time.Second

// AddNIC gives a VM one more NIC. A running VM gets it hotplugged on a free root port
// (netdev_add + device_add); a stopped one at its next start. On failure nothing stays:
// no address, no tap, no half-plugged device.
func (m *Manager) AddNIC(ctx context.Context, name string, req NICRequest) (VM, error) {
	if m.cfg.Nets == nil {
		return VM{}, invalid("this host has no networking configured")
	}
	vm, unlock, err := m.lockVM(name)
	if err != nil {
		return VM{}, err
	}
	defer unlock()
	r, err := vm.live("add a nic")
	if err != nil {
		return VM{}, err
	}
	spec := vm.specCopy()
	if len(spec.NICs) >= maxNICs {
		return VM{}, invalid("vm %q has %d nics: at most %d", name, len(spec.NICs), maxNICs)
	}
	port, err := freePort(spec)
	if err != nil {
		return VM{}, err
	}
	next := len(spec.NICs) // NIC indexes (and so tap names) are never reused
	for _, n := range spec.NICs {
		next = max(next, n.Index+1)
	}
	nics, err := m.cfg.Nets.AllocateNICs(ctx, spec.UUID, spec.Name, next, []NICRequest{req})
	if err != nil {
		return VM{}, fmt.Errorf("vm %q: add nic: %w", name, err)
	}
	nic := nics[0]
	nic.Port = port
	// From here the NIC's tap may exist before any spec names it: keep the network
	// reconciler from deleting it as stale.
	m.mu.Lock()
	m.pending[nic.Tap] = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.pending, nic.Tap)
		m.mu.Unlock()
	}()
	bg := context.WithoutCancel(ctx)
	undo := func(plugged bool) {
		if plugged {
			unplugNIC(bg, r.mon, nic, nicUnplugTimeout)
		}
		if r != nil {
			m.cfg.Nets.UnplugNIC(bg, nic)
		}
		m.cfg.Nets.ReleaseNIC(bg, nic.Tap)
	}
	if r != nil {
		if err := m.cfg.Nets.PlugNIC(ctx, nic, NICQueues(spec.CPUs)); err != nil {
			undo(false)
			return VM{}, fmt.Errorf("vm %q: add nic: %w", name, err)
		}
		if err := plugNIC(ctx, r.mon, m.cfg.Host, nic, spec.CPUs); err != nil {
			undo(false)
			return VM{}, fmt.Errorf("vm %q: add nic: %w", name, err)
		}
	}
	spec.NICs = append(spec.NICs, nic)
	if err := m.saveSpec(bg, vm, spec); err != nil {
		undo(r != nil)
		return VM{}, err
	}
	m.bus.Publish(EventNICAdded, name, nic.Network+" "+nic.IP)
	return vm.view(m.cfg.Host.Accel), nil
}

// RemoveNIC takes a NIC away, named by its tap, MAC or index. A running VM's guest must
// release it (DEVICE_DELETED) first.
func (m *Manager) RemoveNIC(ctx context.Context, name, which string) (VM, error) {
	if m.cfg.Nets == nil {
		return VM{}, invalid("this host has no networking configured")
	}
	vm, unlock, err := m.lockVM(name)
	if err != nil {
		return VM{}, err
	}
	defer unlock()
	r, err := vm.live("remove a nic")
	if err != nil {
		return VM{}, err
	}
	spec := vm.specCopy()
	idx := -1
	for i, n := range spec.NICs {
		if n.Tap == which || strings.EqualFold(n.MAC, which) || fmt.Sprint(i) == which {
			idx = i
		}
	}
	if idx < 0 {
		return VM{}, fmt.Errorf("%w: vm %q has no nic %q (give its index, MAC or tap)", ErrNotFound, name, which)
	}
	nic := spec.NICs[idx]
	if r != nil {
		if err := unplugNIC(ctx, r.mon, nic, nicUnplugTimeout); err != nil {
			return VM{}, fmt.Errorf("vm %q: remove nic: %w", name, err)
		}
	}
	// The guest has let go: finish whatever the client does, spec first, so the NIC
	// cannot come back through the tap repair if a later step fails.
	bg := context.WithoutCancel(ctx)
	spec.NICs = append(spec.NICs[:idx:idx], spec.NICs[idx+1:]...)
	if err := m.saveSpec(bg, vm, spec); err != nil {
		return VM{}, err
	}
	if r != nil {
		m.cfg.Nets.UnplugNIC(bg, nic)
	}
	if err := m.cfg.Nets.ReleaseNIC(bg, nic.Tap); err != nil {
		return VM{}, err
	}
	m.bus.Publish(EventNICRemoved, name, nic.Network+" "+nic.IP)
	return vm.view(m.cfg.Host.Accel), nil
}

// saveSpec persists a changed spec, then makes it the VM's.
func (m *Manager) saveSpec(ctx context.Context, vm *machine, spec Spec) error {
	raw, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := m.cfg.DB.UpdateVMSpec(ctx, spec.UUID, raw); err != nil {
		return err
	}
	vm.setSpec(spec)
	return nil
}

// plugNIC hotplugs a NIC whose tap exists; on failure nothing stays plugged.
func plugNIC(ctx context.Context, mon monitor, h Host, n NIC, cpus int) error {
	nd := map[string]any{"type": "tap", "id": nicNetdevID(n), "ifname": n.Tap, "script": "no", "downscript": "no"}
	if q := NICQueues(cpus); q > 1 {
		nd["queues"] = q
	}
	if h.Accel == AccelKVM && h.VhostNet {
		nd["vhost"] = true
	}
	if err := mon.Execute(ctx, "netdev_add", nd, nil); err != nil {
		return fmt.Errorf("netdev_add: %w", err)
	}
	dev := map[string]any{"driver": "virtio-net-pci", "id": nicDeviceID(n), "netdev": nicNetdevID(n), "mac": n.MAC, "bus": fmt.Sprintf("rp%d", n.Port)}
	if q := NICQueues(cpus); q > 1 {
		dev["mq"] = "on"
		dev["vectors"] = 2*q + 2
	}
	if err := mon.Execute(ctx, "device_add", dev, nil); err != nil {
		mon.Execute(context.WithoutCancel(ctx), "netdev_del", map[string]string{"id": nicNetdevID(n)}, nil)
		return fmt.Errorf("device_add: %w", err)
	}
	return nil
}

// unplugNIC asks the guest to release a NIC, waits for DEVICE_DELETED, then removes its
// netdev.
func unplugNIC(ctx context.Context, mon monitor, n NIC, timeout time.Duration) error {
	if err := deviceDel(ctx, mon, nicDeviceID(n), timeout); err != nil {
		if errors.Is(err, ErrTimeout) {
			return fmt.Errorf("%w: the guest did not release nic %s within %s", ErrTimeout, n.Tap, timeout)
		}
		return err
	}
	if err := mon.Execute(ctx, "netdev_del", map[string]string{"id": nicNetdevID(n)}, nil); err != nil {
		var qe *qmp.Error
		if !(errors.As(err, &qe) && qe.Class == "DeviceNotFound") {
			return fmt.Errorf("netdev_del: %w", err)
		}
	}
	return nil
}

// EventNICRepaired: a NIC whose tap had vanished was plugged in again.
const EventNICRepaired = "vm.nic.repaired"

// RepairNICs finds running VMs whose taps have vanished (someone ran `ip link del`) and
// plugs those NICs in again: qemu cannot reopen a tap behind an existing netdev, so the NIC
// is hot-unplugged, its tap made anew, and the NIC hotplugged back with the same MAC and
// address. The guest sees a link go away and come back.
func (m *Manager) RepairNICs(ctx context.Context) {
	if m.cfg.Nets == nil {
		return
	}
	for _, v := range m.List() {
		if v.State != StateRunning && v.State != StatePaused {
			continue
		}
		for _, n := range v.NICs {
			if _, err := net.InterfaceByName(n.Tap); err == nil {
				continue
			}
			if err := m.repairNIC(ctx, v.Name, n.Tap); err != nil {
				m.log.Error("repair nic", "vm", v.Name, "tap", n.Tap, "err", err)
				m.bus.Publish(EventError, v.Name, "repair nic "+n.Tap+": "+err.Error())
			}
		}
	}
}

func (m *Manager) repairNIC(ctx context.Context, name, tap string) error {
	vm, unlock, err := m.lockVM(name)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := vm.live("repair a nic")
	if err != nil || r == nil {
		return err
	}
	spec := vm.specCopy()
	for _, n := range spec.NICs {
		if n.Tap != tap {
			continue
		}
		if _, err := net.InterfaceByName(tap); err == nil {
			return nil // someone else repaired it meanwhile
		}
		m.log.Warn("tap of a running VM vanished; replugging its NIC", "vm", name, "tap", tap)
		if err := unplugNIC(ctx, r.mon, n, nicUnplugTimeout); err != nil {
			return err
		}
		if err := m.cfg.Nets.PlugNIC(ctx, n, NICQueues(spec.CPUs)); err != nil {
			return err
		}
		if err := plugNIC(ctx, r.mon, m.cfg.Host, n, spec.CPUs); err != nil {
			m.cfg.Nets.UnplugNIC(context.WithoutCancel(ctx), n) // no tap: the next round retries
			return err
		}
		m.bus.Publish(EventNICRepaired, name, tap)
	}
	return nil
}
