package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
)

// Info is what qemu-img reports about an image.
type Info struct {
	Format          string // "qcow2", "raw", ...
	VirtualSize     int64  // guest-visible bytes
	ActualSize      int64  // bytes allocated on the host
	ClusterSize     int64  // qcow2 cluster size; 0 for raw
	BackingFile     string // as recorded in the image header; "" when none
	FullBackingFile string // BackingFile resolved against the image's directory
	BackingFormat   string
	DataFile        string // qcow2 external data file; "" when none
	Encrypted       bool
	DirtyFlag       bool
	Corrupt         bool // qcow2 marked corrupt
}

// infoJSON mirrors `qemu-img info --output=json` (QAPI ImageInfo).
type infoJSON struct {
	Format          string `json:"format"`
	VirtualSize     int64  `json:"virtual-size"`
	ActualSize      int64  `json:"actual-size"`
	ClusterSize     int64  `json:"cluster-size"`
	BackingFilename string `json:"backing-filename"`
	FullBackingName string `json:"full-backing-filename"`
	BackingFormat   string `json:"backing-filename-format"`
	Encrypted       bool   `json:"encrypted"`
	DirtyFlag       bool   `json:"dirty-flag"`
	FormatSpecific  *struct {
		Type string `json:"type"`
		Data struct {
			DataFile string `json:"data-file"`
			Corrupt  bool   `json:"corrupt"`
		} `json:"data"`
	} `json:"format-specific"`
}

// Inspect runs `qemu-img info` on path, probing its format. It uses --force-share, so it
// works on images a running qemu holds, and never opens the backing chain. A relative
// path is made absolute first: qemu-img reads "proto:..." or "json:{...}" filenames as
// protocol specs, an absolute path never.
func Inspect(ctx context.Context, r Runner, path string) (Info, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Info{}, fmt.Errorf("storage: qemu-img info %s: %w", path, err)
	}
	out, err := r.Run(ctx, "qemu-img", "info", "-U", "--output=json", abs)
	if err != nil {
		return Info{}, fmt.Errorf("storage: qemu-img info %s: %w", abs, err)
	}
	info, err := parseInfo(out)
	if err != nil {
		return Info{}, fmt.Errorf("storage: qemu-img info %s: %w", abs, err)
	}
	return info, nil
}

func parseInfo(out []byte) (Info, error) {
	var j infoJSON
	if err := json.Unmarshal(out, &j); err != nil {
		return Info{}, fmt.Errorf("parse json: %w", err)
	}
	if j.Format == "" {
		return Info{}, fmt.Errorf("parse json: no format in output")
	}
	info := Info{
		Format:          j.Format,
		VirtualSize:     j.VirtualSize,
		ActualSize:      j.ActualSize,
		ClusterSize:     j.ClusterSize,
		BackingFile:     j.BackingFilename,
		FullBackingFile: j.FullBackingName,
		BackingFormat:   j.BackingFormat,
		Encrypted:       j.Encrypted,
		DirtyFlag:       j.DirtyFlag,
	}
	if fs := j.FormatSpecific; fs != nil && fs.Type == "qcow2" {
		info.DataFile = fs.Data.DataFile
		info.Corrupt = fs.Data.Corrupt
	}
	return info, nil
}
