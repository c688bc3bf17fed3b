// Usage figures from GET /api/v1/vms/{name}/stats samples. The endpoint returns
// cumulative counters (CPU seconds, bytes); rates come from the difference of two samples.
import type { VMStats } from "./types";

export interface Rates {
  /** When the later sample was taken (Unix seconds). */
  t: number;
  /** Seconds between the two samples. */
  dt: number;
  /** CPU use as a percentage of the VM's vCPUs (0–100). */
  cpuPct: number;
  /** CPU use in host cores (1.0 = one core busy). */
  cpuCores: number;
  rssBytes: number;
  diskReadBps: number;
  diskWriteBps: number;
  diskReadIops: number;
  diskWriteIops: number;
  netRxBps: number;
  netTxBps: number;
}

function seconds(s: VMStats): number {
  return Date.parse(s.sampled_at ?? "") / 1000;
}

/**
 * CPU percentage between two samples, relative to the VM's vCPUs: 100 means every vCPU was
 * busy all the time. Returns null when the samples cannot be compared (same instant,
 * out of order, or qemu restarted so the counter went back).
 */
export function cpuPercent(prev: VMStats, cur: VMStats, vcpus: number): number | null {
  const dt = seconds(cur) - seconds(prev);
  const used = cur.cpu_seconds - prev.cpu_seconds;
  if (!(dt > 0) || !(used >= 0) || !Number.isFinite(dt)) return null;
  const pct = (used / dt / Math.max(1, vcpus)) * 100;
  return Math.min(100, Math.max(0, pct));
}

function sum<T>(xs: T[] | undefined, f: (x: T) => number): number {
  return (xs ?? []).reduce((a, x) => a + (f(x) || 0), 0);
}

/** A counter's rate per second; 0 across a reset. */
function rate(a: number, b: number, dt: number): number {
  const d = b - a;
  return d > 0 ? d / dt : 0;
}

/** All rates between two samples; null when they cannot be compared. */
export function rates(prev: VMStats, cur: VMStats, vcpus: number): Rates | null {
  const cpuPct = cpuPercent(prev, cur, vcpus);
  if (cpuPct === null) return null;
  const dt = seconds(cur) - seconds(prev);
  return {
    t: seconds(cur),
    dt,
    cpuPct,
    cpuCores: Math.max(0, (cur.cpu_seconds - prev.cpu_seconds) / dt),
    rssBytes: cur.rss_bytes,
    diskReadBps: rate(sum(prev.disks, (d) => d.rd_bytes), sum(cur.disks, (d) => d.rd_bytes), dt),
    diskWriteBps: rate(sum(prev.disks, (d) => d.wr_bytes), sum(cur.disks, (d) => d.wr_bytes), dt),
    diskReadIops: rate(sum(prev.disks, (d) => d.rd_ops), sum(cur.disks, (d) => d.rd_ops), dt),
    diskWriteIops: rate(sum(prev.disks, (d) => d.wr_ops), sum(cur.disks, (d) => d.wr_ops), dt),
    netRxBps: rate(sum(prev.nics, (n) => n.rx_bytes), sum(cur.nics, (n) => n.rx_bytes), dt),
    netTxBps: rate(sum(prev.nics, (n) => n.tx_bytes), sum(cur.nics, (n) => n.tx_bytes), dt),
  };
}

/** Rates between each consecutive pair of samples. */
export function series(samples: VMStats[], vcpus: number): Rates[] {
  const out: Rates[] = [];
  for (let i = 1; i < samples.length; i++) {
    const r = rates(samples[i - 1], samples[i], vcpus);
    if (r) out.push(r);
  }
  return out;
}

/** Keeps the last `max` samples of each VM, skipping repeats of the same sampled_at. */
export class StatsHistory {
  private byVM = new Map<string, VMStats[]>();
  constructor(private readonly max = 150) {}

  add(vm: string, s: VMStats): VMStats[] {
    const prev = this.byVM.get(vm) ?? [];
    if (!s.sampled_at) return prev; // no sample yet since the VM started
    const last = prev[prev.length - 1];
    if (last && last.sampled_at === s.sampled_at) return prev;
    // qemu restarted: its counters started over, and old samples would make nonsense rates.
    const next = last && s.cpu_seconds < last.cpu_seconds ? [s] : [...prev, s].slice(-this.max);
    this.byVM.set(vm, next);
    return next;
  }

  get(vm: string): VMStats[] {
    return this.byVM.get(vm) ?? [];
  }
}
