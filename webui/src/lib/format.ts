// Display helpers.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export function bytes(n: number | undefined | null, digits = 1): string {
  if (n === undefined || n === null || !Number.isFinite(n)) return "—";
  let i = 0;
  let v = Math.abs(n);
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  const s = i === 0 ? String(Math.round(v)) : v.toFixed(v >= 100 ? 0 : digits);
  return `${n < 0 ? "-" : ""}${s} ${UNITS[i]}`;
}

export function rate(bps: number | undefined): string {
  return bps === undefined ? "—" : `${bytes(bps)}/s`;
}

export function mib(n: number): string {
  return n >= 1024 && n % 1024 === 0 ? `${n / 1024} GiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} GiB` : `${n} MiB`;
}

export function duration(seconds: number | undefined): string {
  if (seconds === undefined || seconds < 0 || !Number.isFinite(seconds)) return "—";
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

/** Seconds since an RFC 3339 time, or undefined. */
export function since(t: string | undefined, now = Date.now()): number | undefined {
  if (!t) return undefined;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : Math.max(0, (now - ms) / 1000);
}

export function dateTime(t: string | undefined): string {
  if (!t) return "—";
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return t;
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function timeOnly(t: string): string {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t : d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function pct(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "—";
  return `${x < 10 ? x.toFixed(1) : Math.round(x)}%`;
}

/**
 * A VM's addresses: what the guest agent reports, without loopback and link-local IPv6
 * (CIDR suffix dropped); without an agent, the addresses IPAM gave its NICs.
 */
export function guestIPs(vm: { guest?: { interfaces?: { name: string; ips?: string[] }[] }; nics?: { ip?: string }[] }): string[] {
  const out: string[] = [];
  for (const i of vm.guest?.interfaces ?? []) {
    if (i.name === "lo") continue;
    for (const cidr of i.ips ?? []) {
      const ip = cidr.split("/")[0];
      if (ip.startsWith("127.") || ip === "::1" || ip.toLowerCase().startsWith("fe80:")) continue;
      out.push(ip);
    }
  }
  if (out.length === 0) for (const n of vm.nics ?? []) if (n.ip) out.push(n.ip.split("/")[0]);
  return out;
}

/** Terminal output as plain text: ANSI escapes and carriage returns removed. */
export function plainText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78DEHM]|\r(?=\n)/g, "").replace(/\r/g, "\n");
}
