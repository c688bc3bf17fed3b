import { useEvents } from "../lib/live";
import { useHost, useVMs } from "../lib/queries";
import { bytes, timeOnly, dateTime } from "../lib/format";
import { Link } from "../lib/router";
import { ErrorBox, Facts, Loading, Meter, PageHeader } from "../components/ui";
import type { LQEvent } from "../lib/types";

const STATES = ["running", "paused", "stopped", "crashed", "starting", "stopping", "migrating"];

export function Dashboard() {
  const host = useHost();
  const vms = useVMs();
  const { events } = useEvents();
  if (host.isPending) return <Loading what="Loading host" />;
  if (host.error) return <ErrorBox error={host.error} title="Cannot read the host" />;
  const h = host.data;
  const list = vms.data ?? [];
  const running = list.filter((v) => v.state === "running" || v.state === "paused");
  const vcpus = running.reduce((a, v) => a + v.cpus, 0);
  const memMiB = running.reduce((a, v) => a + v.memory_mib, 0);
  const counts = new Map<string, number>();
  for (const v of list) counts.set(v.state, (counts.get(v.state) ?? 0) + 1);
  return (
    <>
      <PageHeader title="Dashboard" sub={`Host ${h.name}`} />
      <div className="cards">
        <section className="card" aria-labelledby="card-cpu">
          <h2 id="card-cpu">CPU</h2>
          <div className="big-number">
            {vcpus} <span className="unit">of {h.cpus} vCPUs</span>
          </div>
          <Meter value={vcpus} max={h.cpus} label="vCPUs allocated to powered-on VMs" text={`${vcpus} of ${h.cpus}`} />
          <p className="muted small">allocated to powered-on VMs · {h.cpus} host CPUs</p>
        </section>
        <section className="card" aria-labelledby="card-mem">
          <h2 id="card-mem">Memory</h2>
          <div className="big-number">
            {bytes(memMiB * 1048576)} <span className="unit">of {bytes(h.memory_bytes)}</span>
          </div>
          <Meter value={memMiB * 1048576} max={h.memory_bytes} label="Memory allocated to powered-on VMs" text={`${bytes(memMiB * 1048576)} of ${bytes(h.memory_bytes)}`} />
          <p className="muted small">allocated to powered-on VMs</p>
        </section>
        <section className="card" aria-labelledby="card-storage">
          <h2 id="card-storage">Storage</h2>
          {(h.pools ?? []).length === 0 && <p className="muted">No storage pools.</p>}
          {(h.pools ?? []).map((p) => (
            <div key={p.name} className="pool">
              <div className="pool-head">
                <strong>{p.name}</strong>
                <span className="muted small">
                  {bytes(p.used)} used · {bytes(p.free)} free · {bytes(p.total)}
                </span>
              </div>
              <Meter value={p.used} max={p.total} label={`Pool ${p.name} used`} text={`${bytes(p.used)} of ${bytes(p.total)}`} />
              <div className="muted small mono">{p.path}</div>
            </div>
          ))}
        </section>
        <section className="card" aria-labelledby="card-vms">
          <h2 id="card-vms">Virtual machines</h2>
          <div className="big-number">
            {h.vms_running} <span className="unit">running of {h.vms}</span>
          </div>
          <ul className="state-counts">
            {STATES.filter((s) => counts.get(s)).map((s) => (
              <li key={s}>
                <Link to={`/vms?state=${s}`}>
                  <span className={`dot state-${s}`} aria-hidden="true" />
                  {counts.get(s)} {s}
                </Link>
              </li>
            ))}
          </ul>
          <Link to="/vms/new" className="btn primary small">
            New VM
          </Link>
        </section>
      </div>
      <div className="grid-2">
        <section className="panel" aria-labelledby="host-facts">
          <h2 id="host-facts">Host</h2>
          <Facts
            label="Host facts"
            rows={[
              ["Name", h.name],
              ["lqd version", h.version],
              ["QEMU", h.qemu_version],
              ["Accelerator", `${h.accel.toUpperCase()}${h.accel_reason ? ` (${h.accel_reason})` : ""}`],
              ["CPUs", h.cpus],
              ["Memory", bytes(h.memory_bytes)],
            ]}
          />
        </section>
        <section className="panel" aria-labelledby="recent-events">
          <h2 id="recent-events">Recent events</h2>
          <EventTable events={events.slice(0, 15)} />
        </section>
      </div>
    </>
  );
}

export function EventTable({ events, showVM = true }: { events: LQEvent[]; showVM?: boolean }) {
  if (events.length === 0) return <p className="muted">No events yet.</p>;
  return (
    <table className="table events" aria-label="Events">
      <thead>
        <tr>
          <th scope="col">Time</th>
          <th scope="col">Event</th>
          {showVM && <th scope="col">VM</th>}
          <th scope="col">Message</th>
        </tr>
      </thead>
      <tbody>
        {events.map((e) => (
          <tr key={e.id}>
            <td className="nowrap" title={dateTime(e.time)}>
              {timeOnly(e.time)}
            </td>
            <td className="nowrap">
              <span className={`ev ev-${e.type.replace(/\./g, "-")}`}>{e.type}</span>
            </td>
            {showVM && <td className="nowrap">{e.vm ? <Link to={`/vms/${e.vm}`}>{e.vm}</Link> : "—"}</td>}
            <td className="msg">{e.message}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
