package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Pool is a storage pool's record. The driver says how Path is read ("dir": a local or
// NFS-mounted directory).
type Pool struct {
	Name      string
	Driver    string
	Path      string
	CreatedAt time.Time
}

// EnsurePool records a pool, or updates the driver and path of one with the same name (the
// daemon's default pool follows --data-dir).
func (d *DB) EnsurePool(ctx context.Context, p Pool) error {
	_, err := d.sql.ExecContext(ctx, `INSERT INTO pools (name, driver, path, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET driver = excluded.driver, path = excluded.path`, p.Name, p.Driver, p.Path, now())
	if isUnique(err) {
		return fmt.Errorf("store: pool %q: path %s belongs to another pool: %w", p.Name, p.Path, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: ensure pool %q: %w", p.Name, err)
	}
	return nil
}

// CreatePool records a new pool; ErrConflict if its name or path is taken.
func (d *DB) CreatePool(ctx context.Context, p Pool) error {
	_, err := d.sql.ExecContext(ctx, `INSERT INTO pools (name, driver, path, created_at) VALUES (?, ?, ?, ?)`,
		p.Name, p.Driver, p.Path, now())
	if isUnique(err) {
		return fmt.Errorf("store: pool %q (path %s): %w", p.Name, p.Path, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: create pool %q: %w", p.Name, err)
	}
	return nil
}

// Pools lists pools by name.
func (d *DB) Pools(ctx context.Context) ([]Pool, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT name, driver, path, created_at FROM pools ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list pools: %w", err)
	}
	defer rows.Close()
	var out []Pool
	for rows.Next() {
		var p Pool
		var created string
		if err := rows.Scan(&p.Name, &p.Driver, &p.Path, &created); err != nil {
			return nil, fmt.Errorf("store: list pools: %w", err)
		}
		p.CreatedAt = parseTime(created)
		out = append(out, p)
	}
	return out, rows.Err()
}

// DeletePool removes a pool's record; ErrInUse while it holds volumes.
func (d *DB) DeletePool(ctx context.Context, name string) error {
	res, err := d.sql.ExecContext(ctx, `DELETE FROM pools WHERE name = ?`, name)
	if isForeignKey(err) {
		return fmt.Errorf("store: pool %q holds volumes: %w", name, ErrInUse)
	}
	if err != nil {
		return fmt.Errorf("store: delete pool %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: pool %q: %w", name, ErrNotFound)
	}
	return nil
}

// Volume is a data volume's record. VMUUID (and VMName) name the VM it is attached to, ""
// when it is free: a volume is attached to at most one VM.
type Volume struct {
	Name      string
	Pool      string
	Path      string
	Format    string
	Size      int64 // virtual size in bytes
	VMUUID    string
	VMName    string // filled in by reads
	CreatedAt time.Time
}

// CreateVolume records a volume; ErrConflict if its name or path is taken, ErrNotFound if
// its pool does not exist.
func (d *DB) CreateVolume(ctx context.Context, v Volume) error {
	_, err := d.sql.ExecContext(ctx, `INSERT INTO volumes (name, pool, path, format, size, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		v.Name, v.Pool, v.Path, v.Format, v.Size, now())
	switch {
	case isUnique(err):
		return fmt.Errorf("store: volume %q: %w", v.Name, ErrConflict)
	case isForeignKey(err):
		return fmt.Errorf("store: pool %q: %w", v.Pool, ErrNotFound)
	case err != nil:
		return fmt.Errorf("store: create volume %q: %w", v.Name, err)
	}
	return nil
}

const volumeCols = `v.name, v.pool, v.path, v.format, v.size, COALESCE(v.vm_uuid, ''), COALESCE(m.name, ''), v.created_at`
const volumeFrom = ` FROM volumes v LEFT JOIN vms m ON m.uuid = v.vm_uuid`

func scanVolume(s interface{ Scan(...any) error }) (Volume, error) {
	var v Volume
	var created string
	err := s.Scan(&v.Name, &v.Pool, &v.Path, &v.Format, &v.Size, &v.VMUUID, &v.VMName, &created)
	v.CreatedAt = parseTime(created)
	return v, err
}

// Volume returns the named volume.
func (d *DB) Volume(ctx context.Context, name string) (Volume, error) {
	v, err := scanVolume(d.sql.QueryRowContext(ctx, `SELECT `+volumeCols+volumeFrom+` WHERE v.name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Volume{}, fmt.Errorf("store: volume %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Volume{}, fmt.Errorf("store: volume %q: %w", name, err)
	}
	return v, nil
}

// Volumes lists volumes by name: all of them, or those of one pool when pool is not "".
func (d *DB) Volumes(ctx context.Context, pool string) ([]Volume, error) {
	q, args := `SELECT `+volumeCols+volumeFrom+` ORDER BY v.name`, []any{}
	if pool != "" {
		q, args = `SELECT `+volumeCols+volumeFrom+` WHERE v.pool = ? ORDER BY v.name`, []any{pool}
	}
	return d.queryVolumes(ctx, q, args...)
}

// VolumesOf lists the volumes attached to a VM, by name.
func (d *DB) VolumesOf(ctx context.Context, vmUUID string) ([]Volume, error) {
	return d.queryVolumes(ctx, `SELECT `+volumeCols+volumeFrom+` WHERE v.vm_uuid = ? ORDER BY v.name`, vmUUID)
}

func (d *DB) queryVolumes(ctx context.Context, q string, args ...any) ([]Volume, error) {
	rows, err := d.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list volumes: %w", err)
	}
	defer rows.Close()
	var out []Volume
	for rows.Next() {
		v, err := scanVolume(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list volumes: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// SetVolumeSize records a volume's new virtual size.
func (d *DB) SetVolumeSize(ctx context.Context, name string, size int64) error {
	res, err := d.sql.ExecContext(ctx, `UPDATE volumes SET size = ? WHERE name = ?`, size, name)
	if err != nil {
		return fmt.Errorf("store: resize volume %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: volume %q: %w", name, ErrNotFound)
	}
	return nil
}

// AttachVolume marks a volume as attached to a VM and, when spec is not nil, records the
// VM's new spec in the same transaction. Attaching it again to the same VM only updates the
// spec; ErrInUse if another VM has it, ErrNotFound if the volume or the VM does not exist.
func (d *DB) AttachVolume(ctx context.Context, name, vmUUID string, spec []byte) error {
	return d.Tx(ctx, func(tx *sql.Tx) error {
		var owner sql.NullString
		var ownerName sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT v.vm_uuid, m.name`+volumeFrom+` WHERE v.name = ?`, name).Scan(&owner, &ownerName)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: volume %q: %w", name, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: attach volume %q: %w", name, err)
		}
		if owner.Valid && owner.String != "" && owner.String != vmUUID {
			return fmt.Errorf("store: volume %q is attached to vm %q: %w", name, ownerName.String, ErrInUse)
		}
		_, err = tx.ExecContext(ctx, `UPDATE volumes SET vm_uuid = ? WHERE name = ?`, vmUUID, name)
		if isForeignKey(err) {
			return fmt.Errorf("store: vm %s: %w", vmUUID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: attach volume %q: %w", name, err)
		}
		return setSpec(ctx, tx, vmUUID, spec)
	})
}

// setSpec records a VM's spec inside a transaction; nil leaves it alone.
func setSpec(ctx context.Context, tx *sql.Tx, vmUUID string, spec []byte) error {
	if spec == nil {
		return nil
	}
	res, err := tx.ExecContext(ctx, `UPDATE vms SET spec = ?, updated_at = ? WHERE uuid = ?`, string(spec), now(), vmUUID)
	if err != nil {
		return fmt.Errorf("store: update vm %s: %w", vmUUID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: vm %s: %w", vmUUID, ErrNotFound)
	}
	return nil
}

// DetachVolume marks a volume attached to vmUUID as free and, when spec is not nil, records
// the VM's new spec in the same transaction. A volume that is already free is fine, one
// attached to another VM is ErrInUse.
func (d *DB) DetachVolume(ctx context.Context, name, vmUUID string, spec []byte) error {
	return d.Tx(ctx, func(tx *sql.Tx) error {
		var owner sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT vm_uuid FROM volumes WHERE name = ?`, name).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: volume %q: %w", name, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: detach volume %q: %w", name, err)
		}
		if owner.Valid && owner.String != "" && owner.String != vmUUID {
			return fmt.Errorf("store: volume %q is attached to another vm: %w", name, ErrInUse)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE volumes SET vm_uuid = NULL WHERE name = ?`, name); err != nil {
			return fmt.Errorf("store: detach volume %q: %w", name, err)
		}
		return setSpec(ctx, tx, vmUUID, spec)
	})
}

// SetAttachments makes volumes exactly the set attached to a VM and records its spec, in
// one transaction (a snapshot revert restores both). A volume attached to another VM is
// ErrInUse, a missing one ErrNotFound; either changes nothing.
func (d *DB) SetAttachments(ctx context.Context, vmUUID string, volumes []string, spec []byte) error {
	return d.Tx(ctx, func(tx *sql.Tx) error {
		want := map[string]bool{}
		for _, name := range volumes {
			want[name] = true
			var owner, ownerName sql.NullString
			err := tx.QueryRowContext(ctx, `SELECT v.vm_uuid, m.name`+volumeFrom+` WHERE v.name = ?`, name).Scan(&owner, &ownerName)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("store: volume %q: %w", name, ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("store: attach volume %q: %w", name, err)
			}
			if owner.Valid && owner.String != "" && owner.String != vmUUID {
				return fmt.Errorf("store: volume %q is attached to vm %q: %w", name, ownerName.String, ErrInUse)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE volumes SET vm_uuid = ? WHERE name = ?`, vmUUID, name); err != nil {
				return fmt.Errorf("store: attach volume %q: %w", name, err)
			}
		}
		rows, err := tx.QueryContext(ctx, `SELECT name FROM volumes WHERE vm_uuid = ?`, vmUUID)
		if err != nil {
			return fmt.Errorf("store: volumes of vm %s: %w", vmUUID, err)
		}
		var drop []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return fmt.Errorf("store: volumes of vm %s: %w", vmUUID, err)
			}
			if !want[n] {
				drop = append(drop, n)
			}
		}
		rows.Close()
		for _, n := range drop {
			if _, err := tx.ExecContext(ctx, `UPDATE volumes SET vm_uuid = NULL WHERE name = ?`, n); err != nil {
				return fmt.Errorf("store: detach volume %q: %w", n, err)
			}
		}
		return setSpec(ctx, tx, vmUUID, spec)
	})
}

// DeleteVolume removes a volume's record; ErrInUse while it is attached.
func (d *DB) DeleteVolume(ctx context.Context, name string) error {
	return d.Tx(ctx, func(tx *sql.Tx) error {
		var owner sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT m.name`+volumeFrom+` WHERE v.name = ?`, name).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: volume %q: %w", name, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: delete volume %q: %w", name, err)
		}
		if owner.Valid && owner.String != "" {
			return fmt.Errorf("store: volume %q is attached to vm %q: %w", name, owner.String, ErrInUse)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM volumes WHERE name = ?`, name); err != nil {
			return fmt.Errorf("store: delete volume %q: %w", name, err)
		}
		return nil
	})
}

// CreateDerivedImage records an image whose disk is an overlay on parent's (a linked
// clone's frozen base) and, in the same transaction, moves the VM vmUUID onto it with its
// new spec. The parent cannot be deleted while the derived image exists.
func (d *DB) CreateDerivedImage(ctx context.Context, im Image, parent, vmUUID string, spec []byte) error {
	return d.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO images
			(name, format, path, size, virtual_size, sha256, kernel, initrd, cmdline, created_at, parent)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			im.Name, im.Format, im.Path, im.Size, im.VirtualSize, im.SHA256, im.Kernel, im.Initrd, im.Cmdline, now(), parent)
		switch {
		case isUnique(err):
			return fmt.Errorf("store: image %q: %w", im.Name, ErrConflict)
		case isForeignKey(err):
			return fmt.Errorf("store: image %q: %w", parent, ErrNotFound)
		case err != nil:
			return fmt.Errorf("store: create image %q: %w", im.Name, err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE vms SET image = ?, spec = ?, updated_at = ? WHERE uuid = ?`, im.Name, string(spec), now(), vmUUID)
		if err != nil {
			return fmt.Errorf("store: move vm %s onto image %q: %w", vmUUID, im.Name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: vm %s: %w", vmUUID, ErrNotFound)
		}
		return nil
	})
}

// UndoDerivedImage undoes CreateDerivedImage: the VM goes back onto parent with its old
// spec and the derived image's record is removed.
func (d *DB) UndoDerivedImage(ctx context.Context, name, parent, vmUUID string, oldSpec []byte) error {
	return d.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE vms SET image = ?, spec = ?, updated_at = ? WHERE uuid = ?`, parent, string(oldSpec), now(), vmUUID); err != nil {
			return fmt.Errorf("store: move vm %s back onto image %q: %w", vmUUID, parent, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM images WHERE name = ?`, name); err != nil {
			return fmt.Errorf("store: delete image %q: %w", name, err)
		}
		return nil
	})
}

// ImageParent returns the image that name's disk is an overlay on, "" for a standalone one.
func (d *DB) ImageParent(ctx context.Context, name string) (string, error) {
	var parent sql.NullString
	err := d.sql.QueryRowContext(ctx, `SELECT parent FROM images WHERE name = ?`, name).Scan(&parent)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: image %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: image %q: %w", name, err)
	}
	return parent.String, nil
}
