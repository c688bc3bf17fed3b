import { lazy, Suspense, useEffect, useRef, useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, isNotFound } from "../lib/api";
import { useEvents } from "../lib/live";
import { useOptionalCollection, useSnapshots, useStats, useVM } from "../lib/queries";
import type { Rates } from "../lib/stats";
import { bytes, dateTime, duration, guestIPs, mib, pct, plainText, rate, since } from "../lib/format";
import { Link } from "../lib/router";
import { useNow } from "../lib/useNow";
import type { CreateSnapshotRequest, Snapshot, VM } from "../lib/types";
import { validateName } from "../lib/names";
import { LineChart } from "../components/Chart";
import { Icon } from "../components/Icon";
import { VMActions } from "../components/VMActions";
import { ErrorBox, Facts, Loading, Modal, PageHeader, StateBadge, TabLinks, errorText, type TabDef } from "../components/ui";
import { EventTable } from "./Dashboard";

// noVNC and xterm.js are big: they load when a console tab opens.
const VNCConsole = lazy(() => import("../consoles/VNCConsole"));
const SerialConsole = lazy(() => import("../consoles/SerialConsole"));

export function VMDetail({ name, tab }: { name: string; tab: string }) {
  const vm = useVM(name);
  const snaps = useSnapshots(name);
  const [actionError, setActionError] = useState<string | null>(null);
  if (vm.isPending) return <Loading what={`Loading ${name}`} />;
  if (vm.error)
    return isNotFound(vm.error) ? (
      <section>
        <PageHeader title={name} />
        <div className="empty" role="status">
          <p>
            There is no VM named <strong>{name}</strong> on this host. <Link to="/vms">Back to the list</Link>.
          </p>
        </div>
      </section>
    ) : (
      <ErrorBox error={vm.error} title={`Cannot read ${name}`} />
    );
  const v = vm.data;
  const base = `/vms/${encodeURIComponent(name)}`;
  const tabs: TabDef[] = [
    { id: "summary", label: "Summary", to: base },
    { id: "monitor", label: "Monitor", to: `${base}/monitor` },
    { id: "console", label: "Console", to: `${base}/console` },
    { id: "serial", label: "Serial console", to: `${base}/serial` },
    ...(snaps.available !== false ? [{ id: "snapshots", label: "Snapshots", to: `${base}/snapshots` }] : []),
    { id: "log", label: "Console log", to: `${base}/log` },
  ];
  return (
    <>
      <PageHeader
        title={
          <>
            <Link to="/vms" className="crumb">
              Virtual machines
            </Link>
            <span className="crumb-sep" aria-hidden="true">
              /
            </span>
            {v.name}
          </>
        }
        sub={
          <>
            <StateBadge state={v.state} /> <span className="muted">on host</span> <strong>{v.host}</strong>
          </>
        }
      >
        <VMActions vm={v} onError={setActionError} />
      </PageHeader>
      {actionError && (
        <div className="alert error" role="alert">
          {actionError}
        </div>
      )}
      {v.last_error && (
        <div className="alert warn" role="status">
          <strong>Last error:</strong> {v.last_error}
        </div>
      )}
      <TabLinks tabs={tabs} current={tab} label={`${v.name} views`} />
      <div className="tab-panel" role="tabpanel" aria-label={tabs.find((t) => t.id === tab)?.label ?? tab}>
        {tab === "summary" && <Summary vm={v} />}
        {tab === "monitor" && <Monitor vm={v} />}
        {(tab === "console" || tab === "serial") && (
          <ConsoleGate vm={v}>
            <Suspense fallback={<Loading what="Loading the console" />}>{tab === "console" ? <VNCConsole vm={v.name} /> : <SerialConsole vm={v.name} />}</Suspense>
          </ConsoleGate>
        )}
        {tab === "snapshots" && <Snapshots vm={v} />}
        {tab === "log" && <ConsoleLog vm={v} />}
        {!tabs.some((t) => t.id === tab) && <p>Unknown view “{tab}”.</p>}
      </div>
    </>
  );
}

function ConsoleGate({ vm, children }: { vm: VM; children: React.ReactNode }) {
  if (vm.state === "running" || vm.state === "paused") return <>{children}</>;
  return (
    <div className="empty" role="status">
      <p>
        {vm.name} is {vm.state}. The console is available while the VM runs.
      </p>
    </div>
  );
}

function Summary({ vm }: { vm: VM }) {
  const now = useNow(1000);
  const running = vm.state === "running" || vm.state === "paused";
  const st = useStats(vm.name, vm.cpus, vm.state === "running");
  const { events } = useEvents();
  const mine = events.filter((e) => e.vm === vm.name).slice(0, 10);
  const g = vm.guest;
  const ips = guestIPs(vm);
  const volumes = useOptionalCollection("volumes", (vm.disks ?? []).length > 0);
  return (
    <div className="grid-2">
      <section className="panel" aria-labelledby="sum-vm">
        <h2 id="sum-vm">Virtual machine</h2>
        <Facts
          label="Virtual machine facts"
          rows={[
            ["State", <StateBadge key="s" state={vm.state} />],
            ["Host", vm.host],
            ["vCPUs", vm.cpus],
            ["Memory", mib(vm.memory_mib)],
            ["Image", <Link key="i" to="/images">{vm.image}</Link>],
            ["IP addresses", ips.length ? <span className="mono">{ips.join(", ")}</span> : "—"],
            ["Uptime", running ? duration(since(vm.started_at, now)) : "—"],
            ["Started", running ? dateTime(vm.started_at) : "—"],
            ["Accelerator", vm.accel ? vm.accel.toUpperCase() : "—"],
            ["QEMU pid", vm.pid || "—"],
            ["Restart policy", vm.restart_policy || "never"],
            ["Autostart", vm.autostart ? "yes" : "no"],
            ["Created", dateTime(vm.created_at)],
            ["UUID", <span key="u" className="mono small">{vm.uuid}</span>],
          ]}
        />
        {st.available && st.latest && (
          <p className="live-line" aria-label="Live usage">
            CPU <strong>{pct(st.latest.cpuPct)}</strong> · memory <strong>{bytes(st.latest.rssBytes)}</strong> · disk <strong>{rate(st.latest.diskReadBps + st.latest.diskWriteBps)}</strong> · network{" "}
            <strong>{rate(st.latest.netRxBps + st.latest.netTxBps)}</strong> <Link to={`/vms/${vm.name}/monitor`}>charts</Link>
          </p>
        )}
      </section>
      <section className="panel" aria-labelledby="sum-guest">
        <h2 id="sum-guest">Guest</h2>
        {g ? (
          <>
            <Facts
              label="Guest facts"
              rows={[
                ["Operating system", g.os?.pretty_name || g.os?.name || "—"],
                ["Hostname", g.hostname || "—"],
                ["Kernel", g.os?.kernel_release || "—"],
                ["Architecture", g.os?.machine || "—"],
                ["Agent", g.agent_version ? `qemu-guest-agent ${g.agent_version}` : "—"],
                ["Updated", dateTime(g.updated_at)],
              ]}
            />
            {(g.interfaces ?? []).length > 0 && (
              <table className="table" aria-label="Guest network interfaces">
                <thead>
                  <tr>
                    <th scope="col">Interface</th>
                    <th scope="col">MAC</th>
                    <th scope="col">Addresses</th>
                  </tr>
                </thead>
                <tbody>
                  {g.interfaces!.map((i) => (
                    <tr key={i.name}>
                      <td>{i.name}</td>
                      <td className="mono small">{i.mac || "—"}</td>
                      <td className="mono small">{(i.ips ?? []).join(", ") || "—"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </>
        ) : (
          <p className="muted">No guest agent has answered. Install and start qemu-guest-agent in the guest to see its OS, hostname and addresses.</p>
        )}
      </section>
      <section className="panel" aria-labelledby="sum-disks">
        <h2 id="sum-disks">Disks</h2>
        <table className="table" aria-label="Disks">
          <thead>
            <tr>
              <th scope="col">Disk</th>
              <th scope="col">Size</th>
              <th scope="col">Backing</th>
            </tr>
          </thead>
          <tbody>
            <tr>
              <td>
                root <span className="muted small">(virtio)</span>
              </td>
              <td>{vm.disk_gib ? `${vm.disk_gib} GiB` : "image size"}</td>
              <td>
                qcow2 overlay on image <strong>{vm.image}</strong>
              </td>
            </tr>
            {(vm.disks ?? []).map((d) => {
              const vol = volumes.data?.find((x) => x.name === d.volume);
              return (
                <tr key={d.volume}>
                  <td>
                    {d.volume} <span className="muted small">(virtio{d.serial ? `, serial ${d.serial}` : ""})</span>
                  </td>
                  <td>{typeof vol?.virtual_size === "number" ? bytes(vol.virtual_size) : "—"}</td>
                  <td>
                    <Link to="/volumes">volume</Link> {typeof vol?.pool === "string" ? <>in pool {vol.pool}</> : null}
                    {d.path && <div className="mono small muted">{d.path}</div>}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </section>
      <section className="panel" aria-labelledby="sum-nics">
        <h2 id="sum-nics">Network adapters</h2>
        {(vm.nics ?? []).length === 0 ? (
          <p className="muted">No network adapters{vm.nics === undefined ? " reported by this host" : ""}.</p>
        ) : (
          <table className="table" aria-label="Network adapters">
            <thead>
              <tr>
                <th scope="col">Network</th>
                <th scope="col">MAC</th>
                <th scope="col">IP</th>
                <th scope="col">Security groups</th>
              </tr>
            </thead>
            <tbody>
              {vm.nics!.map((n, i) => (
                <tr key={n.mac ?? i}>
                  <td>
                    {n.network}
                    {n.tap && <div className="muted small mono">{n.tap}</div>}
                  </td>
                  <td className="mono small">{n.mac || "—"}</td>
                  <td className="mono small">{[n.ip, ...(n.guest_ips ?? [])].filter((x, j, a) => x && a.indexOf(x) === j).join(", ") || "—"}</td>
                  <td>{(n.security_groups ?? []).join(", ") || "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h3>Cloud-init</h3>
        <Facts
          rows={[
            ["SSH keys", vm.ssh_keys?.length ? `${vm.ssh_keys.length} key${vm.ssh_keys.length > 1 ? "s" : ""}` : "none"],
            ["User data", vm.user_data ? `${vm.user_data.split("\n")[0].slice(0, 40)} (${vm.user_data.length} bytes)` : "none"],
          ]}
        />
        {vm.user_data && (
          <details>
            <summary>Show user data</summary>
            <pre className="code">{vm.user_data}</pre>
          </details>
        )}
      </section>
      <section className="panel span-2" aria-labelledby="sum-events">
        <h2 id="sum-events">Recent events</h2>
        <EventTable events={mine} showVM={false} />
      </section>
    </div>
  );
}

function Monitor({ vm }: { vm: VM }) {
  const tick = useNow(2000);
  const st = useStats(vm.name, vm.cpus, vm.state === "running", 2000);
  if (vm.state !== "running")
    return (
      <div className="empty" role="status">
        <p>Performance charts show while the VM runs.</p>
      </div>
    );
  if (st.available === false)
    return (
      <div className="empty" role="status">
        <p>
          <strong>Performance statistics not available on this host.</strong>
        </p>
        <p className="muted">This lqd does not serve /stats yet.</p>
      </div>
    );
  const s = st.series;
  const pts = (f: (r: Rates) => number) => s.map((r) => ({ t: r.t, v: f(r) }));
  const now = Math.max(tick / 1000, s.length ? s[s.length - 1].t : 0);
  const every = s.length > 1 ? Math.round(s[s.length - 1].t - s[s.length - 2].t) : undefined;
  // The window grows with the history this page has, up to 5 minutes.
  const windowSec = Math.min(300, Math.max(60, s.length ? Math.ceil((now - s[0].t + (every ?? 10)) / 30) * 30 : 60));
  return (
    <>
      <p className="muted small">
        The last {windowSec >= 120 ? `${Math.round(windowSec / 60)} minutes` : `${windowSec} seconds`}
        {every ? `, a sample every ${every} s` : ""}. CPU is relative to the VM's {vm.cpus} vCPU{vm.cpus > 1 ? "s" : ""}.
        {s.length < 2 && " Collecting samples…"}
      </p>
      <div className="charts">
        <LineChart windowSec={windowSec} now={now} title="CPU" series={[{ name: "usage", points: pts((r) => r.cpuPct) }]} format={pct} max={100} />
        <LineChart windowSec={windowSec} now={now} title="Memory (qemu RSS)" series={[{ name: "resident", points: pts((r) => r.rssBytes) }]} format={(v) => bytes(v)} max={Math.max(vm.memory_mib * 1048576 * 1.25, ...s.map((r) => r.rssBytes))} />
        <LineChart
          windowSec={windowSec}
          now={now}
          title="Disk I/O"
          series={[
            { name: "read", points: pts((r) => r.diskReadBps) },
            { name: "write", points: pts((r) => r.diskWriteBps) },
          ]}
          format={rate}
        />
        <LineChart
          windowSec={windowSec}
          now={now}
          title="Network"
          series={[
            { name: "rx", points: pts((r) => r.netRxBps) },
            { name: "tx", points: pts((r) => r.netTxBps) },
          ]}
          format={rate}
        />
      </div>
    </>
  );
}

function defaultSnapName(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, "0");
  return `snap-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function Snapshots({ vm }: { vm: VM }) {
  const qc = useQueryClient();
  const snaps = useSnapshots(vm.name);
  const live = vm.state === "running" || vm.state === "paused";
  const [name, setName] = useState(defaultSnapName);
  const [memory, setMemory] = useState(true);
  const [quiesce, setQuiesce] = useState(false);
  const [nameError, setNameError] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<{ kind: "revert" | "delete"; snap: Snapshot } | null>(null);
  const invalidate = () => {
    void qc.invalidateQueries({ queryKey: ["snapshots", vm.name] });
    void qc.invalidateQueries({ queryKey: ["vm", vm.name] });
    void qc.invalidateQueries({ queryKey: ["vms"] });
  };
  const create = useMutation({ mutationFn: (req: CreateSnapshotRequest) => api.createSnapshot(vm.name, req), onSuccess: () => setName(defaultSnapName()), onSettled: invalidate });
  const act = useMutation({
    mutationFn: ({ kind, snap }: { kind: "revert" | "delete"; snap: string }) => (kind === "revert" ? api.revertSnapshot(vm.name, snap) : api.deleteSnapshot(vm.name, snap)),
    onSuccess: () => setConfirm(null),
    onSettled: invalidate,
  });
  if (snaps.available === false)
    return (
      <div className="empty" role="status">
        <p>Snapshots are not available on this host.</p>
      </div>
    );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const n = name.trim();
    const bad = validateName(n);
    setNameError(bad);
    if (bad) return;
    const withMemory = live && memory;
    create.mutate({ name: n, ...(withMemory ? { memory: true } : {}), ...(!withMemory && live && quiesce ? { quiesce: true } : {}) });
  };
  const list = snaps.data ?? [];
  return (
    <>
      <form className="toolbar" onSubmit={submit} aria-label="Take a snapshot" noValidate>
        <label className="inline-field">
          <span>Snapshot name</span>
          <input value={name} onChange={(e) => setName(e.target.value)} spellCheck={false} aria-invalid={nameError ? true : undefined} />
        </label>
        {live && (
          <label className="check">
            <input type="checkbox" checked={memory} onChange={(e) => setMemory(e.target.checked)} /> Include memory
          </label>
        )}
        {live && !memory && (
          <label className="check">
            <input type="checkbox" checked={quiesce} onChange={(e) => setQuiesce(e.target.checked)} /> Quiesce guest file systems (needs the guest agent)
          </label>
        )}
        <button type="submit" className="btn primary solid" disabled={create.isPending}>
          <Icon name="snapshot" />
          {create.isPending ? "Taking snapshot…" : "Take snapshot"}
        </button>
      </form>
      {nameError && (
        <div className="alert error" role="alert">
          Snapshot name: {nameError}
        </div>
      )}
      <ErrorBox error={create.error} title="Snapshot failed" />
      <ErrorBox error={snaps.error && !isNotFound(snaps.error) ? snaps.error : null} title="Cannot list snapshots" />
      {snaps.isPending && <Loading what="Loading snapshots" />}
      {snaps.data && list.length === 0 && <p className="muted">No snapshots.</p>}
      {list.length > 0 && (
        <table className="table" aria-label="Snapshots">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Taken</th>
              <th scope="col">Contents</th>
              <th scope="col">VM then</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.map((s) => (
              <tr key={s.name} data-snapshot={s.name}>
                <th scope="row">{s.name}</th>
                <td className="nowrap">{dateTime(s.created_at)}</td>
                <td>
                  {s.memory ? "disks and memory" : "disks"}
                  {s.quiesced ? " (quiesced)" : ""}
                  {s.disks?.length ? <div className="muted small">volumes: {s.disks.join(", ")}</div> : null}
                </td>
                <td className="small">
                  {s.vm_state ?? "—"}
                  {s.cpus ? ` · ${s.cpus} vCPU · ${mib(s.memory_mib ?? 0)}` : ""}
                  {s.machine ? <div className="muted">{[s.machine, s.cpu_model, s.qemu_version && `qemu ${s.qemu_version}`].filter(Boolean).join(" · ")}</div> : null}
                </td>
                <td className="row-actions">
                  <button type="button" className="btn small" onClick={() => setConfirm({ kind: "revert", snap: s })} aria-label={`Revert to ${s.name}`}>
                    <Icon name="revert" /> Revert
                  </button>
                  <button type="button" className="btn small danger" onClick={() => setConfirm({ kind: "delete", snap: s })} aria-label={`Delete snapshot ${s.name}`}>
                    <Icon name="delete" /> Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {confirm && (
        <Modal
          title={confirm.kind === "revert" ? `Revert ${vm.name} to ${confirm.snap.name}?` : `Delete snapshot ${confirm.snap.name}?`}
          onClose={() => setConfirm(null)}
          footer={
            <>
              <button type="button" className="btn" data-close onClick={() => setConfirm(null)}>
                Cancel
              </button>
              <button type="button" className={`btn solid ${confirm.kind === "delete" ? "danger" : "primary"}`} disabled={act.isPending} onClick={() => act.mutate({ kind: confirm.kind, snap: confirm.snap.name })}>
                {act.isPending ? "Working…" : confirm.kind === "revert" ? "Revert" : "Delete snapshot"}
              </button>
            </>
          }
        >
          <p>{confirm.kind === "revert" ? "The VM's current state is lost: its disk (and memory, for a live snapshot) go back to the snapshot." : "The snapshot's data is freed. The VM is not affected."}</p>
          {act.error && (
            <div className="alert error" role="alert">
              {errorText(act.error)}
            </div>
          )}
        </Modal>
      )}
    </>
  );
}

const LOG_TAIL = 256 * 1024;

function ConsoleLog({ vm }: { vm: VM }) {
  const [follow, setFollow] = useState(true);
  const pre = useRef<HTMLPreElement>(null);
  const log = useQuery({
    queryKey: ["console-log", vm.name],
    queryFn: ({ signal }) => api.consoleLog(vm.name, LOG_TAIL, signal),
    refetchInterval: follow && vm.state === "running" ? 3000 : false,
  });
  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [log.data, follow]);
  return (
    <>
      <div className="toolbar">
        <label className="check">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow
        </label>
        <button type="button" className="btn small" onClick={() => void log.refetch()}>
          Refresh
        </button>
        <span className="muted small">Serial output (the last {bytes(LOG_TAIL, 0)}), kept even when no console is attached.</span>
      </div>
      <ErrorBox error={log.error} title="Cannot read the console log" />
      <pre className="console-log" ref={pre} role="log" aria-label={`Console log of ${vm.name}`} tabIndex={0}>
        {plainText(log.data ?? "")}
      </pre>
    </>
  );
}
