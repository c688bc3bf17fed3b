// Keeps the app current from the event feed: recent events for the dashboard, and query
// invalidation so lists and details refetch when something changes.
import { useEffect, useSyncExternalStore } from "react";
import type { QueryClient, QueryKey } from "@tanstack/react-query";
import { EventStream, type StreamMode } from "./eventstream";
import { getToken, setToken } from "./api";
import type { LQEvent } from "./types";

const MAX = 300;

interface State {
  events: LQEvent[]; // newest first
  mode: StreamMode;
}

let state: State = { events: [], mode: "connecting" };
const listeners = new Set<() => void>();

function set(next: Partial<State>) {
  state = { ...state, ...next };
  listeners.forEach((l) => l());
}

function subscribe(l: () => void) {
  listeners.add(l);
  return () => {
    listeners.delete(l);
  };
}

export function useEvents(): State {
  return useSyncExternalStore(subscribe, () => state);
}

/** The query keys an event makes stale. */
export function keysFor(e: LQEvent): QueryKey[] {
  const keys: QueryKey[] = [["host"]];
  const kind = e.type.split(".")[0];
  switch (kind) {
    case "vm":
      keys.push(["vms"]);
      if (e.vm) {
        keys.push(["vm", e.vm]);
        if (e.type.includes("snapshot")) keys.push(["snapshots", e.vm]);
      }
      break;
    case "snapshot":
      keys.push(["vms"]);
      if (e.vm) keys.push(["snapshots", e.vm], ["vm", e.vm]);
      break;
    case "image":
      keys.push(["images"]);
      break;
    case "network":
      keys.push(["networks"], ["vms"]);
      break;
    case "security_group":
    case "security-group":
    case "sg":
      keys.push(["security-groups"]);
      break;
    case "volume":
      keys.push(["volumes"], ["vms"]);
      break;
    default:
      if (e.vm) keys.push(["vms"], ["vm", e.vm]);
  }
  return keys;
}

/** Runs the event stream while signed in. */
export function useEventFeed(qc: QueryClient, token: string | null): void {
  useEffect(() => {
    if (!token) return;
    set({ events: [], mode: "connecting" });
    // Batch invalidations: a burst of events (a VM booting) refetches each key once.
    const pending = new Map<string, QueryKey>();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      timer = undefined;
      for (const key of pending.values()) void qc.invalidateQueries({ queryKey: key });
      pending.clear();
    };
    const s = new EventStream({
      token: getToken,
      onUnauthorized: () => setToken(null),
      onMode: (mode) => set({ mode }),
      onEvents: (evs, backlog) => {
        set({ events: [...evs.slice(-MAX).reverse(), ...state.events].slice(0, MAX) });
        if (backlog) return;
        for (const e of evs) for (const k of keysFor(e)) pending.set(JSON.stringify(k), k);
        timer ??= setTimeout(flush, 150);
      },
    });
    s.start();
    return () => {
      s.stop();
      if (timer) clearTimeout(timer);
    };
  }, [qc, token]);
}
