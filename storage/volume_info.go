package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
)

// Details is what qemu-img reports about a disk and its whole backing chain.
type Details struct {
	Info
	Chain     []string      // backing files, nearest first; empty for a standalone image
	Snapshots []SnapshotTag // internal snapshots of the top image
}

// SnapshotTag is one internal snapshot of a qcow2 image.
type SnapshotTag struct {
	Name         string `json:"name"`
	VMStateBytes int64  `json:"vm-state-size"` // 0 for a disk-only snapshot
	DateSec      int64  `json:"date-sec"`
}

// detailsJSON is one element of `qemu-img info --backing-chain --output=json`.
type detailsJSON struct {
	infoJSON
	Filename  string        `json:"filename"`
	Snapshots []SnapshotTag `json:"snapshots"`
}

// InspectDetails runs `qemu-img info --backing-chain` on path (with --force-share, so it
// works on disks a running qemu holds) and returns the top image's facts, its backing
// chain and its internal snapshots.
func InspectDetails(ctx context.Context, r Runner, path string) (Details, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Details{}, fmt.Errorf("storage: qemu-img info %s: %w", path, err)
	}
	out, err := r.Run(ctx, "qemu-img", "info", "-U", "--backing-chain", "--output=json", abs)
	if err != nil {
		return Details{}, fmt.Errorf("storage: qemu-img info %s: %w", abs, err)
	}
	d, err := parseDetails(out)
	if err != nil {
		return Details{}, fmt.Errorf("storage: qemu-img info %s: %w", abs, err)
	}
	return d, nil
}

func parseDetails(out []byte) (Details, error) {
	var chain []json.RawMessage
	if err := json.Unmarshal(out, &chain); err != nil {
		return Details{}, fmt.Errorf("parse json: %w", err)
	}
	if len(chain) == 0 {
		return Details{}, fmt.Errorf("parse json: empty backing chain")
	}
	var d Details
	for i, raw := range chain {
		var j detailsJSON
		if err := json.Unmarshal(raw, &j); err != nil {
			return Details{}, fmt.Errorf("parse json: %w", err)
		}
		if i == 0 {
			info, err := parseInfo(raw)
			if err != nil {
				return Details{}, err
			}
			d.Info, d.Snapshots = info, j.Snapshots
			continue
		}
		d.Chain = append(d.Chain, j.Filename)
	}
	return d, nil
}
