// The live event feed: GET /api/v1/events as server-sent events, resumed with
// Last-Event-ID after a reconnect; where the server answers that request with the JSON
// list instead (no SSE yet), it polls ?after=ID every two seconds.
import { ApiError } from "./api";
import { SSEParser } from "./sse";
import type { LQEvent } from "./types";

export type StreamMode = "connecting" | "live" | "polling" | "offline";

export interface EventStreamOptions {
  token: () => string | null;
  /** New events, oldest first. backlog is true for the history read at start. */
  onEvents: (evs: LQEvent[], backlog: boolean) => void;
  onMode?: (m: StreamMode) => void;
  /** The token was refused. */
  onUnauthorized?: () => void;
  fetch?: typeof fetch;
  pollMs?: number;
  /** Pages of history to read at start (1000 events each). */
  maxBacklogPages?: number;
}

const PAGE = 1000;

export class EventStream {
  lastId = 0;
  mode: StreamMode = "connecting";
  private ctl = new AbortController();
  private retryMs = 2000;
  private readonly fetch: typeof fetch;

  constructor(private readonly o: EventStreamOptions) {
    this.fetch = o.fetch ?? ((...a) => fetch(...a));
  }

  start(): void {
    void this.run();
  }

  stop(): void {
    this.ctl.abort();
  }

  private get stopped() {
    return this.ctl.signal.aborted;
  }

  private setMode(m: StreamMode) {
    if (m !== this.mode) {
      this.mode = m;
      this.o.onMode?.(m);
    }
  }

  private headers(accept: string): Record<string, string> {
    const h: Record<string, string> = { Accept: accept };
    const t = this.o.token();
    if (t) h.Authorization = `Bearer ${t}`;
    return h;
  }

  private check(res: Response) {
    if (res.status === 401) {
      this.o.onUnauthorized?.();
      this.stop();
    }
    if (!res.ok) throw new ApiError(res.status, `http_${res.status}`, `events: HTTP ${res.status}`);
  }

  /** Reads events after lastId from the JSON list; returns how many it got. */
  private async poll(backlog: boolean): Promise<number> {
    const res = await this.fetch(`/api/v1/events?after=${this.lastId}&limit=${PAGE}`, {
      headers: this.headers("application/json"),
      signal: this.ctl.signal,
    });
    this.check(res);
    const evs = ((await res.json()) as LQEvent[]).filter((e) => e.id > this.lastId);
    if (evs.length > 0) {
      this.lastId = evs[evs.length - 1].id;
      this.o.onEvents(evs, backlog);
    }
    return evs.length;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.ctl.signal.addEventListener("abort", () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private async run(): Promise<void> {
    // History first, so the dashboard has recent events and we know where to resume.
    for (let page = 0; !this.stopped; ) {
      try {
        const n = await this.poll(true);
        if (n < PAGE || ++page >= (this.o.maxBacklogPages ?? 100)) break;
      } catch {
        if (this.stopped) return;
        this.setMode("offline");
        await this.sleep(this.retryMs);
      }
    }
    while (!this.stopped) {
      let sse: boolean;
      try {
        sse = await this.stream();
      } catch {
        if (this.stopped) return;
        this.setMode("offline");
        await this.sleep(this.retryMs);
        continue;
      }
      if (!sse) return this.pollLoop();
      // The stream ended (lqd restarted, a proxy timed out): reconnect with Last-Event-ID.
      this.setMode("connecting");
      await this.sleep(Math.min(this.retryMs, 5000));
    }
  }

  /** Streams until the connection ends; false when the server does not speak SSE here. */
  private async stream(): Promise<boolean> {
    const h = this.headers("text/event-stream");
    // Always a cursor: the history read ended at lastId, and without one the server would
    // send live events only, losing any recorded between that read and this request.
    h["Last-Event-ID"] = String(this.lastId);
    const res = await this.fetch("/api/v1/events", { headers: h, signal: this.ctl.signal, cache: "no-store" });
    if (res.status === 404 || res.status === 406 || res.status === 405) return false;
    this.check(res);
    const ctype = res.headers.get("Content-Type") ?? "";
    if (!ctype.startsWith("text/event-stream") || !res.body) {
      await res.body?.cancel();
      return false;
    }
    this.setMode("live");
    const parser = new SSEParser(
      (m) => {
        let ev: LQEvent;
        try {
          ev = JSON.parse(m.data) as LQEvent;
        } catch {
          return; // not an event of ours (a heartbeat with data)
        }
        if (typeof ev !== "object" || ev === null) return;
        if (!ev.type && m.event !== "message") ev.type = m.event;
        const id = Number(ev.id ?? m.id);
        if (Number.isFinite(id) && id > 0) {
          if (id <= this.lastId) return; // a replayed event we already have
          ev.id = id;
          this.lastId = id;
        }
        this.o.onEvents([ev], false);
      },
      (ms) => (this.retryMs = ms),
    );
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
      }
    } catch (e) {
      if (this.stopped) return true;
      throw e;
    }
    return true;
  }

  private async pollLoop(): Promise<void> {
    this.setMode("polling");
    while (!this.stopped) {
      await this.sleep(this.o.pollMs ?? 2000);
      if (this.stopped) return;
      try {
        // Catch up in full pages, then wait again.
        while ((await this.poll(false)) === PAGE && !this.stopped);
        this.setMode("polling");
      } catch {
        if (!this.stopped) this.setMode("offline");
      }
    }
  }
}
