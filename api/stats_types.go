package api

import "time"

// Wire types of a VM's resource counters, for the web UI's charts. The same numbers are
// exported at GET /metrics. Counters start from zero with each start of the VM.

// VMStats is the answer to GET /api/v1/vms/{name}/stats.
type VMStats struct {
	VM         string      `json:"vm"`
	SampledAt  *time.Time  `json:"sampled_at,omitempty"` // absent until the first sample after a start
	CPUSeconds float64     `json:"cpu_seconds"`          // CPU time of the VM's qemu process
	RSSBytes   int64       `json:"rss_bytes"`            // its resident memory
	Disks      []DiskStats `json:"disks"`
	NICs       []NICStats  `json:"nics"`
}

// DiskStats are one block device's counters.
type DiskStats struct {
	Device  string `json:"device"`
	RdBytes int64  `json:"rd_bytes"`
	WrBytes int64  `json:"wr_bytes"`
	RdOps   int64  `json:"rd_ops"`
	WrOps   int64  `json:"wr_ops"`
}

// NICStats are one NIC's byte counters, as the guest sees them.
type NICStats struct {
	Interface string `json:"interface"` // the host-side tap
	RxBytes   int64  `json:"rx_bytes"`
	TxBytes   int64  `json:"tx_bytes"`
}
