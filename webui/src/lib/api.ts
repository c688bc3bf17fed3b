// The REST client: every call carries the bearer token kept in sessionStorage.
import type { ConsoleTicket, CreateSnapshotRequest, CreateVMRequest, Host, Image, LQEvent, NamedResource, Snapshot, VM, VMStats } from "./types";

const TOKEN_KEY = "lq.token";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && err.status === 404;
}

// --- token -------------------------------------------------------------------------------

type Listener = () => void;
const authListeners = new Set<Listener>();

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  authListeners.forEach((l) => l());
}

export function onAuthChange(l: Listener): () => void {
  authListeners.add(l);
  return () => authListeners.delete(l);
}

export function authHeaders(token = getToken()): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// --- requests ----------------------------------------------------------------------------

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
  token?: string;
  /** Return the raw text instead of parsing JSON. */
  text?: boolean;
  headers?: Record<string, string>;
}

async function errorFrom(res: Response): Promise<ApiError> {
  let code = "http_" + res.status;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = await res.json();
    if (body?.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
    }
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(res.status, code, message);
}

export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...authHeaders(opts.token ?? getToken()), ...opts.headers };
  let body: BodyInit | undefined;
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  const res = await fetch(path, { method: opts.method ?? "GET", headers, body, signal: opts.signal });
  if (!res.ok) {
    const err = await errorFrom(res);
    // A token that stopped working (revoked, lqd reinstalled): back to the login page.
    if (res.status === 401 && !opts.token) setToken(null);
    throw err;
  }
  if (res.status === 204) return undefined as T;
  if (opts.text) return (await res.text()) as T;
  return (await res.json()) as T;
}

const enc = encodeURIComponent;

export const api = {
  host: (signal?: AbortSignal) => request<Host>("/api/v1/host", { signal }),
  vms: (signal?: AbortSignal) => request<VM[]>("/api/v1/vms", { signal }),
  vm: (name: string, signal?: AbortSignal) => request<VM>(`/api/v1/vms/${enc(name)}`, { signal }),
  createVM: (req: CreateVMRequest) => request<VM>("/api/v1/vms", { method: "POST", body: req }),
  deleteVM: (name: string, force: boolean) => request<void>(`/api/v1/vms/${enc(name)}${force ? "?force=true" : ""}`, { method: "DELETE" }),
  action: (name: string, action: PowerAction) => request<VM>(`/api/v1/vms/${enc(name)}/${action}`, { method: "POST" }),
  stats: (name: string, signal?: AbortSignal) => request<VMStats>(`/api/v1/vms/${enc(name)}/stats`, { signal }),
  consoleLog: (name: string, tail: number, signal?: AbortSignal) =>
    request<string>(`/api/v1/vms/${enc(name)}/console-log?tail=${tail}`, { signal, text: true, headers: { Accept: "text/plain" } }),
  consoleTicket: (name: string) => request<ConsoleTicket>(`/api/v1/vms/${enc(name)}/console-ticket`, { method: "POST" }),
  snapshots: (name: string, signal?: AbortSignal) => request<Snapshot[]>(`/api/v1/vms/${enc(name)}/snapshots`, { signal }),
  createSnapshot: (name: string, req: CreateSnapshotRequest) => request<Snapshot>(`/api/v1/vms/${enc(name)}/snapshots`, { method: "POST", body: req }),
  revertSnapshot: (name: string, snap: string) => request<unknown>(`/api/v1/vms/${enc(name)}/snapshots/${enc(snap)}/revert`, { method: "POST" }),
  deleteSnapshot: (name: string, snap: string) => request<void>(`/api/v1/vms/${enc(name)}/snapshots/${enc(snap)}`, { method: "DELETE" }),
  images: (signal?: AbortSignal) => request<Image[]>("/api/v1/images", { signal }),
  deleteImage: (name: string) => request<void>(`/api/v1/images/${enc(name)}`, { method: "DELETE" }),
  events: (after: number, limit: number, signal?: AbortSignal) => request<LQEvent[]>(`/api/v1/events?after=${after}&limit=${limit}`, { signal }),
  list: (collection: "networks" | "security-groups" | "volumes", signal?: AbortSignal) => request<NamedResource[]>(`/api/v1/${collection}`, { signal }),
};

export const POWER_ACTIONS = ["start", "stop", "shutdown", "reboot", "reset", "pause", "resume"] as const;
export type PowerAction = (typeof POWER_ACTIONS)[number];

/** Upload an image as multipart/form-data: fields first, then the files, as lqd wants. */
export function uploadImage(
  fields: { name: string; format?: string; cmdline?: string },
  files: { disk?: File | null; kernel?: File | null; initrd?: File | null },
  onProgress?: (sent: number, total: number) => void,
): { promise: Promise<Image>; abort: () => void } {
  const form = new FormData();
  form.append("name", fields.name);
  if (fields.format) form.append("format", fields.format);
  if (fields.cmdline) form.append("cmdline", fields.cmdline);
  for (const part of ["disk", "kernel", "initrd"] as const) {
    const f = files[part];
    if (f) form.append(part, f, f.name);
  }
  // XMLHttpRequest rather than fetch: it streams the files from disk and reports progress.
  const xhr = new XMLHttpRequest();
  const promise = new Promise<Image>((resolve, reject) => {
    xhr.open("POST", "/api/v1/images");
    const token = getToken();
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => onProgress?.(e.loaded, e.total);
    xhr.onerror = () => reject(new ApiError(0, "network", "upload failed: network error"));
    xhr.onabort = () => reject(new ApiError(0, "aborted", "upload cancelled"));
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // keep null
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as Image);
      else {
        const e = (body as { error?: { code?: string; message?: string } } | null)?.error;
        reject(new ApiError(xhr.status, e?.code ?? `http_${xhr.status}`, e?.message ?? xhr.statusText));
      }
    };
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

/** ws(s):// URL for a console, from the ticket's URL when the server gives one. */
export function consoleURL(name: string, kind: "console" | "serial", t: ConsoleTicket, loc: Location = window.location): string {
  const given = kind === "console" ? t.vnc_url : t.serial_url;
  const u = new URL(given || `/api/v1/vms/${enc(name)}/${kind}`, loc.href);
  if (!given || !u.searchParams.has("ticket")) u.searchParams.set("ticket", t.ticket);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  return u.toString();
}
