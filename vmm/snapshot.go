package vmm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/limiquantix/limiquantix/qmp"
	"github.com/limiquantix/limiquantix/store"
)

// Snapshot is a point a VM can be reverted to. The disks' contents (and with Memory, the
// RAM and device state) are internal qcow2 snapshots tagged Name in the VM's root disk and
// volumes; the cloud-init seed, which is read-only, is never part of one. The machine type,
// CPU model, qemu version and spec are recorded so a revert brings the VM back as it was.
type Snapshot struct {
	Name        string
	Memory      bool
	Quiesced    bool
	VMState     State
	Machine     string
	CPUModel    string
	QEMUVersion string
	Spec        Spec
	CreatedAt   time.Time
}

// SnapshotRequest asks for a snapshot.
type SnapshotRequest struct {
	Name    string
	Memory  bool // with RAM and device state (a running VM): the guest resumes where it was
	Quiesce bool // freeze guest file systems through the agent around a disk-only snapshot
}

func toSnapshot(s store.Snapshot) Snapshot {
	out := Snapshot{Name: s.Name, Memory: s.Memory, Quiesced: s.Quiesced, VMState: State(s.VMState), Machine: s.Machine,
		CPUModel: s.CPUModel, QEMUVersion: s.QEMUVersion, CreatedAt: s.CreatedAt}
	json.Unmarshal(s.Spec, &out.Spec)
	return out
}

// Snapshots lists a VM's snapshots, oldest first.
func (m *Manager) Snapshots(ctx context.Context, name string) ([]Snapshot, error) {
	vm, err := m.get(name)
	if err != nil {
		return nil, err
	}
	rows, err := m.cfg.DB.Snapshots(ctx, vm.spec.UUID)
	if err != nil {
		return nil, err
	}
	out := make([]Snapshot, 0, len(rows))
	for _, r := range rows {
		out = append(out, toSnapshot(r))
	}
	return out, nil
}

// CreateSnapshot takes a snapshot of a VM. Of a running (or paused) VM: with Memory, a
// snapshot-save job (disks, RAM and device state); without, an internal snapshot of every
// writable disk in one transaction, optionally with the guest's file systems frozen
// through the agent (always thawed again). Of a stopped VM: qemu-img snapshot on each disk.
// A failure leaves no snapshot behind.
func (m *Manager) CreateSnapshot(ctx context.Context, name string, req SnapshotRequest) (Snapshot, error) {
	if !ValidName(req.Name) {
		return Snapshot{}, invalid("snapshot name %q: must match ^[a-z0-9][a-z0-9-]{0,62}$", req.Name)
	}
	if req.Memory && req.Quiesce {
		return Snapshot{}, invalid("a snapshot with memory needs no quiescing: the guest resumes exactly where it was")
	}
	vm, unlock, err := m.lockVM(name)
	if err != nil {
		return Snapshot{}, err
	}
	defer unlock()
	state := vm.State()
	r, err := vm.live("take a snapshot")
	if err != nil {
		return Snapshot{}, err
	}
	spec := vm.specCopy()
	if _, err := m.cfg.DB.Snapshot(ctx, spec.UUID, req.Name); err == nil {
		return Snapshot{}, fmt.Errorf("%w: vm %q already has a snapshot %q", ErrConflict, name, req.Name)
	}
	if r == nil && (req.Memory || req.Quiesce) {
		return Snapshot{}, fmt.Errorf("%w: a snapshot with memory or quiescing needs a running VM; vm %q is %s", ErrConflict, name, state)
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return Snapshot{}, fmt.Errorf("vmm: snapshot %s: %w", name, err)
	}
	meta := store.Snapshot{VMUUID: spec.UUID, Name: req.Name, Memory: req.Memory, Quiesced: req.Quiesce,
		VMState: string(state), Machine: "q35", CPUModel: m.cfg.Host.CPUModel(), QEMUVersion: m.cfg.Host.QEMUVersion, Spec: raw}
	disks := m.writableDisks(spec)
	switch {
	case r != nil && req.Memory:
		meta.Machine = machineType(ctx, r.mon)
		err = runJob(ctx, r.mon, "snapshot-save", jobID("save"), map[string]any{
			"tag": req.Name, "vmstate": rootDiskNode, "devices": nodes(disks)})
	case r != nil:
		meta.Machine = machineType(ctx, r.mon)
		take := func() error { return internalSnapshot(ctx, r.mon, req.Name, disks) }
		if !req.Quiesce {
			err = take()
			break
		}
		a := vm.agentIfAlive(ctx, r)
		if a == nil {
			return Snapshot{}, fmt.Errorf("%w: vm %q: quiescing needs the qemu-guest-agent, and none answers", ErrAgent, name)
		}
		err = quiesced(ctx, a, func(msg string) { m.bus.Publish(EventQuiesce, name, msg) }, take)
	default:
		err = m.offlineSnapshot(ctx, req.Name, disks)
	}
	if err != nil {
		m.bus.Publish(EventError, name, "snapshot "+req.Name+": "+err.Error())
		return Snapshot{}, fmt.Errorf("vm %q: snapshot %s: %w", name, req.Name, err)
	}
	if err := m.cfg.DB.CreateSnapshot(ctx, meta); err != nil {
		m.dropSnapshot(context.WithoutCancel(ctx), vm, req.Name, disks)
		return Snapshot{}, storeErr(err)
	}
	kind := "disk-only"
	if req.Memory {
		kind = "with memory"
	} else if req.Quiesce {
		kind = "disk-only, quiesced"
	}
	m.bus.Publish(EventSnapshot, name, fmt.Sprintf("created %s (%s)", req.Name, kind))
	sn, err := m.cfg.DB.Snapshot(ctx, spec.UUID, req.Name)
	if err != nil {
		return Snapshot{}, err
	}
	return toSnapshot(sn), nil
}

// internalSnapshot snapshots every disk of a running VM at the same instant: one
// transaction of blockdev-snapshot-internal-sync actions, all or nothing.
func internalSnapshot(ctx context.Context, mon monitor, tag string, disks []writableDisk) error {
	actions := make([]map[string]any, 0, len(disks))
	for _, d := range disks {
		actions = append(actions, map[string]any{
			"type": "blockdev-snapshot-internal-sync",
			"data": map[string]string{"device": d.node, "name": tag},
		})
	}
	return qmpErr("transaction", mon.Execute(ctx, "transaction", map[string]any{"actions": actions}, nil))
}

// offlineSnapshot creates tag on the disks of a stopped VM with qemu-img; if one fails, the
// tags already made are deleted again.
func (m *Manager) offlineSnapshot(ctx context.Context, tag string, disks []writableDisk) error {
	tool := m.cfg.Storage.Tool
	if tool == nil {
		return fmt.Errorf("no storage configured")
	}
	for _, d := range disks {
		tags, err := tool.SnapshotTags(ctx, d.path)
		if err != nil {
			return err
		}
		if slices.Contains(tags, tag) {
			return fmt.Errorf("%w: disk %s already has a snapshot %q", ErrConflict, d.path, tag)
		}
	}
	for i, d := range disks {
		if err := tool.Snapshot(ctx, d.path, "create", tag); err != nil {
			for _, done := range disks[:i] {
				tool.Snapshot(context.WithoutCancel(ctx), done.path, "delete", tag)
			}
			return err
		}
	}
	return nil
}

// freezer is the part of the guest agent that quiescing uses.
type freezer interface {
	FSFreeze(ctx context.Context) (int, error)
	FSThaw(ctx context.Context) (int, error)
}

// thawTimeout bounds the thaw that always follows a freeze, even when ctx has ended.
const thawTimeout = 30 * time.Second

// quiesced runs fn with the guest's file systems frozen through the agent and thaws them
// afterwards, whatever happens: fn failing, ctx ending, or the freeze itself failing half
// way. report hears what the agent answered (how many file systems froze and thawed).
func quiesced(ctx context.Context, a freezer, report func(string), fn func() error) (err error) {
	defer func() {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), thawTimeout)
		defer cancel()
		n, terr := a.FSThaw(tctx)
		if terr != nil {
			report("fsthaw failed: " + terr.Error())
			err = errors.Join(err, fmt.Errorf("%w: fsthaw: %v", ErrAgent, terr))
			return
		}
		report(fmt.Sprintf("thawed %d file system(s)", n))
	}()
	n, err := a.FSFreeze(ctx)
	if err != nil {
		return fmt.Errorf("%w: fsfreeze: %v", ErrAgent, err)
	}
	report(fmt.Sprintf("froze %d file system(s)", n))
	return fn()
}

// RevertSnapshot brings a VM back to a snapshot, spec included (CPUs, memory, attached
// volumes...). With memory: in place (snapshot-load) when the VM runs with the same
// hardware, else the VM is (re)started with the snapshot's spec and then loaded; either
// way it ends up running where the snapshot left it. A disk-only snapshot is reverted
// with qemu-img while the VM is stopped.
func (m *Manager) RevertSnapshot(ctx context.Context, name, snap string) (VM, error) {
	vm, unlock, err := m.lockVM(name)
	if err != nil {
		return VM{}, err
	}
	defer unlock()
	cur := vm.specCopy()
	row, err := m.cfg.DB.Snapshot(ctx, cur.UUID, snap)
	if err != nil {
		return VM{}, storeErr(err)
	}
	r, err := vm.live("revert a snapshot")
	if err != nil {
		return VM{}, err
	}
	sn := toSnapshot(row)
	target := sn.Spec
	target.UUID, target.Name, target.NICs, target.Image = cur.UUID, cur.Name, cur.NICs, cur.Image
	var vols []string
	for i, d := range target.Disks {
		vol, err := m.cfg.DB.Volume(ctx, d.Volume)
		if errors.Is(err, store.ErrNotFound) {
			return VM{}, fmt.Errorf("%w: volume %q of snapshot %q no longer exists", ErrConflict, d.Volume, snap)
		}
		if err != nil {
			return VM{}, err
		}
		if vol.VMUUID != "" && vol.VMUUID != cur.UUID {
			return VM{}, fmt.Errorf("%w: volume %q of snapshot %q is attached to vm %q now", ErrInUse, d.Volume, snap, vol.VMName)
		}
		target.Disks[i].Path = vol.Path
		vols = append(vols, d.Volume)
	}
	if err := target.Validate(m.cfg.Host.Limits()); err != nil {
		return VM{}, err
	}
	if err := checkPorts(target); err != nil {
		return VM{}, fmt.Errorf("%w: %v", ErrConflict, err)
	}
	raw, err := json.Marshal(target)
	if err != nil {
		return VM{}, fmt.Errorf("vmm: revert %s: %w", name, err)
	}
	commit := func() error {
		if err := m.cfg.DB.SetAttachments(ctx, cur.UUID, vols, raw); err != nil {
			return storeErr(err)
		}
		vm.setSpec(target)
		return nil
	}
	disks := m.writableDisks(target)
	fail := func(err error) (VM, error) {
		m.bus.Publish(EventError, name, "revert to "+snap+": "+err.Error())
		return vm.view(m.cfg.Host.Accel), fmt.Errorf("vm %q: revert to %s: %w", name, snap, err)
	}
	switch {
	case !sn.Memory && r != nil:
		return VM{}, fmt.Errorf("%w: %q is a disk-only snapshot, reverted while the VM is stopped: stop vm %q first", ErrConflict, snap, name)
	case !sn.Memory:
		if err := m.checkTags(ctx, snap, disks); err != nil {
			return VM{}, err
		}
		for _, d := range disks {
			if err := m.cfg.Storage.Tool.Snapshot(ctx, d.path, "apply", snap); err != nil {
				return fail(err)
			}
		}
		if err := commit(); err != nil {
			return fail(err)
		}
	case r != nil && sameHardware(cur, target):
		if err := vm.loadSnapshot(ctx, r, snap, disks); err != nil {
			return fail(err)
		}
		if err := commit(); err != nil {
			return fail(err)
		}
	default:
		// The snapshot's hardware differs from the running VM's (or it is stopped): start
		// qemu with the snapshot's spec, then load the snapshot into it.
		if err := m.checkTags(ctx, snap, disks); err != nil {
			return VM{}, err
		}
		if r != nil {
			if err := vm.forceStop(ctx); err != nil {
				return fail(err)
			}
		}
		if err := commit(); err != nil {
			return fail(err)
		}
		if err := vm.start(ctx); err != nil {
			return fail(err)
		}
		if err := vm.loadSnapshot(ctx, vm.currentRun(), snap, disks); err != nil {
			return fail(err)
		}
	}
	m.bus.Publish(EventSnapshot, name, "reverted to "+snap)
	return vm.view(m.cfg.Host.Accel), nil
}

// checkTags makes sure every disk of a stopped VM has the snapshot, before anything changes.
func (m *Manager) checkTags(ctx context.Context, tag string, disks []writableDisk) error {
	if m.cfg.Storage.Tool == nil {
		return fmt.Errorf("vmm: no storage configured")
	}
	for _, d := range disks {
		tags, err := m.cfg.Storage.Tool.SnapshotTags(ctx, d.path)
		if err != nil {
			return err
		}
		if !slices.Contains(tags, tag) {
			what := "the root disk"
			if d.volume != "" {
				what = "volume " + d.volume
			}
			return fmt.Errorf("%w: %s has no snapshot %q (attached after it was taken?)", ErrConflict, what, tag)
		}
	}
	return nil
}

// Messages of snapshot-load failures that qemu reports before it touches anything.
var loadPrecheckErrors = []string{"does not exist in one or more devices", "disk-only snapshot", "can't snapshot", "doesn't support snapshot"}

// loadSnapshot runs a snapshot-load job. qemu stops the VM first and resumes it only when
// the load succeeds. If qemu refused before changing anything, the VM is resumed as it was;
// otherwise its state is undefined and it stays paused with an error that says so, never
// silently.
func (vm *machine) loadSnapshot(ctx context.Context, r *run, tag string, disks []writableDisk) error {
	if r == nil {
		return fmt.Errorf("vm %q has no qemu", vm.spec.Name)
	}
	wasRunning := vm.State() == StateRunning
	err := runJob(ctx, r.mon, "snapshot-load", jobID("load"), map[string]any{
		"tag": tag, "vmstate": rootDiskNode, "devices": nodes(disks)})
	if err == nil {
		if st, qerr := r.mon.QueryStatus(ctx); qerr == nil {
			vm.setState(stateFromQMP(st.Status), "")
		}
		return nil
	}
	untouched := false
	for _, s := range loadPrecheckErrors {
		untouched = untouched || strings.Contains(err.Error(), s)
	}
	if untouched && wasRunning {
		if cerr := r.mon.Cont(ctx); cerr == nil {
			vm.setState(StateRunning, "")
			return fmt.Errorf("%w: %v (nothing changed; the VM runs on)", ErrConflict, err)
		}
	}
	msg := fmt.Sprintf("snapshot-load %s failed: %v; the VM is paused and its state is undefined: revert again, or stop it", tag, err)
	vm.setState(StatePaused, msg)
	return errors.New(msg)
}

// sameHardware reports whether a VM with spec a can load a snapshot taken with spec b in
// place: the same vCPUs, memory, NICs and disks on the same root ports.
func sameHardware(a, b Spec) bool {
	if a.CPUs != b.CPUs || a.MemoryMiB != b.MemoryMiB || len(a.NICs) != len(b.NICs) || len(a.Disks) != len(b.Disks) {
		return false
	}
	for i := range a.NICs {
		if a.NICs[i].MAC != b.NICs[i].MAC || a.NICs[i].Port != b.NICs[i].Port {
			return false
		}
	}
	key := func(d DiskAttachment) string { return fmt.Sprintf("%s@%d", d.Volume, d.Port) }
	ka, kb := make([]string, 0, len(a.Disks)), make([]string, 0, len(b.Disks))
	for i := range a.Disks {
		ka, kb = append(ka, key(a.Disks[i])), append(kb, key(b.Disks[i]))
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

// DeleteSnapshot deletes a snapshot from the VM's current disks (a snapshot-delete job
// while it runs, qemu-img while it is stopped) and then its record. Other snapshots, older
// or newer, are untouched: internal qcow2 snapshots do not depend on each other.
func (m *Manager) DeleteSnapshot(ctx context.Context, name, snap string) error {
	vm, unlock, err := m.lockVM(name)
	if err != nil {
		return err
	}
	defer unlock()
	spec := vm.specCopy()
	if _, err := m.cfg.DB.Snapshot(ctx, spec.UUID, snap); err != nil {
		return storeErr(err)
	}
	if _, err := vm.live("delete a snapshot"); err != nil {
		return err
	}
	if err := m.dropSnapshot(ctx, vm, snap, m.writableDisks(spec)); err != nil {
		m.bus.Publish(EventError, name, "delete snapshot "+snap+": "+err.Error())
		return fmt.Errorf("vm %q: delete snapshot %s: %w", name, snap, err)
	}
	if err := m.cfg.DB.DeleteSnapshot(ctx, spec.UUID, snap); err != nil {
		return storeErr(err)
	}
	m.bus.Publish(EventSnapshot, name, "deleted "+snap)
	return nil
}

// dropSnapshot removes tag from the VM's disks; disks that lack it are skipped.
func (m *Manager) dropSnapshot(ctx context.Context, vm *machine, tag string, disks []writableDisk) error {
	if r := vm.currentRun(); r != nil && vm.State().Active() {
		return runJob(ctx, r.mon, "snapshot-delete", jobID("delete"), map[string]any{"tag": tag, "devices": nodes(disks)})
	}
	tool := m.cfg.Storage.Tool
	if tool == nil {
		return fmt.Errorf("no storage configured")
	}
	for _, d := range disks {
		tags, err := tool.SnapshotTags(ctx, d.path)
		if err != nil {
			return err
		}
		if !slices.Contains(tags, tag) {
			continue
		}
		if err := tool.Snapshot(ctx, d.path, "delete", tag); err != nil {
			return err
		}
	}
	return nil
}

// machineType asks qemu which versioned machine type "q35" resolved to: what a snapshot
// with memory needs to be loaded again.
func machineType(ctx context.Context, mon monitor) string {
	var machines []struct {
		Name  string `json:"name"`
		Alias string `json:"alias"`
	}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := mon.Execute(qctx, "query-machines", nil, &machines); err == nil {
		for _, mt := range machines {
			if mt.Alias == "q35" {
				return mt.Name
			}
		}
	}
	return "q35"
}

// Jobs: snapshot-save/-load/-delete and block jobs (backups) run as qemu jobs that lqd
// polls with query-jobs until they conclude, then dismisses.
const (
	jobPoll = 100 * time.Millisecond
	// jobQueryTimeout bounds one query-jobs: snapshot jobs run in qemu's main loop, which
	// answers nothing until they are done, so a query can wait that long.
	jobQueryTimeout = 30 * time.Minute
)

// jobInfo is an element of query-jobs' reply.
type jobInfo struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Status   string `json:"status"`
	Current  int64  `json:"current-progress"`
	Total    int64  `json:"total-progress"`
	ErrorMsg string `json:"error"`
}

func jobID(kind string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "lq-" + kind + "-" + hex.EncodeToString(b)
}

// runJob starts a job command with "job-id" added to args and waits for it (waitJob).
func runJob(ctx context.Context, mon monitor, cmd, id string, args map[string]any) error {
	args["job-id"] = id
	if err := mon.Execute(ctx, cmd, args, nil); err != nil {
		return qmpErr(cmd, err)
	}
	return waitJob(ctx, mon, id, nil)
}

// waitJob polls query-jobs until job id has concluded, dismisses it and returns its error.
// If ctx ends first, the job is cancelled and still waited for, so nothing is left running.
// progress, when not nil, hears the job's progress.
func waitJob(ctx context.Context, mon monitor, id string, progress func(cur, total int64)) error {
	cancelled := false
	for {
		var jobs []jobInfo
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jobQueryTimeout)
		err := mon.Execute(qctx, "query-jobs", nil, &jobs)
		cancel()
		if err != nil {
			return fmt.Errorf("job %s: query-jobs: %w", id, err)
		}
		i := slices.IndexFunc(jobs, func(j jobInfo) bool { return j.ID == id })
		if i < 0 {
			return fmt.Errorf("job %s: qemu no longer knows it", id)
		}
		j := jobs[i]
		if progress != nil {
			progress(j.Current, j.Total)
		}
		if j.Status == "concluded" {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			derr := mon.Execute(dctx, "job-dismiss", map[string]string{"id": id}, nil)
			cancel()
			switch {
			case j.ErrorMsg != "":
				return qmpErr(j.Type, &qmp.Error{Command: j.Type, Class: "GenericError", Desc: j.ErrorMsg})
			case cancelled:
				return fmt.Errorf("job %s: %w", id, ctx.Err())
			case derr != nil:
				return fmt.Errorf("job %s: job-dismiss: %w", id, derr)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if !cancelled {
				cancelled = true
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				mon.Execute(cctx, "job-cancel", map[string]string{"id": id}, nil)
				cancel()
			}
			time.Sleep(jobPoll)
		case <-time.After(jobPoll):
		}
	}
}
