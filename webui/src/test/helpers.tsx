// Test helpers: a fake lqd behind fetch, and a render with a fresh query client.
import { render } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import type { ReactElement } from "react";
import { vi } from "vitest";
import type { VM } from "../lib/types";

export type Route = (req: { method: string; url: URL; body: unknown; headers: Headers }) => { status?: number; json?: unknown; text?: string; headers?: Record<string, string> } | undefined;

export interface FakeServer {
  calls: { method: string; path: string; body: unknown; headers: Headers }[];
  fetch: ReturnType<typeof vi.fn>;
}

/** Installs a fetch that answers from routes ("GET /api/v1/vms" → handler); others 404. */
export function fakeLQD(routes: Record<string, Route | object>): FakeServer {
  const calls: FakeServer["calls"] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input), "http://lqd.test");
    const method = init.method ?? "GET";
    const body = typeof init.body === "string" ? JSON.parse(init.body) : init.body;
    const headers = new Headers(init.headers);
    calls.push({ method, path: url.pathname + url.search, body, headers });
    const r = routes[`${method} ${url.pathname}`];
    const out = typeof r === "function" ? (r as Route)({ method, url, body, headers }) : r !== undefined ? { json: r } : undefined;
    if (!out) return new Response(JSON.stringify({ error: { code: "not_found", message: `no such path: ${url.pathname}` } }), { status: 404, headers: { "Content-Type": "application/json" } });
    const status = out.status ?? 200;
    if (out.text !== undefined) return new Response(out.text, { status, headers: out.headers });
    return new Response(status === 204 ? null : JSON.stringify(out.json), { status, headers: { "Content-Type": "application/json", ...out.headers } });
  });
  vi.stubGlobal("fetch", fn);
  return { calls, fetch: fn };
}

export function renderWithClient(ui: ReactElement) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false, refetchOnWindowFocus: false } } });
  return { qc, ...render(<QueryClientProvider client={qc}>{ui}</QueryClientProvider>) };
}

export function vm(p: Partial<VM> & { name: string }): VM {
  return {
    uuid: `uuid-${p.name}`,
    host: "hv1",
    state: "stopped",
    cpus: 1,
    memory_mib: 512,
    disk_gib: 10,
    image: "debian-12",
    restart_policy: "never",
    autostart: false,
    created_at: "2026-01-01T00:00:00Z",
    ...p,
  };
}
