// The new-VM wizard: general → hardware → network (when this host has networks) →
// customization (SSH keys, cloud-config) → review. Each step validates before moving on.
import { cloneElement, useEffect, useMemo, useRef, useState, type FormEvent, type ReactElement, type ReactNode } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../lib/api";
import { bytes, mib } from "../lib/format";
import { useHost, useImages, useOptionalCollection, useVMs } from "../lib/queries";
import { Link, navigate } from "../lib/router";
import { parseSSHKeys, validateCloudConfig, validateName, validateSSHKeys } from "../lib/validate";
import type { CreateVMRequest, NICRequest } from "../lib/types";
import { ErrorBox, Facts, PageHeader } from "../components/ui";

interface Form {
  name: string;
  image: string;
  cpus: string;
  memory: string;
  disk: string;
  nics: NICRequest[];
  sshKeys: string;
  userData: string;
  restartPolicy: string;
  autostart: boolean;
  start: boolean;
}

type Errors = Partial<Record<string, string>>;
type StepId = "general" | "hardware" | "network" | "customize" | "review";

const STEP_LABELS: Record<StepId, string> = {
  general: "Name and image",
  hardware: "Hardware",
  network: "Network",
  customize: "Customize",
  review: "Review",
};

function intIn(v: string, min: number, max: number): boolean {
  return /^\d+$/.test(v.trim()) && Number(v) >= min && Number(v) <= max;
}

/** The errors of one step's fields. */
export function validateStep(step: StepId, f: Form, ctx: { existing: string[]; hostCPUs?: number; hostMemMiB?: number }): Errors {
  const e: Errors = {};
  if (step === "general") {
    const n = validateName(f.name);
    if (n) e.name = n;
    else if (ctx.existing.includes(f.name)) e.name = `A VM named ${f.name} already exists.`;
    if (!f.image) e.image = "Choose an image.";
  }
  if (step === "hardware") {
    if (!intIn(f.cpus, 1, Math.max(1, ctx.hostCPUs ?? 256))) e.cpus = `vCPUs must be a whole number from 1 to ${ctx.hostCPUs ?? 256}.`;
    if (!intIn(f.memory, 64, Math.max(64, ctx.hostMemMiB ?? 4 << 20))) e.memory = `Memory must be a whole number of MiB from 64${ctx.hostMemMiB ? ` to ${ctx.hostMemMiB}` : ""}.`;
    if (f.disk.trim() !== "" && !intIn(f.disk, 1, 65536)) e.disk = "Disk size must be a whole number of GiB (1–65536), or empty for the image's size.";
  }
  if (step === "network") {
    f.nics.forEach((n, i) => {
      if (!n.network) e[`nic${i}`] = "Choose a network.";
    });
  }
  if (step === "customize") {
    const k = validateSSHKeys(f.sshKeys);
    if (k) e.sshKeys = k;
    const u = validateCloudConfig(f.userData);
    if (u) e.userData = u;
  }
  return e;
}

export function toRequest(f: Form, withNICs: boolean): CreateVMRequest {
  const req: CreateVMRequest = {
    name: f.name,
    image: f.image,
    cpus: Number(f.cpus),
    memory_mib: Number(f.memory),
    start: f.start,
  };
  if (f.disk.trim()) req.disk_gib = Number(f.disk);
  const keys = parseSSHKeys(f.sshKeys);
  if (keys.length) req.ssh_keys = keys;
  if (f.userData.trim()) req.user_data = f.userData;
  if (f.restartPolicy !== "never") req.restart_policy = f.restartPolicy;
  if (f.autostart) req.autostart = true;
  if (withNICs) req.nics = f.nics.map((n) => ({ network: n.network, security_groups: n.security_groups ?? [] }));
  return req;
}

export default function CreateVM() {
  const qc = useQueryClient();
  const images = useImages();
  const host = useHost();
  const vms = useVMs();
  const networks = useOptionalCollection("networks");
  const groups = useOptionalCollection("security-groups");
  const withNICs = networks.available === true;
  const steps: StepId[] = ["general", "hardware", ...(withNICs ? (["network"] as StepId[]) : []), "customize", "review"];
  const [stepIdx, setStepIdx] = useState(0);
  const step = steps[Math.min(stepIdx, steps.length - 1)];
  const [errors, setErrors] = useState<Errors>({});
  const [f, setF] = useState<Form>({
    name: "",
    image: "",
    cpus: "1",
    memory: "512",
    disk: "",
    nics: [],
    sshKeys: "",
    userData: "",
    restartPolicy: "never",
    autostart: false,
    start: true,
  });
  const set = <K extends keyof Form>(k: K, v: Form[K]) => {
    setF((old) => ({ ...old, [k]: v }));
    if (errors[k as string]) setErrors((e) => ({ ...e, [k]: undefined }));
  };
  // Default: one NIC, as lqd would give, once the list arrives.
  const nicInit = useRef(false);
  useEffect(() => {
    if (withNICs && !nicInit.current && networks.data && networks.data.length > 0) {
      nicInit.current = true;
      // lqd's own default when a request names no NICs: the network called "default".
      const net = networks.data.find((n) => n.name === "default") ?? networks.data[0];
      setF((old) => (old.nics.length ? old : { ...old, nics: [{ network: net.name, security_groups: [] }] }));
    }
  }, [withNICs, networks.data]);
  const ctx = useMemo(
    () => ({ existing: (vms.data ?? []).map((v) => v.name), hostCPUs: host.data?.cpus, hostMemMiB: host.data ? Math.floor(host.data.memory_bytes / 1048576) : undefined }),
    [vms.data, host.data],
  );
  const create = useMutation({
    mutationFn: (req: CreateVMRequest) => api.createVM(req),
    onSuccess: (vm) => {
      void qc.invalidateQueries({ queryKey: ["vms"] });
      void qc.invalidateQueries({ queryKey: ["host"] });
      qc.setQueryData(["vm", vm.name], vm);
      navigate(`/vms/${vm.name}`);
    },
  });
  const image = images.data?.find((i) => i.name === f.image);

  const check = (s: StepId) => {
    const e = validateStep(s, f, ctx);
    setErrors(e);
    return Object.keys(e).length === 0;
  };
  const next = (e?: FormEvent) => {
    e?.preventDefault();
    if (step === "review") {
      // Re-check everything: a step may have been skipped by clicking the step list.
      for (let i = 0; i < steps.length - 1; i++) {
        if (!check(steps[i])) {
          setStepIdx(i);
          return;
        }
      }
      create.mutate(toRequest(f, withNICs));
      return;
    }
    if (check(step)) setStepIdx((i) => Math.min(i + 1, steps.length - 1));
  };
  const back = () => {
    setErrors({});
    setStepIdx((i) => Math.max(0, i - 1));
  };
  const goto = (i: number) => {
    // Moving forward validates the steps in between.
    for (let j = stepIdx; j < i; j++) if (!check(steps[j])) return setStepIdx(j);
    setErrors({});
    setStepIdx(i);
  };

  return (
    <>
      <PageHeader title="New virtual machine" />
      <div className="wizard">
        <ol className="steps" aria-label="Wizard steps">
          {steps.map((s, i) => (
            <li key={s} aria-current={i === stepIdx ? "step" : undefined} className={i === stepIdx ? "current" : i < stepIdx ? "done" : ""}>
              <button type="button" className="step-btn" onClick={() => goto(i)}>
                <span className="step-num">{i + 1}</span> {STEP_LABELS[s]}
              </button>
            </li>
          ))}
        </ol>
        <form className="wizard-body" onSubmit={next} noValidate aria-labelledby="step-title">
          <h2 id="step-title">{STEP_LABELS[step]}</h2>
          {step === "general" && (
            <>
              <Field id="vm-name" label="Name" error={errors.name} hint="Lowercase letters, digits and dashes, up to 63 characters.">
                <input id="vm-name" value={f.name} onChange={(e) => set("name", e.target.value)} autoComplete="off" spellCheck={false} autoFocus />
              </Field>
              <Field id="vm-image" label="Image" error={errors.image}>
                <select id="vm-image" value={f.image} onChange={(e) => set("image", e.target.value)}>
                  <option value="">{images.isPending ? "Loading images…" : "Choose an image"}</option>
                  {(images.data ?? []).map((i) => (
                    <option key={i.name} value={i.name}>
                      {i.name} ({i.format}, {bytes(i.virtual_size)}
                      {i.kernel ? ", direct kernel boot" : ""})
                    </option>
                  ))}
                </select>
              </Field>
              {images.data && images.data.length === 0 && (
                <p className="hint warn">
                  No images yet. <Link to="/images">Upload one</Link> first.
                </p>
              )}
              <ErrorBox error={images.error} title="Cannot list images" />
            </>
          )}
          {step === "hardware" && (
            <>
              <Field id="vm-cpus" label="vCPUs" error={errors.cpus} hint={host.data ? `This host has ${host.data.cpus} CPUs.` : undefined}>
                <input id="vm-cpus" type="number" min={1} max={host.data?.cpus} value={f.cpus} onChange={(e) => set("cpus", e.target.value)} />
              </Field>
              <Field id="vm-memory" label="Memory (MiB)" error={errors.memory} hint={host.data ? `This host has ${bytes(host.data.memory_bytes)}.` : undefined}>
                <input id="vm-memory" type="number" min={64} step={64} value={f.memory} onChange={(e) => set("memory", e.target.value)} />
              </Field>
              <Field id="vm-disk" label="Disk (GiB)" error={errors.disk} hint={image ? `Empty: the image's size (${bytes(image.virtual_size)}).` : "Empty: the image's size."}>
                <input id="vm-disk" type="number" min={1} value={f.disk} onChange={(e) => set("disk", e.target.value)} placeholder={image ? String(Math.ceil(image.virtual_size / 2 ** 30)) : ""} />
              </Field>
            </>
          )}
          {step === "network" && (
            <NICEditor nics={f.nics} onChange={(n) => set("nics", n)} networks={(networks.data ?? []).map((n) => n.name)} groups={groups.available ? (groups.data ?? []).map((g) => g.name) : null} errors={errors} />
          )}
          {step === "customize" && (
            <>
              <Field id="vm-keys" label="SSH public keys" error={errors.sshKeys} hint="One key per line, installed for the default user by cloud-init.">
                <textarea id="vm-keys" rows={3} value={f.sshKeys} onChange={(e) => set("sshKeys", e.target.value)} spellCheck={false} placeholder="ssh-ed25519 AAAA… user@host" />
              </Field>
              <Field id="vm-userdata" label="Cloud-init user data (optional)" error={errors.userData} hint='A cloud-config starting with "#cloud-config", or a script starting with "#!".'>
                <textarea id="vm-userdata" rows={10} className="mono" value={f.userData} onChange={(e) => set("userData", e.target.value)} spellCheck={false} placeholder={"#cloud-config\npackages:\n  - nginx"} />
              </Field>
              <Field id="vm-restart" label="Restart policy">
                <select id="vm-restart" value={f.restartPolicy} onChange={(e) => set("restartPolicy", e.target.value)}>
                  <option value="never">never</option>
                  <option value="on-crash">on crash</option>
                  <option value="always">always</option>
                </select>
              </Field>
              <label className="check">
                <input type="checkbox" checked={f.autostart} onChange={(e) => set("autostart", e.target.checked)} /> Start with the host (autostart)
              </label>
            </>
          )}
          {step === "review" && (
            <>
              <Facts
                label="Review"
                rows={[
                  ["Name", f.name],
                  ["Image", f.image],
                  ["vCPUs", f.cpus],
                  ["Memory", mib(Number(f.memory))],
                  ["Disk", f.disk ? `${f.disk} GiB` : "image size"],
                  ...(withNICs ? ([["Network adapters", f.nics.length ? f.nics.map((n) => `${n.network}${n.security_groups?.length ? ` [${n.security_groups.join(", ")}]` : ""}`).join("; ") : "none"]] as [string, ReactNode][]) : []),
                  ["SSH keys", String(parseSSHKeys(f.sshKeys).length)],
                  ["User data", f.userData.trim() ? `${f.userData.split("\n")[0]} (${f.userData.length} bytes)` : "none"],
                  ["Restart policy", f.restartPolicy],
                  ["Autostart", f.autostart ? "yes" : "no"],
                ]}
              />
              <label className="check">
                <input type="checkbox" checked={f.start} onChange={(e) => set("start", e.target.checked)} /> Power on after creation
              </label>
              <ErrorBox error={create.error} title="Cannot create the VM" />
            </>
          )}
          <div className="wizard-nav">
            <Link to="/vms" className="btn ghost">
              Cancel
            </Link>
            <span className="spacer" />
            <button type="button" className="btn" onClick={back} disabled={stepIdx === 0}>
              Back
            </button>
            <button type="submit" className="btn primary solid" disabled={create.isPending}>
              {step === "review" ? (create.isPending ? "Creating…" : "Create VM") : "Next"}
            </button>
          </div>
        </form>
      </div>
    </>
  );
}

function Field({ id, label, error, hint, children }: { id: string; label: string; error?: string; hint?: string; children: ReactElement<Record<string, unknown>> }) {
  const describedBy = [error ? `${id}-err` : "", hint ? `${id}-hint` : ""].filter(Boolean).join(" ") || undefined;
  const child = cloneElement(children, { "aria-invalid": error ? true : undefined, "aria-describedby": describedBy });
  return (
    <div className={`field ${error ? "invalid" : ""}`}>
      <label htmlFor={id}>{label}</label>
      {child}
      {hint && (
        <span className="hint" id={`${id}-hint`}>
          {hint}
        </span>
      )}
      {error && (
        <span className="field-error" id={`${id}-err`} role="alert">
          {error}
        </span>
      )}
    </div>
  );
}

function NICEditor({ nics, onChange, networks, groups, errors }: { nics: NICRequest[]; onChange: (n: NICRequest[]) => void; networks: string[]; groups: string[] | null; errors: Errors }) {
  const update = (i: number, n: Partial<NICRequest>) => onChange(nics.map((x, j) => (j === i ? { ...x, ...n } : x)));
  return (
    <>
      {nics.length === 0 && <p className="muted">No network adapters: the VM will have no network.</p>}
      {nics.map((n, i) => (
        <fieldset key={i} className="nic">
          <legend>Network adapter {i + 1}</legend>
          <Field id={`nic-${i}-net`} label="Network" error={errors[`nic${i}`]}>
            <select id={`nic-${i}-net`} value={n.network} onChange={(e) => update(i, { network: e.target.value })}>
              <option value="">Choose a network</option>
              {networks.map((x) => (
                <option key={x} value={x}>
                  {x}
                </option>
              ))}
            </select>
          </Field>
          {groups && (
            <div className="field">
              <span className="label">Security groups</span>
              {groups.length === 0 && <span className="muted small">None defined.</span>}
              <div className="checks">
                {groups.map((g) => (
                  <label key={g} className="check">
                    <input
                      type="checkbox"
                      checked={(n.security_groups ?? []).includes(g)}
                      onChange={(e) => update(i, { security_groups: e.target.checked ? [...(n.security_groups ?? []), g] : (n.security_groups ?? []).filter((x) => x !== g) })}
                    />
                    {g}
                  </label>
                ))}
              </div>
            </div>
          )}
          <button type="button" className="btn small danger" onClick={() => onChange(nics.filter((_, j) => j !== i))}>
            Remove adapter {i + 1}
          </button>
        </fieldset>
      ))}
      <button type="button" className="btn small" onClick={() => onChange([...nics, { network: networks[0] ?? "", security_groups: [] }])}>
        Add network adapter
      </button>
    </>
  );
}
