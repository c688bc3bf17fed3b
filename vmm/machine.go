package vmm

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	goqmp "github.com/digitalocean/go-qemu/qmp"
	"github.com/limiquantix/limiquantix/cloudinit"
	"github.com/limiquantix/limiquantix/qmp"
)

// machine is one VM. op serializes lifecycle operations; mu guards the fields that the
// watcher and readers share. The QMP connection has a single owner: the run's watcher
// reads its events; operations send commands through it.
type machine struct {
	m  *Manager
	op sync.Mutex

	mu        sync.Mutex
	spec      Spec
	state     State
	createdAt time.Time
	lastError string
	guest     *GuestInfo
	run       *run // nil when no qemu runs
	deleted   bool
	restarts  []time.Time // recent policy restarts, for back-off
}

// run is one qemu process's life, from launch to exit.
type run struct {
	pid       int
	startedAt time.Time
	mon       *qmp.Monitor
	agentPath string
	exited    chan struct{} // closed once the watcher has handled the exit
	force     chan struct{} // closed to cut a graceful shutdown's wait short (a stop came)
	forceOnce sync.Once

	mu            sync.Mutex
	agent         *qmp.Agent
	expectExit    bool // we asked qemu to go: the exit is a stop, not a crash
	guestShutdown bool // the guest powered itself off
	detached      bool // lqd is closing: leave qemu alone

	serial *serialHub // the serial console's one connection (serial.go); set by watch
	stats  *sampler   // resource counters (stats.go); set by watch
}

func newMachine(m *Manager, spec Spec, state State, created time.Time) *machine {
	return &machine{m: m, spec: spec, state: state, createdAt: created}
}

func (vm *machine) State() State {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.state
}

func (vm *machine) view(accel string) VM {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	v := VM{Spec: vm.spec, State: vm.state, CreatedAt: vm.createdAt, LastError: vm.lastError, Guest: vm.guest}
	v.SSHKeys = append([]string(nil), vm.spec.SSHKeys...)
	if vm.run != nil {
		v.PID, v.StartedAt, v.Accel = vm.run.pid, vm.run.startedAt, accel
	}
	return v
}

// setState records a state change in memory, in the database and on the bus.
func (vm *machine) setState(s State, lastError string) { vm.setStateAnd(s, lastError, nil) }

// setStateAnd is setState that also applies change (if any) under the same lock, so
// readers see both at once.
func (vm *machine) setStateAnd(s State, lastError string, change func()) {
	vm.mu.Lock()
	if change != nil {
		change()
	}
	changed := vm.state != s
	vm.state = s
	if lastError != "" || s == StateRunning {
		vm.lastError = lastError
	}
	pid, started := 0, time.Time{}
	if vm.run != nil && s.Active() {
		pid, started = vm.run.pid, vm.run.startedAt
	}
	id, name, deleted := vm.spec.UUID, vm.spec.Name, vm.deleted
	vm.mu.Unlock()
	if deleted {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := vm.m.cfg.DB.SetVMRuntime(ctx, id, string(s), pid, started); err != nil {
		vm.m.log.Error("persist state", "vm", name, "state", s, "err", err)
	}
	if changed {
		vm.m.bus.Publish(EventState, name, string(s))
	}
}

func (vm *machine) currentRun() *run {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.run
}

// start launches qemu for the VM and lets its vCPUs run. Called with op held. On failure
// nothing is left: no process, no sockets; the VM is back in the state it started from.
func (vm *machine) start(ctx context.Context) (err error) {
	m := vm.m
	vm.mu.Lock()
	spec, from, busy := vm.spec, vm.state, vm.run != nil
	vm.mu.Unlock()
	if busy {
		// The last qemu's exit is still being handled; never start a second one beside it.
		return fmt.Errorf("%w: vm %q: its previous qemu is still being cleaned up; retry", ErrConflict, spec.Name)
	}
	vm.setState(StateStarting, "")
	runDir := m.vmRunDir(spec.UUID)
	var r *run
	defer func() {
		if err == nil {
			return
		}
		if r != nil {
			r.mon.Close()
		}
		if r != nil || err != nil {
			if pid, perr := readPIDFile(filepath.Join(runDir, PIDFile)); perr == nil {
				kill(context.WithoutCancel(ctx), pid, spec.UUID)
			}
		}
		os.RemoveAll(runDir)
		vm.unplugNICs(spec)
		vm.mu.Lock()
		vm.run = nil
		vm.mu.Unlock()
		vm.setState(from, err.Error())
		m.bus.Publish(EventError, spec.Name, "start: "+err.Error())
	}()

	img, err := m.cfg.DB.Image(ctx, spec.Image)
	if err != nil {
		return fmt.Errorf("vmm: start %s: image: %w", spec.Name, err)
	}
	dataDir := m.vmDataDir(spec.UUID)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("vmm: start %s: %w", spec.Name, err)
	}
	os.RemoveAll(runDir) // sockets of an earlier life
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return fmt.Errorf("vmm: start %s: %w", spec.Name, err)
	}
	plan := Plan{
		Spec:       spec,
		Boot:       Boot{Kernel: img.Kernel, Initrd: img.Initrd, Cmdline: img.Cmdline},
		RootDisk:   m.cfg.Disks.DiskPath(spec.UUID),
		SeedISO:    filepath.Join(dataDir, "seed.iso"),
		RunDir:     runDir,
		ConsoleLog: filepath.Join(dataDir, "console.log"),
	}
	// The seed is rebuilt from the current spec at every start, so it is never stale.
	netcfg, err := networkConfig(spec.NICs)
	if err != nil {
		return fmt.Errorf("vmm: start %s: %w", spec.Name, err)
	}
	seed, err := cloudinit.Render(cloudinit.Config{InstanceID: spec.UUID, Hostname: spec.Name, SSHKeys: spec.SSHKeys, UserData: spec.UserData, NetworkConfig: netcfg})
	if err != nil {
		return fmt.Errorf("vmm: start %s: cloud-init: %w", spec.Name, err)
	}
	if err := cloudinit.WriteISO(seed, plan.SeedISO); err != nil {
		return fmt.Errorf("vmm: start %s: %w", spec.Name, err)
	}
	argv, err := Argv(m.cfg.Host, plan)
	if err != nil {
		return err
	}
	if err := vm.plugNICs(ctx, spec); err != nil {
		return fmt.Errorf("vmm: start %s: %w", spec.Name, err)
	}
	pid, err := launch(ctx, argv, runDir)
	if err != nil {
		return fmt.Errorf("vmm: start %s: %w", spec.Name, err)
	}
	if !trusted(pid, spec.UUID) {
		return fmt.Errorf("vmm: start %s: qemu pid %d exited right after start; see %s", spec.Name, pid, plan.ConsoleLog)
	}
	mon, err := qmp.Dial(ctx, filepath.Join(runDir, QMPSocket), qmp.WithLogger(m.log))
	if err != nil {
		return fmt.Errorf("vmm: start %s: %w", spec.Name, err)
	}
	r = &run{pid: pid, startedAt: time.Now(), mon: mon, agentPath: filepath.Join(runDir, AgentSocket), exited: make(chan struct{}), force: make(chan struct{})}
	events, unsubscribe := mon.Subscribe(256)
	vm.mu.Lock()
	vm.run = r
	vm.mu.Unlock()
	if err := mon.Cont(ctx); err != nil {
		unsubscribe()
		return fmt.Errorf("vmm: start %s: %w", spec.Name, err)
	}
	vm.watch(r, events, unsubscribe)
	vm.setState(StateRunning, "")
	return nil
}

// attach adopts a qemu that is already running (lqd restarted): it connects QMP, asks for
// the status, and watches it like one it started.
func (vm *machine) attach(ctx context.Context, pid int, startedAt time.Time) error {
	m := vm.m
	runDir := m.vmRunDir(vm.spec.UUID)
	mon, err := qmp.Dial(ctx, filepath.Join(runDir, QMPSocket), qmp.WithLogger(m.log))
	if err != nil {
		return fmt.Errorf("vmm: reattach %s: %w", vm.spec.Name, err)
	}
	events, unsubscribe := mon.Subscribe(256)
	st, err := mon.QueryStatus(ctx)
	if err != nil {
		unsubscribe()
		mon.Close()
		return fmt.Errorf("vmm: reattach %s: %w", vm.spec.Name, err)
	}
	if startedAt.IsZero() {
		startedAt = time.Now()
	}
	r := &run{pid: pid, startedAt: startedAt, mon: mon, agentPath: filepath.Join(runDir, AgentSocket), exited: make(chan struct{}), force: make(chan struct{})}
	vm.mu.Lock()
	vm.run = r
	vm.mu.Unlock()
	state := stateFromQMP(st.Status)
	if state == StateStarting {
		// lqd died between launch and cont: finish the start.
		if err := mon.Cont(ctx); err != nil {
			unsubscribe()
			mon.Close()
			return fmt.Errorf("vmm: reattach %s: cont: %w", vm.spec.Name, err)
		}
		state = StateRunning
	}
	vm.watch(r, events, unsubscribe)
	vm.setState(state, "")
	return nil
}

// watch starts the run's event loop and its guest-agent poller.
func (vm *machine) watch(r *run, events <-chan goqmp.Event, unsubscribe func()) {
	m := vm.m
	vm.startSerial(r)
	vm.startSampler(r)
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		defer unsubscribe()
		vm.eventLoop(r, events)
	}()
	go func() {
		defer m.wg.Done()
		vm.pollAgent(r)
	}()
}

func (vm *machine) eventLoop(r *run, events <-chan goqmp.Event) {
	name := vm.spec.Name
	for ev := range events {
		switch ev.Event {
		case "STOP":
			if vm.State() == StateRunning {
				vm.setState(StatePaused, "")
			}
		case "RESUME":
			if s := vm.State(); s == StatePaused || s == StateStarting {
				vm.setState(StateRunning, "")
			}
		case "SHUTDOWN":
			guest, _ := ev.Data["guest"].(bool)
			r.mu.Lock()
			r.guestShutdown = guest
			r.mu.Unlock()
			vm.setState(StateStopping, "")
		case "RESET":
			reason, _ := ev.Data["reason"].(string)
			vm.m.bus.Publish(EventReset, name, reason)
		case "GUEST_PANICKED":
			vm.m.bus.Publish(EventError, name, "guest kernel panicked")
		case qmp.EventDisconnected:
			vm.exited(r)
			return
		}
	}
	// The channel closed without a disconnect event: the monitor was closed by us.
	vm.exited(r)
}

// exited handles the end of a run: it makes sure the process is gone, cleans the run dir,
// settles the state and applies the restart policy.
func (vm *machine) exited(r *run) {
	m := vm.m
	defer close(r.exited)
	r.mu.Lock()
	detached, expected, guestOff := r.detached, r.expectExit, r.guestShutdown
	if r.agent != nil {
		r.agent.Close()
	}
	r.mu.Unlock()
	if detached {
		return // lqd is closing; qemu keeps running
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitExit(ctx, r.pid); err != nil {
		m.log.Warn("qemu closed its monitor but did not exit; killing it", "vm", vm.spec.Name, "pid", r.pid)
		kill(context.Background(), r.pid, vm.spec.UUID)
	}
	r.mon.Close()
	os.RemoveAll(m.vmRunDir(vm.spec.UUID))
	spec := vm.specCopy()
	policy, name := spec.RestartPolicy, spec.Name
	vm.unplugNICs(spec)
	// The run ends and the state settles in one step: an operation that takes the op lock
	// never sees "no qemu" while the state still says it runs.
	switch {
	case expected:
		vm.endRun(r, StateStopped, "")
	case guestOff:
		vm.endRun(r, StateStopped, "")
		if policy == RestartAlways {
			vm.scheduleRestart("the guest powered off and the restart policy is always")
		}
	default:
		vm.endRun(r, StateCrashed, "qemu exited unexpectedly")
		m.bus.Publish(EventCrashed, name, "qemu exited unexpectedly")
		if policy == RestartOnCrash || policy == RestartAlways {
			vm.scheduleRestart("qemu crashed and the restart policy is " + string(policy))
		}
	}
}

// endRun forgets run r and records the state it ended in, atomically for readers.
func (vm *machine) endRun(r *run, s State, lastError string) {
	vm.setStateAnd(s, lastError, func() {
		if vm.run == r {
			vm.run = nil
		}
		vm.guest = nil
	})
}

// Restart back-off: at most restartBurst restarts in restartWindow, each later than the last.
const (
	restartBurst  = 5
	restartWindow = 10 * time.Minute
)

func (vm *machine) scheduleRestart(why string) {
	m := vm.m
	vm.mu.Lock()
	now := time.Now()
	recent := vm.restarts[:0]
	for _, t := range vm.restarts {
		if now.Sub(t) < restartWindow {
			recent = append(recent, t)
		}
	}
	vm.restarts = recent
	if len(recent) >= restartBurst {
		vm.lastError = fmt.Sprintf("not restarted: %d restarts in %s", len(recent), restartWindow)
		vm.mu.Unlock()
		m.bus.Publish(EventError, vm.spec.Name, vm.lastError)
		return
	}
	delay := time.Duration(1<<len(recent)) * time.Second
	vm.restarts = append(vm.restarts, now)
	vm.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		select {
		case <-m.ctx.Done():
			return
		case <-time.After(delay):
		}
		vm.op.Lock()
		defer vm.op.Unlock()
		vm.mu.Lock()
		gone, state := vm.deleted, vm.state
		vm.mu.Unlock()
		if gone || ActionStart.Check(state) != nil {
			return
		}
		m.bus.Publish(EventRestart, vm.spec.Name, why)
		ctx, cancel := context.WithTimeout(m.ctx, 2*time.Minute)
		defer cancel()
		if err := vm.start(ctx); err != nil {
			m.log.Error("restart", "vm", vm.spec.Name, "err", err)
		}
	}()
}

// detach lets go of a run without touching qemu (lqd is shutting down).
func (vm *machine) detach() {
	r := vm.currentRun()
	if r == nil {
		return
	}
	r.mu.Lock()
	r.detached = true
	r.mu.Unlock()
	r.mon.Close()
}

// forceStop ends qemu now: quit over QMP, SIGKILL if that does not work. Called with op held.
func (vm *machine) forceStop(ctx context.Context) error {
	r := vm.currentRun()
	if r == nil {
		vm.setState(StateStopped, "")
		return nil
	}
	r.mu.Lock()
	r.expectExit = true
	r.mu.Unlock()
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := r.mon.Quit(qctx)
	cancel()
	if err == nil && vm.waitRun(ctx, r, 10*time.Second) {
		return nil
	}
	vm.m.log.Warn("quit did not stop qemu; killing it", "vm", vm.spec.Name, "pid", r.pid, "err", err)
	if err := kill(ctx, r.pid, vm.spec.UUID); err != nil {
		return err
	}
	r.mon.Close()
	if !vm.waitRun(ctx, r, 10*time.Second) {
		return fmt.Errorf("vmm: stop %s: qemu pid %d did not go away", vm.spec.Name, r.pid)
	}
	return nil
}

// waitRun waits until the watcher has handled r's exit.
func (vm *machine) waitRun(ctx context.Context, r *run, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.exited:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// waitGraceful is waitRun for a graceful shutdown: a stop request (forceNow) cuts it short.
func (vm *machine) waitGraceful(ctx context.Context, r *run, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.exited:
		return true
	case <-t.C:
		return false
	case <-r.force:
		return false
	case <-ctx.Done():
		return false
	}
}

// forceNow makes a graceful shutdown waiting on this run give up and force at once.
func (r *run) forceNow() {
	if r.force != nil {
		r.forceOnce.Do(func() { close(r.force) })
	}
}

// plugNICs makes the taps of the VM's NICs; on failure it removes the ones it made.
func (vm *machine) plugNICs(ctx context.Context, spec Spec) error {
	nets := vm.m.cfg.Nets
	if nets == nil || len(spec.NICs) == 0 {
		return nil
	}
	for i, n := range spec.NICs {
		if err := nets.PlugNIC(ctx, n, NICQueues(spec.CPUs)); err != nil {
			for _, done := range spec.NICs[:i] {
				nets.UnplugNIC(context.WithoutCancel(ctx), done)
			}
			return fmt.Errorf("nic %s: %w", n.Tap, err)
		}
	}
	return nil
}

// unplugNICs removes the taps of the VM's NICs once qemu is gone.
func (vm *machine) unplugNICs(spec Spec) {
	nets := vm.m.cfg.Nets
	if nets == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range spec.NICs {
		if err := nets.UnplugNIC(ctx, n); err != nil {
			vm.m.log.Warn("remove tap", "vm", spec.Name, "tap", n.Tap, "err", err)
		}
	}
}

// networkConfig is the cloud-init network-config for the VM's NICs: the same addresses
// DHCP hands out, so images without a DHCP client come up on them too. nil without NICs.
func networkConfig(nics []NIC) ([]byte, error) {
	var ifs []cloudinit.Interface
	for _, n := range nics {
		ip, err := netip.ParseAddr(n.IP)
		if err != nil || n.PrefixLen == 0 {
			continue // no static address known: DHCP only
		}
		in := cloudinit.Interface{MAC: n.MAC, Address: netip.PrefixFrom(ip, n.PrefixLen)}
		if gw, err := netip.ParseAddr(n.Gateway); err == nil {
			in.Gateway = gw
			in.DNS = []netip.Addr{gw}
		}
		if n.Domain != "" {
			in.Search = []string{n.Domain}
		}
		ifs = append(ifs, in)
	}
	if len(ifs) == 0 {
		return nil, nil
	}
	return cloudinit.NetworkConfig(ifs)
}
