import { useState } from "react";
import { useStats, useVMs } from "../lib/queries";
import { duration, guestIPs, mib, pct, since } from "../lib/format";
import { Link, navigate, useLocation } from "../lib/router";
import { useNow } from "../lib/useNow";
import type { VM } from "../lib/types";
import { Sparkline } from "../components/Chart";
import { Icon } from "../components/Icon";
import { VMActions } from "../components/VMActions";
import { ErrorBox, Loading, PageHeader, StateBadge } from "../components/ui";

export const STATE_FILTERS = ["all", "running", "stopped", "paused", "crashed", "transitioning"] as const;

/** Filters by state ("transitioning": starting, stopping, migrating) and a search over name and IPs. */
export function filterVMs(vms: VM[], state: string, q: string): VM[] {
  const needle = q.trim().toLowerCase();
  return vms
    .filter((v) => {
      if (state === "all" || state === "") return true;
      if (state === "transitioning") return v.state === "starting" || v.state === "stopping" || v.state === "migrating";
      return v.state === state;
    })
    .filter((v) => needle === "" || v.name.toLowerCase().includes(needle) || guestIPs(v).some((ip) => ip.includes(needle)))
    .sort((a, b) => a.name.localeCompare(b.name));
}

function setParam(search: URLSearchParams, key: string, value: string) {
  const s = new URLSearchParams(search);
  if (value === "" || value === "all") s.delete(key);
  else s.set(key, value);
  const qs = s.toString();
  navigate(`/vms${qs ? `?${qs}` : ""}`, { replace: true });
}

export function VMList() {
  const vms = useVMs();
  const { search } = useLocation();
  const state = search.get("state") ?? "all";
  const q = search.get("q") ?? "";
  const [actionError, setActionError] = useState<string | null>(null);
  const list = vms.data ?? [];
  const shown = filterVMs(list, state, q);
  return (
    <>
      <PageHeader title="Virtual machines" sub={vms.data ? `${list.length} VMs, ${list.filter((v) => v.state === "running").length} running` : undefined}>
        <Link to="/vms/new" className="btn primary solid">
          <Icon name="plus" />
          New VM
        </Link>
      </PageHeader>
      <div className="toolbar" role="search">
        <label className="inline-field">
          <span>State</span>
          <select value={state} onChange={(e) => setParam(search, "state", e.target.value)} aria-label="Filter by state">
            {STATE_FILTERS.map((s) => (
              <option key={s} value={s}>
                {s === "all" ? "All states" : s}
              </option>
            ))}
          </select>
        </label>
        <label className="inline-field search-field">
          <Icon name="search" />
          <span className="sr-only">Search VMs</span>
          <input type="search" placeholder="Search by name or IP" value={q} onChange={(e) => setParam(search, "q", e.target.value)} aria-label="Search VMs" />
        </label>
        {(state !== "all" || q) && (
          <span className="muted small" role="status">
            {shown.length} of {list.length} shown
          </span>
        )}
      </div>
      {actionError && (
        <div className="alert error" role="alert">
          {actionError}
          <button type="button" className="icon-btn" aria-label="Dismiss" onClick={() => setActionError(null)}>
            <Icon name="close" />
          </button>
        </div>
      )}
      {vms.isPending && <Loading what="Loading VMs" />}
      <ErrorBox error={vms.error} title="Cannot list VMs" />
      {vms.data && <VMTable vms={shown} empty={list.length === 0 ? "none" : "filtered"} onError={setActionError} />}
    </>
  );
}

export function VMTable({ vms, empty, onError }: { vms: VM[]; empty: "none" | "filtered"; onError?: (m: string | null) => void }) {
  const now = useNow(1000);
  if (vms.length === 0)
    return (
      <div className="empty">
        {empty === "none" ? (
          <p>
            No virtual machines yet. <Link to="/vms/new">Create one</Link>.
          </p>
        ) : (
          <p>No VMs match the filter.</p>
        )}
      </div>
    );
  return (
    <table className="table vms" aria-label="Virtual machines">
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">State</th>
          <th scope="col">Host</th>
          <th scope="col" className="num">
            vCPUs
          </th>
          <th scope="col" className="num">
            Memory
          </th>
          <th scope="col">IP addresses</th>
          <th scope="col">Uptime</th>
          <th scope="col">CPU usage</th>
          <th scope="col">
            <span className="sr-only">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {vms.map((v) => {
          const ips = guestIPs(v);
          const up = v.state === "running" || v.state === "paused" ? since(v.started_at, now) : undefined;
          return (
            <tr key={v.uuid || v.name} data-vm={v.name}>
              <th scope="row">
                <Link to={`/vms/${v.name}`} className="vm-link">
                  {v.name}
                </Link>
                <div className="muted small">{v.image}</div>
              </th>
              <td>
                <StateBadge state={v.state} />
                {v.last_error && (
                  <div className="small err-text" title={v.last_error}>
                    {v.last_error.length > 60 ? v.last_error.slice(0, 60) + "…" : v.last_error}
                  </div>
                )}
              </td>
              <td>{v.host}</td>
              <td className="num">{v.cpus}</td>
              <td className="num">{mib(v.memory_mib)}</td>
              <td className="mono small">{ips.length ? ips.join(", ") : <span className="muted">—</span>}</td>
              <td className="nowrap">{duration(up)}</td>
              <td>
                <CPUCell vm={v} />
              </td>
              <td className="row-actions">
                <VMActions vm={v} compact onError={onError} />
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function CPUCell({ vm }: { vm: VM }) {
  const running = vm.state === "running";
  const st = useStats(vm.name, vm.cpus, running, 5000);
  if (!running || st.available === false) return <span className="muted">—</span>;
  const data = st.series.slice(-30).map((r) => r.cpuPct);
  return (
    <span className="cpu-cell">
      <Sparkline data={data} max={100} label={`CPU usage history of ${vm.name}`} />
      <span className="num" aria-label={`CPU usage of ${vm.name}`}>
        {pct(st.latest?.cpuPct)}
      </span>
    </span>
  );
}
