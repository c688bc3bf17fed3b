import { afterEach, describe, expect, it, vi } from "vitest";
import { EventStream, type StreamMode } from "./eventstream";
import type { LQEvent } from "./types";

const ev = (id: number, type = "vm.state", vm = "web-1"): LQEvent => ({ id, time: "2026-01-01T00:00:00Z", type, vm, message: "running" });

function sseBody(chunks: string[], keepOpen: boolean) {
  const enc = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      if (!keepOpen) c.close();
    },
  });
}

function until(cond: () => boolean, ms = 2000) {
  return vi.waitFor(() => expect(cond()).toBe(true), { timeout: ms, interval: 5 });
}

afterEach(() => vi.useRealTimers());

describe("EventStream", () => {
  it("reads the history, then streams with Last-Event-ID and resumes from the last id after a drop", async () => {
    const seen: LQEvent[] = [];
    const modes: StreamMode[] = [];
    const sseHeaders: Record<string, string>[] = [];
    let streams = 0;
    const fetch = vi.fn(async (url: string, init: RequestInit) => {
      const h = init.headers as Record<string, string>;
      if (h.Accept === "application/json") return Response.json(url.includes("after=0") ? [ev(1), ev(2)] : []);
      sseHeaders.push(h);
      streams++;
      const body =
        streams === 1
          ? // first connection: two events cut mid-field, then the server goes away
            sseBody(['retry: 10\n\nid: 3\nevent: vm.state\nda', `ta: ${JSON.stringify(ev(3))}\n\nid: 4\ndata: ${JSON.stringify(ev(4, "image.created", ""))}\n\n`], false)
          : sseBody([`id: 4\ndata: ${JSON.stringify(ev(4))}\n\nid: 5\ndata: ${JSON.stringify(ev(5))}\n\n`], true);
      return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
    });
    const s = new EventStream({ token: () => "tok", fetch: fetch as unknown as typeof globalThis.fetch, onEvents: (e) => seen.push(...e), onMode: (m) => modes.push(m) });
    s.start();
    await until(() => seen.length === 5);
    s.stop();
    expect(seen.map((e) => e.id)).toEqual([1, 2, 3, 4, 5]); // 4 replayed on reconnect is dropped
    expect(seen[3].type).toBe("image.created");
    expect(sseHeaders[0]["Last-Event-ID"]).toBe("2");
    expect(sseHeaders[1]["Last-Event-ID"]).toBe("4");
    expect(sseHeaders[0].Authorization).toBe("Bearer tok");
    expect(modes).toContain("live");
  });

  it("sends Last-Event-ID 0 when there is no history, so nothing recorded meanwhile is lost", async () => {
    let sseHeader: string | undefined;
    const fetch = vi.fn(async (_url: string, init: RequestInit) => {
      const h = init.headers as Record<string, string>;
      if (h.Accept === "application/json") return Response.json([]);
      sseHeader = h["Last-Event-ID"];
      return new Response(sseBody([], true), { headers: { "Content-Type": "text/event-stream" } });
    });
    const s = new EventStream({ token: () => "tok", fetch: fetch as unknown as typeof globalThis.fetch, onEvents: () => {} });
    s.start();
    await until(() => sseHeader !== undefined);
    s.stop();
    expect(sseHeader).toBe("0");
  });

  it("falls back to polling ?after=ID when the server answers the stream request with JSON", async () => {
    const seen: number[] = [];
    const urls: string[] = [];
    let polls = 0;
    const fetch = vi.fn(async (url: string) => {
      urls.push(url);
      if (url === "/api/v1/events") return Response.json([ev(1), ev(2)]); // an lqd without SSE ignores Accept
      if (url.includes("after=0")) return Response.json([ev(1), ev(2)]);
      polls++;
      return Response.json(polls === 1 ? [ev(3)] : []);
    });
    const s = new EventStream({ token: () => "t", fetch: fetch as unknown as typeof globalThis.fetch, pollMs: 5, onEvents: (e) => seen.push(...e.map((x) => x.id)) });
    s.start();
    await until(() => seen.length === 3 && polls > 2);
    s.stop();
    expect(seen).toEqual([1, 2, 3]);
    expect(urls).toContain("/api/v1/events?after=2&limit=1000");
    expect(urls).toContain("/api/v1/events?after=3&limit=1000");
    expect(s.mode).toBe("polling");
  });

  it("pages through a long history", async () => {
    const page = (from: number, n: number) => Array.from({ length: n }, (_, i) => ev(from + i + 1));
    const fetch = vi.fn(async (url: string, init: RequestInit) => {
      if ((init.headers as Record<string, string>).Accept !== "application/json") return new Response(sseBody([], true), { headers: { "Content-Type": "text/event-stream" } });
      const after = Number(new URL(url, "http://x").searchParams.get("after"));
      return Response.json(after < 2000 ? page(after, 1000) : page(after, 3));
    });
    let backlog = 0;
    const s = new EventStream({ token: () => "t", fetch: fetch as unknown as typeof globalThis.fetch, onEvents: (e, b) => b && (backlog += e.length) });
    s.start();
    await until(() => backlog === 2003);
    s.stop();
    expect(s.lastId).toBe(2003);
  });

  it("reports a refused token and stops", async () => {
    const onUnauthorized = vi.fn();
    const fetch = vi.fn(async () => new Response('{"error":{"code":"unauthorized","message":"invalid token"}}', { status: 401 }));
    const s = new EventStream({ token: () => "bad", fetch: fetch as unknown as typeof globalThis.fetch, onEvents: () => {}, onUnauthorized });
    s.start();
    await until(() => onUnauthorized.mock.calls.length > 0);
    await new Promise((r) => setTimeout(r, 30));
    expect(fetch.mock.calls.length).toBe(1);
  });
});
