package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// isForeignKey reports a foreign-key violation: a delete of something still referred to,
// or an insert that refers to something missing.
func isForeignKey(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	// ON DELETE RESTRICT reports SQLITE_CONSTRAINT_TRIGGER, other violations _FOREIGNKEY.
	return se.ExtendedCode == sqlite3.ErrConstraintForeignKey ||
		(se.ExtendedCode == sqlite3.ErrConstraintTrigger && strings.Contains(se.Error(), "FOREIGN KEY"))
}

// Network is a managed network: a bridge with a subnet and a gateway address.
type Network struct {
	Name    string
	Bridge  string
	Subnet  string // CIDR
	Gateway string
	NAT     bool
	MAC     string // the bridge's own MAC
}

// CreateNetwork records a network; ErrConflict if its name or bridge is taken.
func (d *DB) CreateNetwork(ctx context.Context, n Network) error {
	_, err := d.sql.ExecContext(ctx, `INSERT INTO networks (name, bridge, subnet, gateway, nat, mac, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		n.Name, n.Bridge, n.Subnet, n.Gateway, n.NAT, n.MAC, now())
	if isUnique(err) {
		return fmt.Errorf("store: network %q: %w", n.Name, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: create network %q: %w", n.Name, err)
	}
	return nil
}

// Networks lists networks by name.
func (d *DB) Networks(ctx context.Context) ([]Network, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT name, bridge, subnet, gateway, nat, mac FROM networks ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list networks: %w", err)
	}
	defer rows.Close()
	var out []Network
	for rows.Next() {
		var n Network
		if err := rows.Scan(&n.Name, &n.Bridge, &n.Subnet, &n.Gateway, &n.NAT, &n.MAC); err != nil {
			return nil, fmt.Errorf("store: list networks: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// DeleteNetwork removes a network; ErrInUse while NICs are on it.
func (d *DB) DeleteNetwork(ctx context.Context, name string) error {
	res, err := d.sql.ExecContext(ctx, `DELETE FROM networks WHERE name = ?`, name)
	if isForeignKey(err) {
		return fmt.Errorf("store: network %q has NICs: %w", name, ErrInUse)
	}
	if err != nil {
		return fmt.Errorf("store: delete network %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: network %q: %w", name, ErrNotFound)
	}
	return nil
}

// Rule is one security-group rule.
type Rule struct {
	ID          string
	Group       string
	Direction   string // in | out
	Proto       string // tcp | udp | icmp | any
	PortFrom    int
	PortTo      int
	CIDR        string // source (in) or destination (out); "" when RemoteGroup is set
	RemoteGroup string
}

// SecurityGroup is a named set of rules.
type SecurityGroup struct {
	Name  string
	Rules []Rule
}

// CreateSecurityGroup records an empty group.
func (d *DB) CreateSecurityGroup(ctx context.Context, name string) error {
	_, err := d.sql.ExecContext(ctx, `INSERT INTO security_groups (name, created_at) VALUES (?, ?)`, name, now())
	if isUnique(err) {
		return fmt.Errorf("store: security group %q: %w", name, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: create security group %q: %w", name, err)
	}
	return nil
}

// DeleteSecurityGroup removes a group and its rules; ErrInUse while a NIC or another
// group's rule refers to it.
func (d *DB) DeleteSecurityGroup(ctx context.Context, name string) error {
	return d.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sg_rules WHERE grp = ?`, name); err != nil {
			return fmt.Errorf("store: delete security group %q: %w", name, err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM security_groups WHERE name = ?`, name)
		if isForeignKey(err) {
			return fmt.Errorf("store: security group %q is used by NICs or other groups' rules: %w", name, ErrInUse)
		}
		if err != nil {
			return fmt.Errorf("store: delete security group %q: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: security group %q: %w", name, ErrNotFound)
		}
		return nil
	})
}

// AddRule appends a rule to its group; ErrNotFound if the group or remote group is missing.
func (d *DB) AddRule(ctx context.Context, r Rule) error {
	var remote any
	if r.RemoteGroup != "" {
		remote = r.RemoteGroup
	}
	_, err := d.sql.ExecContext(ctx, `INSERT INTO sg_rules (id, grp, direction, proto, port_from, port_to, cidr, remote_group, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.Group, r.Direction, r.Proto, r.PortFrom, r.PortTo, r.CIDR, remote, now())
	if isForeignKey(err) {
		return fmt.Errorf("store: rule for group %q: %w", r.Group, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: add rule to %q: %w", r.Group, err)
	}
	return nil
}

// DeleteRule removes one rule of a group.
func (d *DB) DeleteRule(ctx context.Context, group, id string) error {
	res, err := d.sql.ExecContext(ctx, `DELETE FROM sg_rules WHERE grp = ? AND id = ?`, group, id)
	if err != nil {
		return fmt.Errorf("store: delete rule %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: rule %s of group %q: %w", id, group, ErrNotFound)
	}
	return nil
}

// SecurityGroups lists every group with its rules, by name, rules in creation order.
func (d *DB) SecurityGroups(ctx context.Context) ([]SecurityGroup, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT name FROM security_groups ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list security groups: %w", err)
	}
	var out []SecurityGroup
	idx := map[string]int{}
	for rows.Next() {
		var g SecurityGroup
		if err := rows.Scan(&g.Name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: list security groups: %w", err)
		}
		idx[g.Name] = len(out)
		out = append(out, g)
	}
	rows.Close()
	rrows, err := d.sql.QueryContext(ctx, `SELECT id, grp, direction, proto, port_from, port_to, cidr, COALESCE(remote_group, '')
		FROM sg_rules ORDER BY created_at, rowid`)
	if err != nil {
		return nil, fmt.Errorf("store: list rules: %w", err)
	}
	defer rrows.Close()
	for rrows.Next() {
		var r Rule
		if err := rrows.Scan(&r.ID, &r.Group, &r.Direction, &r.Proto, &r.PortFrom, &r.PortTo, &r.CIDR, &r.RemoteGroup); err != nil {
			return nil, fmt.Errorf("store: list rules: %w", err)
		}
		if i, ok := idx[r.Group]; ok {
			out[i].Rules = append(out[i].Rules, r)
		}
	}
	return out, rrows.Err()
}

// NIC is a VM's network interface as the network layer records it.
type NIC struct {
	Tap     string
	VMUUID  string
	VMName  string // filled by NICs; not stored here
	Index   int
	Network string
	MAC     string
	IP      string
	Groups  []string
}

// AddNICs records the NICs of a VM in one transaction: all or none. A taken address on the
// same network or a taken MAC is ErrConflict; a missing network or group is ErrNotFound.
func (d *DB) AddNICs(ctx context.Context, nics []NIC) error {
	return d.Tx(ctx, func(tx *sql.Tx) error {
		for _, n := range nics {
			_, err := tx.ExecContext(ctx, `INSERT INTO nics (tap, vm_uuid, idx, network, mac, ip) VALUES (?, ?, ?, ?, ?, ?)`,
				n.Tap, n.VMUUID, n.Index, n.Network, n.MAC, n.IP)
			switch {
			case isUnique(err):
				return fmt.Errorf("store: nic %s (%s on %s): address or MAC taken: %w", n.Tap, n.IP, n.Network, ErrConflict)
			case isForeignKey(err):
				return fmt.Errorf("store: nic %s: network %q or VM: %w", n.Tap, n.Network, ErrNotFound)
			case err != nil:
				return fmt.Errorf("store: add nic %s: %w", n.Tap, err)
			}
			for _, g := range n.Groups {
				_, err := tx.ExecContext(ctx, `INSERT INTO nic_groups (tap, grp) VALUES (?, ?)`, n.Tap, g)
				switch {
				case isForeignKey(err):
					return fmt.Errorf("store: security group %q: %w", g, ErrNotFound)
				case isUnique(err):
					return fmt.Errorf("store: nic %s lists group %q twice: %w", n.Tap, g, ErrConflict)
				case err != nil:
					return fmt.Errorf("store: add nic %s group %s: %w", n.Tap, g, err)
				}
			}
		}
		return nil
	})
}

// DeleteNICs removes every NIC of a VM.
func (d *DB) DeleteNICs(ctx context.Context, vmUUID string) error {
	if _, err := d.sql.ExecContext(ctx, `DELETE FROM nics WHERE vm_uuid = ?`, vmUUID); err != nil {
		return fmt.Errorf("store: delete nics of %s: %w", vmUUID, err)
	}
	return nil
}

// DeleteNIC removes one NIC, by tap.
func (d *DB) DeleteNIC(ctx context.Context, tap string) error {
	if _, err := d.sql.ExecContext(ctx, `DELETE FROM nics WHERE tap = ?`, tap); err != nil {
		return fmt.Errorf("store: delete nic %s: %w", tap, err)
	}
	return nil
}

// NICs lists every NIC on the host, with its VM's name and groups, by VM and index.
func (d *DB) NICs(ctx context.Context) ([]NIC, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT n.tap, n.vm_uuid, v.name, n.idx, n.network, n.mac, n.ip
		FROM nics n JOIN vms v ON v.uuid = n.vm_uuid ORDER BY v.name, n.idx`)
	if err != nil {
		return nil, fmt.Errorf("store: list nics: %w", err)
	}
	var out []NIC
	idx := map[string]int{}
	for rows.Next() {
		var n NIC
		if err := rows.Scan(&n.Tap, &n.VMUUID, &n.VMName, &n.Index, &n.Network, &n.MAC, &n.IP); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: list nics: %w", err)
		}
		idx[n.Tap] = len(out)
		out = append(out, n)
	}
	rows.Close()
	grows, err := d.sql.QueryContext(ctx, `SELECT tap, grp FROM nic_groups ORDER BY tap, grp`)
	if err != nil {
		return nil, fmt.Errorf("store: list nic groups: %w", err)
	}
	defer grows.Close()
	for grows.Next() {
		var tap, g string
		if err := grows.Scan(&tap, &g); err != nil {
			return nil, fmt.Errorf("store: list nic groups: %w", err)
		}
		if i, ok := idx[tap]; ok {
			out[i].Groups = append(out[i].Groups, g)
		}
	}
	return out, grows.Err()
}

// ReplaceRules swaps a group's whole rule set in one transaction.
func (d *DB) ReplaceRules(ctx context.Context, group string, rules []Rule) error {
	return d.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM security_groups WHERE name = ?`, group).Scan(&n); err != nil {
			return fmt.Errorf("store: replace rules of %q: %w", group, err)
		}
		if n == 0 {
			return fmt.Errorf("store: security group %q: %w", group, ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sg_rules WHERE grp = ?`, group); err != nil {
			return fmt.Errorf("store: replace rules of %q: %w", group, err)
		}
		for _, r := range rules {
			var remote any
			if r.RemoteGroup != "" {
				remote = r.RemoteGroup
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO sg_rules (id, grp, direction, proto, port_from, port_to, cidr, remote_group, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, group, r.Direction, r.Proto, r.PortFrom, r.PortTo, r.CIDR, remote, now())
			if isForeignKey(err) {
				return fmt.Errorf("store: rule of %q: group %q: %w", group, r.RemoteGroup, ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("store: replace rules of %q: %w", group, err)
			}
		}
		return nil
	})
}
