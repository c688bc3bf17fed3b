// Power and delete actions for one VM, offered according to its state.
import { useState } from "react";
import type { PowerAction } from "../lib/api";
import { useDeleteVM, usePowerAction } from "../lib/queries";
import { navigate } from "../lib/router";
import type { VM } from "../lib/types";
import { Icon } from "./Icon";
import { Modal, errorText } from "./ui";

const LABELS: Record<PowerAction, string> = {
  start: "Power on",
  shutdown: "Shut down guest",
  stop: "Power off",
  reboot: "Restart guest",
  reset: "Reset",
  pause: "Suspend",
  resume: "Resume",
};

/** Which actions make sense in a state (lqd refuses the others with 409 anyway). */
export function actionsFor(state: string): PowerAction[] {
  switch (state) {
    case "running":
      return ["shutdown", "stop", "reboot", "reset", "pause"];
    case "paused":
      return ["resume", "stop"];
    case "stopped":
    case "crashed":
      return ["start"];
    case "starting":
    case "stopping":
      return ["stop"];
    default:
      return [];
  }
}

export function VMActions({ vm, compact = false, onError }: { vm: VM; compact?: boolean; onError?: (msg: string | null) => void }) {
  const power = usePowerAction();
  const [deleting, setDeleting] = useState(false);
  const busy = power.isPending;
  const run = (action: PowerAction) => {
    onError?.(null);
    power.mutate({ name: vm.name, action }, { onError: (e) => onError?.(`${LABELS[action]} ${vm.name}: ${errorText(e)}`) });
  };
  return (
    <div className={compact ? "actions compact" : "actions"} role="group" aria-label={`Actions for ${vm.name}`}>
      {actionsFor(vm.state).map((a) => (
        <button
          key={a}
          type="button"
          className={compact ? "icon-btn" : `btn ${a === "start" || a === "resume" ? "primary" : ""}`}
          aria-label={compact ? `${LABELS[a]} ${vm.name}` : undefined}
          title={LABELS[a]}
          disabled={busy}
          onClick={() => run(a)}
        >
          <Icon name={a} />
          {!compact && <span>{LABELS[a]}</span>}
        </button>
      ))}
      <button type="button" className={compact ? "icon-btn danger" : "btn danger"} aria-label={compact ? `Delete ${vm.name}` : undefined} title="Delete" onClick={() => setDeleting(true)}>
        <Icon name="delete" />
        {!compact && <span>Delete</span>}
      </button>
      {deleting && <DeleteVMDialog vm={vm} onClose={() => setDeleting(false)} />}
    </div>
  );
}

export function DeleteVMDialog({ vm, onClose }: { vm: VM; onClose: () => void }) {
  const del = useDeleteVM();
  const live = vm.state !== "stopped" && vm.state !== "crashed";
  const [force, setForce] = useState(live);
  const [typed, setTyped] = useState("");
  const submit = () =>
    del.mutate(
      { name: vm.name, force },
      {
        onSuccess: () => {
          onClose();
          if (location.pathname.startsWith(`/vms/${vm.name}`)) navigate("/vms");
        },
      },
    );
  return (
    <Modal
      title={`Delete ${vm.name}?`}
      onClose={onClose}
      footer={
        <>
          <button type="button" className="btn" data-close onClick={onClose}>
            Cancel
          </button>
          <button type="button" className="btn danger solid" disabled={del.isPending || typed !== vm.name} onClick={submit}>
            {del.isPending ? "Deleting…" : "Delete VM"}
          </button>
        </>
      }
    >
      <p>
        This deletes the virtual machine <strong>{vm.name}</strong> and its root disk. Its image stays. This cannot be undone.
      </p>
      <label className="check">
        <input type="checkbox" checked={force} onChange={(e) => setForce(e.target.checked)} />
        Force: power the VM off first if it is running
      </label>
      {live && !force && <p className="hint warn">The VM is {vm.state}: without force, lqd refuses to delete it.</p>}
      <label className="field">
        <span>Type the VM's name to confirm</span>
        <input value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" spellCheck={false} />
      </label>
      {del.error && (
        <div className="alert error" role="alert">
          {errorText(del.error)}
        </div>
      )}
    </Modal>
  );
}
