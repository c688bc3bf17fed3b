package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrInUse is returned when a record cannot be deleted because another refers to it.
var ErrInUse = errors.New("in use")

// Image is one entry of the image library.
type Image struct {
	Name        string
	Format      string // qcow2 or raw
	Path        string
	Size        int64 // bytes on disk
	VirtualSize int64 // guest-visible bytes
	SHA256      string
	Kernel      string // optional, for direct kernel boot
	Initrd      string
	Cmdline     string
	CreatedAt   time.Time
}

// CreateImage records an image; ErrConflict if the name is taken.
func (d *DB) CreateImage(ctx context.Context, im Image) error {
	_, err := d.sql.ExecContext(ctx, `INSERT INTO images
		(name, format, path, size, virtual_size, sha256, kernel, initrd, cmdline, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		im.Name, im.Format, im.Path, im.Size, im.VirtualSize, im.SHA256, im.Kernel, im.Initrd, im.Cmdline, now())
	if isUnique(err) {
		return fmt.Errorf("store: image %q: %w", im.Name, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: create image %q: %w", im.Name, err)
	}
	return nil
}

const imageCols = `name, format, path, size, virtual_size, sha256, kernel, initrd, cmdline, created_at`

func scanImage(s interface{ Scan(...any) error }) (Image, error) {
	var im Image
	var created string
	err := s.Scan(&im.Name, &im.Format, &im.Path, &im.Size, &im.VirtualSize, &im.SHA256, &im.Kernel, &im.Initrd, &im.Cmdline, &created)
	im.CreatedAt = parseTime(created)
	return im, err
}

// Image returns the named image.
func (d *DB) Image(ctx context.Context, name string) (Image, error) {
	im, err := scanImage(d.sql.QueryRowContext(ctx, `SELECT `+imageCols+` FROM images WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Image{}, fmt.Errorf("store: image %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Image{}, fmt.Errorf("store: image %q: %w", name, err)
	}
	return im, nil
}

// Images lists the image library by name.
func (d *DB) Images(ctx context.Context) ([]Image, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT `+imageCols+` FROM images ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list images: %w", err)
	}
	defer rows.Close()
	var out []Image
	for rows.Next() {
		im, err := scanImage(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list images: %w", err)
		}
		out = append(out, im)
	}
	return out, rows.Err()
}

// DeleteImage removes an image record; ErrInUse while any VM is based on it.
func (d *DB) DeleteImage(ctx context.Context, name string) error {
	return d.Tx(ctx, func(tx *sql.Tx) error {
		var users int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM vms WHERE image = ?`, name).Scan(&users); err != nil {
			return fmt.Errorf("store: delete image %q: %w", name, err)
		}
		if users > 0 {
			return fmt.Errorf("store: image %q is used by %d VM(s): %w", name, users, ErrInUse)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM images WHERE name = ?`, name)
		if isForeignKey(err) { // another image (a linked clone's base) is an overlay on it
			return fmt.Errorf("store: image %q is the base of another image: %w", name, ErrInUse)
		}
		if err != nil {
			return fmt.Errorf("store: delete image %q: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: image %q: %w", name, ErrNotFound)
		}
		return nil
	})
}

// VM is a virtual machine's row. Spec is JSON owned by package vmm.
type VM struct {
	UUID      string
	Name      string
	Image     string
	Spec      []byte
	State     string
	PID       int
	StartedAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CreateVM records a new VM; ErrConflict if the name is taken, ErrNotFound if its image is missing.
func (d *DB) CreateVM(ctx context.Context, vm VM) error {
	return d.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM images WHERE name = ?`, vm.Image).Scan(&n); err != nil {
			return fmt.Errorf("store: create vm %q: %w", vm.Name, err)
		}
		if n == 0 {
			return fmt.Errorf("store: image %q: %w", vm.Image, ErrNotFound)
		}
		t := now()
		_, err := tx.ExecContext(ctx, `INSERT INTO vms (uuid, name, image, spec, state, pid, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, 0, ?, ?)`, vm.UUID, vm.Name, vm.Image, string(vm.Spec), vm.State, t, t)
		if isUnique(err) {
			return fmt.Errorf("store: vm %q: %w", vm.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("store: create vm %q: %w", vm.Name, err)
		}
		return nil
	})
}

const vmCols = `uuid, name, image, spec, state, pid, started_at, created_at, updated_at`

func scanVM(s interface{ Scan(...any) error }) (VM, error) {
	var vm VM
	var spec, started, created, updated string
	err := s.Scan(&vm.UUID, &vm.Name, &vm.Image, &spec, &vm.State, &vm.PID, &started, &created, &updated)
	vm.Spec = []byte(spec)
	vm.StartedAt, vm.CreatedAt, vm.UpdatedAt = parseTime(started), parseTime(created), parseTime(updated)
	return vm, err
}

// VMs lists all VMs by name.
func (d *DB) VMs(ctx context.Context) ([]VM, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT `+vmCols+` FROM vms ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list vms: %w", err)
	}
	defer rows.Close()
	var out []VM
	for rows.Next() {
		vm, err := scanVM(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list vms: %w", err)
		}
		out = append(out, vm)
	}
	return out, rows.Err()
}

// UpdateVMSpec replaces a VM's spec.
func (d *DB) UpdateVMSpec(ctx context.Context, uuid string, spec []byte) error {
	return d.updateVM(ctx, uuid, `spec = ?`, string(spec))
}

// SetVMRuntime records a VM's state, qemu pid (0 when none) and start time.
func (d *DB) SetVMRuntime(ctx context.Context, uuid, state string, pid int, startedAt time.Time) error {
	started := ""
	if !startedAt.IsZero() {
		started = startedAt.UTC().Format(time.RFC3339Nano)
	}
	return d.updateVM(ctx, uuid, `state = ?, pid = ?, started_at = ?`, state, pid, started)
}

func (d *DB) updateVM(ctx context.Context, uuid, set string, args ...any) error {
	args = append(args, now(), uuid)
	res, err := d.sql.ExecContext(ctx, `UPDATE vms SET `+set+`, updated_at = ? WHERE uuid = ?`, args...)
	if err != nil {
		return fmt.Errorf("store: update vm %s: %w", uuid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: vm %s: %w", uuid, ErrNotFound)
	}
	return nil
}

// DeleteVM removes a VM's row.
func (d *DB) DeleteVM(ctx context.Context, uuid string) error {
	res, err := d.sql.ExecContext(ctx, `DELETE FROM vms WHERE uuid = ?`, uuid)
	if err != nil {
		return fmt.Errorf("store: delete vm %s: %w", uuid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: vm %s: %w", uuid, ErrNotFound)
	}
	return nil
}

// Token is an API credential; only its hash is stored.
type Token struct {
	ID        string
	Name      string
	Hash      string
	Role      string
	CreatedAt time.Time
}

// CreateToken records a token.
func (d *DB) CreateToken(ctx context.Context, t Token) error {
	_, err := d.sql.ExecContext(ctx, `INSERT INTO tokens (id, name, hash, role, created_at) VALUES (?, ?, ?, ?, ?)`,
		t.ID, t.Name, t.Hash, t.Role, now())
	if isUnique(err) {
		return fmt.Errorf("store: token %q: %w", t.Name, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: create token %q: %w", t.Name, err)
	}
	return nil
}

// TokenByHash finds the token with the given hash.
func (d *DB) TokenByHash(ctx context.Context, hash string) (Token, error) {
	var t Token
	var created string
	err := d.sql.QueryRowContext(ctx, `SELECT id, name, hash, role, created_at FROM tokens WHERE hash = ?`, hash).
		Scan(&t.ID, &t.Name, &t.Hash, &t.Role, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("store: token: %w", ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("store: token: %w", err)
	}
	t.CreatedAt = parseTime(created)
	return t, nil
}

// DeleteTokenByName removes a token.
func (d *DB) DeleteTokenByName(ctx context.Context, name string) error {
	_, err := d.sql.ExecContext(ctx, `DELETE FROM tokens WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("store: delete token %q: %w", name, err)
	}
	return nil
}

// Event is one entry of the host's event log.
type Event struct {
	ID      int64
	Time    time.Time
	Type    string
	VM      string
	Message string
}

// AddEvent appends an event and returns it with its id.
func (d *DB) AddEvent(ctx context.Context, e Event) (Event, error) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	res, err := d.sql.ExecContext(ctx, `INSERT INTO events (time, type, vm, message) VALUES (?, ?, ?, ?)`,
		e.Time.UTC().Format(time.RFC3339Nano), e.Type, e.VM, e.Message)
	if err != nil {
		return e, fmt.Errorf("store: add event: %w", err)
	}
	e.ID, _ = res.LastInsertId()
	return e, nil
}

// Events returns up to limit events with id > after, oldest first.
func (d *DB) Events(ctx context.Context, after int64, limit int) ([]Event, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT id, time, type, vm, message FROM events WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var t string
		if err := rows.Scan(&e.ID, &t, &e.Type, &e.VM, &e.Message); err != nil {
			return nil, fmt.Errorf("store: events: %w", err)
		}
		e.Time = parseTime(t)
		out = append(out, e)
	}
	return out, rows.Err()
}
