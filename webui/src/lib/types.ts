// Wire types of lqd's REST API (api/types.go is the contract: fields are only ever added).
// Fields marked "future" come from endpoints other engineers are adding; the UI treats them
// as optional and renders what it finds.

export interface ApiErrorBody {
  error: { code: string; message: string };
}

export interface GuestOS {
  id?: string;
  name?: string;
  pretty_name?: string;
  version?: string;
  kernel_release?: string;
  machine?: string;
}

export interface GuestInterface {
  name: string;
  mac?: string;
  ips?: string[]; // CIDR notation
}

export interface Guest {
  agent_version?: string;
  os?: GuestOS;
  hostname?: string;
  interfaces?: GuestInterface[];
  updated_at: string;
}

/** A NIC of a VM (networks API). */
export interface VMNIC {
  network: string;
  mac: string;
  ip?: string; // from IPAM
  tap?: string;
  security_groups?: string[];
  guest_ips?: string[]; // as the guest agent reports them
}

/** A volume attached to a VM (storage API). */
export interface VMDisk {
  volume: string;
  path?: string;
  port?: number;
  serial?: string;
}

export type VMState = "stopped" | "starting" | "running" | "paused" | "stopping" | "crashed" | "migrating";

export interface VM {
  uuid: string;
  name: string;
  host: string;
  state: VMState | string;
  cpus: number;
  memory_mib: number;
  disk_gib: number;
  image: string;
  ssh_keys?: string[];
  user_data?: string;
  restart_policy: string;
  autostart: boolean;
  accel?: string;
  pid?: number;
  started_at?: string;
  uptime_seconds?: number;
  created_at: string;
  last_error?: string;
  guest?: Guest;
  nics?: VMNIC[];
  disks?: VMDisk[]; // attached volumes
}

export interface NICRequest {
  network: string;
  ip?: string;
  security_groups?: string[];
}

export interface CreateVMRequest {
  name: string;
  image: string;
  cpus?: number;
  memory_mib?: number;
  disk_gib?: number;
  ssh_keys?: string[];
  user_data?: string;
  restart_policy?: string;
  autostart?: boolean;
  start?: boolean;
  /** Only sent when the host has the networks API; omitted: one NIC on the default network, []: none. */
  nics?: NICRequest[];
}

export interface Image {
  name: string;
  format: string;
  size: number;
  virtual_size: number;
  sha256: string;
  kernel: boolean;
  initrd: boolean;
  cmdline?: string;
  created_at: string;
}

export interface Pool {
  name: string;
  path: string;
  total: number;
  used: number;
  free: number;
}

export interface Host {
  name: string;
  version: string;
  qemu_version: string;
  accel: string;
  accel_reason?: string;
  cpus: number;
  memory_bytes: number;
  vms: number;
  vms_running: number;
  pools: Pool[];
}

export interface LQEvent {
  id: number;
  time: string;
  type: string;
  vm?: string;
  message?: string;
}

/** GET /api/v1/vms/{name}/stats. Counters are cumulative since the VM started. */
export interface VMStats {
  vm?: string;
  cpu_seconds: number;
  rss_bytes: number;
  disks?: { device: string; rd_bytes: number; wr_bytes: number; rd_ops: number; wr_ops: number }[];
  nics?: { interface: string; rx_bytes: number; tx_bytes: number }[];
  /** Absent until the first sample after a start. */
  sampled_at?: string;
}

/** POST /api/v1/vms/{name}/console-ticket (future). Single use, valid ~30 s. */
export interface ConsoleTicket {
  ticket: string;
  expires_at: string;
  vnc_url?: string;
  serial_url?: string;
}

/** A VM snapshot (storage API). */
export interface Snapshot {
  name: string;
  memory?: boolean;
  quiesced?: boolean;
  vm_state?: string; // when it was taken
  machine?: string;
  cpu_model?: string;
  qemu_version?: string;
  cpus?: number;
  memory_mib?: number;
  disks?: string[];
  created_at?: string;
}

export interface CreateSnapshotRequest {
  name: string;
  memory?: boolean; // RAM and device state too (running VM)
  quiesce?: boolean; // freeze guest file systems (disk-only, needs the agent)
}

/** Networks, security groups and volumes (future): rendered generically. */
export interface NamedResource {
  name: string;
  [key: string]: unknown;
}
