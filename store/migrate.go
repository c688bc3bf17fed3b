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
