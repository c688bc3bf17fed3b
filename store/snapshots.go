package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Snapshot is the record of a VM snapshot. The disks' contents (and, with Memory, the RAM
// and device state) live in the VM's qcow2 files as internal snapshots tagged Name; the
// record keeps what is needed to bring the VM back as it was: the machine type, CPU model,
// qemu version and the VM's spec (JSON owned by package vmm) at that moment.
type Snapshot struct {
	VMUUID      string
	Name        string
	Memory      bool   // RAM and device state included: reverting resumes the guest where it was
	Quiesced    bool   // guest file systems were frozen through the agent
	VMState     string // the VM's state when it was taken
	Machine     string
	CPUModel    string
	QEMUVersion string
	Spec        []byte
	CreatedAt   time.Time
}

// CreateSnapshot records a snapshot; ErrConflict if the VM has one by that name, ErrNotFound
// if the VM does not exist.
func (d *DB) CreateSnapshot(ctx context.Context, s Snapshot) error {
	_, err := d.sql.ExecContext(ctx, `INSERT INTO snapshots
		(vm_uuid, name, memory, quiesced, vm_state, machine, cpu_model, qemu_version, spec, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.VMUUID, s.Name, s.Memory, s.Quiesced, s.VMState, s.Machine, s.CPUModel, s.QEMUVersion, string(s.Spec), now())
	switch {
	case isUnique(err):
		return fmt.Errorf("store: snapshot %q: %w", s.Name, ErrConflict)
	case isForeignKey(err):
		return fmt.Errorf("store: vm %s: %w", s.VMUUID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("store: create snapshot %q: %w", s.Name, err)
	}
	return nil
}

const snapshotCols = `vm_uuid, name, memory, quiesced, vm_state, machine, cpu_model, qemu_version, spec, created_at`

func scanSnapshot(s interface{ Scan(...any) error }) (Snapshot, error) {
	var sn Snapshot
	var spec, created string
	err := s.Scan(&sn.VMUUID, &sn.Name, &sn.Memory, &sn.Quiesced, &sn.VMState, &sn.Machine, &sn.CPUModel, &sn.QEMUVersion, &spec, &created)
	sn.Spec, sn.CreatedAt = []byte(spec), parseTime(created)
	return sn, err
}

// Snapshot returns one snapshot of a VM.
func (d *DB) Snapshot(ctx context.Context, vmUUID, name string) (Snapshot, error) {
	sn, err := scanSnapshot(d.sql.QueryRowContext(ctx, `SELECT `+snapshotCols+` FROM snapshots WHERE vm_uuid = ? AND name = ?`, vmUUID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Snapshot{}, fmt.Errorf("store: snapshot %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("store: snapshot %q: %w", name, err)
	}
	return sn, nil
}

// Snapshots lists a VM's snapshots, oldest first.
func (d *DB) Snapshots(ctx context.Context, vmUUID string) ([]Snapshot, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT `+snapshotCols+` FROM snapshots WHERE vm_uuid = ? ORDER BY created_at, name`, vmUUID)
	if err != nil {
		return nil, fmt.Errorf("store: list snapshots: %w", err)
	}
	defer rows.Close()
	var out []Snapshot
	for rows.Next() {
		sn, err := scanSnapshot(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list snapshots: %w", err)
		}
		out = append(out, sn)
	}
	return out, rows.Err()
}

// DeleteSnapshot removes a snapshot's record.
func (d *DB) DeleteSnapshot(ctx context.Context, vmUUID, name string) error {
	res, err := d.sql.ExecContext(ctx, `DELETE FROM snapshots WHERE vm_uuid = ? AND name = ?`, vmUUID, name)
	if err != nil {
		return fmt.Errorf("store: delete snapshot %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: snapshot %q: %w", name, ErrNotFound)
	}
	return nil
}
