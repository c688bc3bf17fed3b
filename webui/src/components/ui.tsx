// Small shared pieces: state badges, meters, error and empty states, dialogs, tabs.
import { useEffect, useId, useRef, type ReactNode } from "react";
import { ApiError } from "../lib/api";
import { Link } from "../lib/router";

export function StateBadge({ state }: { state: string }) {
  return (
    <span className={`badge state-${state}`} data-state={state}>
      <span className="dot" aria-hidden="true" />
      {state}
    </span>
  );
}

/** A horizontal usage bar with an accessible value. */
export function Meter({ value, max, label, text }: { value: number; max: number; label: string; text?: string }) {
  const frac = max > 0 ? Math.min(1, Math.max(0, value / max)) : 0;
  const level = frac > 0.9 ? "crit" : frac > 0.75 ? "warn" : "ok";
  return (
    <div className="meter-wrap">
      <div className={`meter ${level}`} role="meter" aria-label={label} aria-valuemin={0} aria-valuemax={max} aria-valuenow={value} aria-valuetext={text}>
        <div className="meter-fill" style={{ width: `${(frac * 100).toFixed(1)}%` }} />
      </div>
    </div>
  );
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.status ? `${err.message} (${err.code}, HTTP ${err.status})` : err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

export function ErrorBox({ error, title = "Something went wrong" }: { error: unknown; title?: string }) {
  if (!error) return null;
  return (
    <div className="alert error" role="alert">
      <strong>{title}:</strong> {errorText(error)}
    </div>
  );
}

export function NotAvailable({ what }: { what: string }) {
  return (
    <div className="empty" role="status">
      <p>
        <strong>{what} not available on this host.</strong>
      </p>
      <p className="muted">This lqd does not serve that API yet. Upgrade lqd to manage {what.toLowerCase()} here.</p>
    </div>
  );
}

export function Loading({ what = "Loading" }: { what?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {what}…
    </div>
  );
}

export function PageHeader({ title, children, sub }: { title: ReactNode; children?: ReactNode; sub?: ReactNode }) {
  return (
    <header className="page-header">
      <div>
        <h1>{title}</h1>
        {sub && <div className="sub">{sub}</div>}
      </div>
      {children && <div className="page-actions">{children}</div>}
    </header>
  );
}

/** A modal dialog: focus goes in, Escape closes, focus returns. */
export function Modal({ title, onClose, children, footer }: { title: string; onClose: () => void; children: ReactNode; footer?: ReactNode }) {
  const id = useId();
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const prev = document.activeElement as HTMLElement | null;
    const first = ref.current?.querySelector<HTMLElement>("input, textarea, select, button:not([data-close])");
    first?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") onClose();
    };
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("keydown", onKey);
      prev?.focus?.();
    };
  }, [onClose]);
  return (
    <div className="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className="modal" role="dialog" aria-modal="true" aria-labelledby={id} ref={ref}>
        <h2 id={id}>{title}</h2>
        <div className="modal-body">{children}</div>
        {footer && <div className="modal-footer">{footer}</div>}
      </div>
    </div>
  );
}

export interface TabDef {
  id: string;
  label: string;
  to: string;
}

/** Tabs that are links (each tab has its own URL). */
export function TabLinks({ tabs, current, label }: { tabs: TabDef[]; current: string; label: string }) {
  return (
    <nav className="tabs" role="tablist" aria-label={label}>
      {tabs.map((t) => (
        <Link key={t.id} to={t.to} role="tab" aria-selected={t.id === current} aria-current={t.id === current ? "page" : undefined} className={t.id === current ? "tab active" : "tab"}>
          {t.label}
        </Link>
      ))}
    </nav>
  );
}

/** Definition list of label/value rows. */
export function Facts({ rows, label }: { rows: [string, ReactNode][]; label?: string }) {
  return (
    <dl className="facts" aria-label={label}>
      {rows.map(([k, v]) => (
        <div key={k} className="fact">
          <dt>{k}</dt>
          <dd>{v ?? "—"}</dd>
        </div>
      ))}
    </dl>
  );
}

/** Renders objects of an unknown shape as a table of their scalar fields. */
export function GenericTable({ rows, label }: { rows: Record<string, unknown>[]; label: string }) {
  const cols: string[] = [];
  for (const r of rows)
    for (const [k, v] of Object.entries(r)) if (!cols.includes(k) && (v === null || typeof v !== "object" || Array.isArray(v))) cols.push(k);
  const show = (v: unknown) => (v === undefined || v === null ? "—" : Array.isArray(v) ? v.map(String).join(", ") : String(v));
  return (
    <table className="table" aria-label={label}>
      <thead>
        <tr>
          {cols.map((c) => (
            <th key={c} scope="col">
              {c.replace(/_/g, " ")}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r, i) => (
          <tr key={String(r.name ?? i)}>
            {cols.map((c) => (
              <td key={c}>{show(r[c])}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
