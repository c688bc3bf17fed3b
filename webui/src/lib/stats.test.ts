import { describe, expect, it } from "vitest";
import { StatsHistory, cpuPercent, rates, series } from "./stats";
import type { VMStats } from "./types";

const at = (sec: number, cpu: number, extra: Partial<VMStats> = {}): VMStats => ({
  sampled_at: new Date(Date.UTC(2026, 0, 1, 0, 0, sec)).toISOString(),
  cpu_seconds: cpu,
  rss_bytes: 100 << 20,
  ...extra,
});

describe("cpuPercent", () => {
  it.each([
    { name: "one vCPU half busy", prev: at(0, 10), cur: at(10, 15), vcpus: 1, want: 50 },
    { name: "two vCPUs, one core's worth", prev: at(0, 10), cur: at(10, 20), vcpus: 2, want: 50 },
    { name: "idle", prev: at(0, 3), cur: at(2, 3), vcpus: 4, want: 0 },
    { name: "more than the vCPUs (qemu's own threads) is capped", prev: at(0, 0), cur: at(1, 1.5), vcpus: 1, want: 100 },
    { name: "zero vCPUs counts as one", prev: at(0, 0), cur: at(4, 1), vcpus: 0, want: 25 },
  ])("$name", ({ prev, cur, vcpus, want }) => {
    expect(cpuPercent(prev, cur, vcpus)).toBeCloseTo(want, 6);
  });

  it.each([
    { name: "same instant", prev: at(5, 1), cur: at(5, 2) },
    { name: "out of order", prev: at(6, 1), cur: at(5, 2) },
    { name: "counter went back (VM restarted)", prev: at(0, 50), cur: at(10, 1) },
    { name: "no sample time", prev: at(0, 1), cur: { cpu_seconds: 2, rss_bytes: 0 } as VMStats },
  ])("null when $name", ({ prev, cur }) => {
    expect(cpuPercent(prev, cur, 1)).toBeNull();
  });
});

describe("rates", () => {
  it("sums disks and NICs and divides by the interval", () => {
    const prev = at(0, 1, {
      disks: [
        { device: "vda", rd_bytes: 1000, wr_bytes: 0, rd_ops: 10, wr_ops: 0 },
        { device: "vdb", rd_bytes: 0, wr_bytes: 500, rd_ops: 0, wr_ops: 5 },
      ],
      nics: [{ interface: "tap0", rx_bytes: 100, tx_bytes: 200 }],
    });
    const cur = at(2, 2, {
      rss_bytes: 300 << 20,
      disks: [
        { device: "vda", rd_bytes: 5000, wr_bytes: 0, rd_ops: 30, wr_ops: 0 },
        { device: "vdb", rd_bytes: 0, wr_bytes: 2500, rd_ops: 0, wr_ops: 15 },
      ],
      nics: [{ interface: "tap0", rx_bytes: 2100, tx_bytes: 200 }],
    });
    const r = rates(prev, cur, 1)!;
    expect(r).toMatchObject({ dt: 2, cpuPct: 50, cpuCores: 0.5, rssBytes: 300 << 20, diskReadBps: 2000, diskWriteBps: 1000, diskReadIops: 10, diskWriteIops: 5, netRxBps: 1000, netTxBps: 0 });
  });

  it("series skips pairs that cannot be compared", () => {
    expect(series([at(0, 1), at(2, 2), at(2, 3), at(4, 3)], 1).map((r) => r.cpuPct)).toEqual([50, 0]);
  });
});

describe("StatsHistory", () => {
  it("keeps distinct samples, bounded, and starts over when the counters do", () => {
    const h = new StatsHistory(3);
    h.add("a", at(0, 1));
    h.add("a", at(0, 1)); // the same sample polled twice
    h.add("a", { cpu_seconds: 0, rss_bytes: 0 } as VMStats); // none yet after a start
    expect(h.get("a").length).toBe(1);
    for (let i = 1; i <= 4; i++) h.add("a", at(i * 10, i + 1));
    expect(h.get("a").map((s) => s.cpu_seconds)).toEqual([3, 4, 5]);
    h.add("a", at(60, 0.5));
    expect(h.get("a").map((s) => s.cpu_seconds)).toEqual([0.5]);
    expect(h.get("b")).toEqual([]);
  });
});
