// The serial console: xterm.js over lqd's serial WebSocket. Frames are binary both ways:
// guest output is written to the terminal as bytes, typed input goes out as UTF-8.
import { useEffect, useRef, useState } from "react";
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import "@xterm/xterm/css/xterm.css";
import { api, consoleURL, isNotFound } from "../lib/api";
import { errorText } from "../components/ui";

type Status = { kind: "connecting" | "connected" | "disconnected" | "error" | "unavailable"; text: string };

export default function SerialConsole({ vm }: { vm: string }) {
  const el = useRef<HTMLDivElement>(null);
  const termRef = useRef<Terminal | null>(null);
  const [status, setStatus] = useState<Status>({ kind: "connecting", text: "Connecting…" });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    if (!el.current) return;
    const term = new Terminal({
      cursorBlink: true,
      fontFamily: 'ui-monospace, SFMono-Regular, "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: 13,
      scrollback: 10000,
      theme: { background: "#0b0d12", foreground: "#d7dae0", cursor: "#7aa2f7" },
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(el.current);
    termRef.current = term;
    const refit = () => {
      try {
        fit.fit();
      } catch {
        // not laid out yet
      }
    };
    refit();
    const ro = new ResizeObserver(refit);
    ro.observe(el.current);

    let ws: WebSocket | null = null;
    let cancelled = false;
    const enc = new TextEncoder();
    const send = (b: Uint8Array) => {
      if (ws?.readyState === WebSocket.OPEN) ws.send(b);
    };
    const onData = term.onData((d) => send(enc.encode(d)));
    const onBinary = term.onBinary((d) => send(Uint8Array.from(d, (c) => c.charCodeAt(0) & 0xff)));

    const connect = async (protocols?: string[]) => {
      setStatus({ kind: "connecting", text: "Connecting…" });
      let url: string;
      try {
        url = consoleURL(vm, "serial", await api.consoleTicket(vm));
      } catch (e) {
        if (cancelled) return;
        if (isNotFound(e)) setStatus({ kind: "unavailable", text: "The serial console is not available on this host (no console-ticket API)." });
        else setStatus({ kind: "error", text: `Cannot get a console ticket: ${errorText(e)}` });
        return;
      }
      if (cancelled) return;
      const sock = new WebSocket(url, protocols);
      sock.binaryType = "arraybuffer";
      let opened = false;
      sock.onopen = () => {
        opened = true;
        setStatus({ kind: "connected", text: "Connected" });
        term.focus();
      };
      sock.onmessage = (e) => term.write(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
      sock.onclose = (e) => {
        if (cancelled) return;
        // A server that insists on the "binary" subprotocol refuses the first try.
        if (!opened && !protocols) return void connect(["binary"]);
        setStatus({ kind: "disconnected", text: opened ? (e.wasClean ? "Disconnected" : "Connection lost") : "Cannot connect" });
      };
      ws = sock;
    };
    void connect();

    return () => {
      cancelled = true;
      ws?.close();
      onData.dispose();
      onBinary.dispose();
      ro.disconnect();
      term.dispose();
      termRef.current = null;
    };
  }, [vm, attempt]);

  return (
    <div className="console serial">
      <div className="console-bar" role="toolbar" aria-label="Serial console controls">
        <span className={`conn conn-${status.kind}`} role="status" aria-label={`Serial console: ${status.text}`}>
          <span className="dot" aria-hidden="true" />
          {status.text}
        </span>
        <button type="button" className="btn small" onClick={() => termRef.current?.clear()}>
          Clear
        </button>
        <button type="button" className="btn small" onClick={() => termRef.current?.focus()}>
          Focus terminal
        </button>
        {(status.kind === "disconnected" || status.kind === "error") && (
          <button type="button" className="btn small primary" onClick={() => setAttempt((a) => a + 1)}>
            Reconnect
          </button>
        )}
        <span className="muted small">Press Enter if the prompt does not show.</span>
      </div>
      {(status.kind === "unavailable" || status.kind === "error") && (
        <div className="empty console-msg" role="status">
          <p>{status.text}</p>
        </div>
      )}
      <div className="xterm-host" ref={el} aria-label={`Serial console of ${vm}`} />
    </div>
  );
}
