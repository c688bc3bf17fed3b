package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order, each once, each in its own transaction. Append only:
// a released migration is never edited, because hosts already ran it.
var migrations = []string{
	// 1: the foundation.
	`CREATE TABLE tokens (
		id         TEXT PRIMARY KEY,
		name       TEXT NOT NULL UNIQUE,
		hash       TEXT NOT NULL UNIQUE,
		role       TEXT NOT NULL,
		created_at TEXT NOT NULL
	);
	CREATE TABLE images (
		name         TEXT PRIMARY KEY,
		format       TEXT NOT NULL,
		path         TEXT NOT NULL,
		size         INTEGER NOT NULL,
		virtual_size INTEGER NOT NULL,
		sha256       TEXT NOT NULL,
		kernel       TEXT NOT NULL DEFAULT '',
		initrd       TEXT NOT NULL DEFAULT '',
		cmdline      TEXT NOT NULL DEFAULT '',
		created_at   TEXT NOT NULL
	);
	CREATE TABLE vms (
		uuid       TEXT PRIMARY KEY,
		name       TEXT NOT NULL UNIQUE,
		image      TEXT NOT NULL REFERENCES images(name) ON DELETE RESTRICT,
		spec       TEXT NOT NULL,
		state      TEXT NOT NULL,
		pid        INTEGER NOT NULL DEFAULT 0,
		started_at TEXT NOT NULL DEFAULT '',
		created_at TEXT NOT NULL,
		updated_at TEXT NOT NULL
	);
	CREATE TABLE events (
		id      INTEGER PRIMARY KEY AUTOINCREMENT,
		time    TEXT NOT NULL,
		type    TEXT NOT NULL,
		vm      TEXT NOT NULL DEFAULT '',
		message TEXT NOT NULL DEFAULT ''
	);`,
	// 2: networks, security groups and NICs.
	`CREATE TABLE networks (
		name       TEXT PRIMARY KEY,
		bridge     TEXT NOT NULL UNIQUE,
		subnet     TEXT NOT NULL,
		gateway    TEXT NOT NULL,
		nat        INTEGER NOT NULL,
		mac        TEXT NOT NULL,
		created_at TEXT NOT NULL
	);
	CREATE TABLE security_groups (
		name       TEXT PRIMARY KEY,
		created_at TEXT NOT NULL
	);
	CREATE TABLE sg_rules (
		id           TEXT PRIMARY KEY,
		grp          TEXT NOT NULL REFERENCES security_groups(name) ON DELETE CASCADE,
		direction    TEXT NOT NULL,
		proto        TEXT NOT NULL,
		port_from    INTEGER NOT NULL,
		port_to      INTEGER NOT NULL,
		cidr         TEXT NOT NULL DEFAULT '',
		remote_group TEXT REFERENCES security_groups(name) ON DELETE RESTRICT,
		created_at   TEXT NOT NULL
	);
	CREATE INDEX sg_rules_grp ON sg_rules(grp);
	CREATE TABLE nics (
		tap     TEXT PRIMARY KEY,
		vm_uuid TEXT NOT NULL REFERENCES vms(uuid) ON DELETE CASCADE,
		idx     INTEGER NOT NULL,
		network TEXT NOT NULL REFERENCES networks(name) ON DELETE RESTRICT,
		mac     TEXT NOT NULL UNIQUE,
		ip      TEXT NOT NULL,
		UNIQUE (network, ip),
		UNIQUE (vm_uuid, idx)
	);
	CREATE TABLE nic_groups (
		tap TEXT NOT NULL REFERENCES nics(tap) ON DELETE CASCADE,
		grp TEXT NOT NULL REFERENCES security_groups(name) ON DELETE RESTRICT,
		PRIMARY KEY (tap, grp)
	);`,
	// 3: storage pools, volumes (attached to at most one VM), snapshots, and images derived
	// from other images (a linked clone's frozen base is an overlay on its parent).
	`CREATE TABLE pools (
		name       TEXT PRIMARY KEY,
		driver     TEXT NOT NULL,
		path       TEXT NOT NULL UNIQUE,
		created_at TEXT NOT NULL
	);
	CREATE TABLE volumes (
		name       TEXT PRIMARY KEY,
		pool       TEXT NOT NULL REFERENCES pools(name) ON DELETE RESTRICT,
		path       TEXT NOT NULL UNIQUE,
		format     TEXT NOT NULL,
		size       INTEGER NOT NULL,
		vm_uuid    TEXT REFERENCES vms(uuid) ON DELETE SET NULL,
		created_at TEXT NOT NULL
	);
	CREATE INDEX volumes_vm ON volumes(vm_uuid);
	CREATE TABLE snapshots (
		vm_uuid      TEXT NOT NULL REFERENCES vms(uuid) ON DELETE CASCADE,
		name         TEXT NOT NULL,
		memory       INTEGER NOT NULL,
		quiesced     INTEGER NOT NULL,
		vm_state     TEXT NOT NULL,
		machine      TEXT NOT NULL,
		cpu_model    TEXT NOT NULL,
		qemu_version TEXT NOT NULL,
		spec         TEXT NOT NULL,
		created_at   TEXT NOT NULL,
		PRIMARY KEY (vm_uuid, name)
	);
	ALTER TABLE images ADD COLUMN parent TEXT REFERENCES images(name) ON DELETE RESTRICT;`,
}

func (d *DB) migrate(ctx context.Context) error {
	if _, err := d.sql.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	var have int
	if err := d.sql.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("store: database schema v%d is newer than this binary (v%d)", have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		err := d.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, now())
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migration %d: %w", v, err)
		}
	}
	return nil
}

// SchemaVersion reports the applied schema version.
func (d *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := d.sql.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}
