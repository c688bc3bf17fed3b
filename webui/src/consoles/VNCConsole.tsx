// The graphical console: noVNC over lqd's WebSocket VNC proxy. Each connection takes a
// fresh single-use ticket (POST …/console-ticket), so reconnecting works after it expires.
import { useEffect, useRef, useState } from "react";
import RFB from "@novnc/novnc";
import { api, consoleURL, isNotFound } from "../lib/api";
import { Icon } from "../components/Icon";
import { errorText } from "../components/ui";

type Status = { kind: "connecting" | "connected" | "disconnected" | "error" | "unavailable"; text: string };

export default function VNCConsole({ vm }: { vm: string }) {
  const wrap = useRef<HTMLDivElement>(null);
  const screen = useRef<HTMLDivElement>(null);
  const rfbRef = useRef<RFB | null>(null);
  const [status, setStatus] = useState<Status>({ kind: "connecting", text: "Connecting…" });
  const [attempt, setAttempt] = useState(0);
  const [scale, setScale] = useState(true);
  const [fullscreen, setFullscreen] = useState(false);
  const [showClip, setShowClip] = useState(false);
  const [clipOut, setClipOut] = useState("");
  const [clipIn, setClipIn] = useState("");
  const scaleRef = useRef(scale);
  scaleRef.current = scale;

  useEffect(() => {
    let cancelled = false;
    let rfb: RFB | null = null;
    setStatus({ kind: "connecting", text: "Connecting…" });
    (async () => {
      let url: string;
      try {
        url = consoleURL(vm, "console", await api.consoleTicket(vm));
      } catch (e) {
        if (cancelled) return;
        if (isNotFound(e)) setStatus({ kind: "unavailable", text: "The graphical console is not available on this host (no console-ticket API)." });
        else setStatus({ kind: "error", text: `Cannot get a console ticket: ${errorText(e)}` });
        return;
      }
      if (cancelled || !screen.current) return;
      rfb = new RFB(screen.current, url, { wsProtocols: ["binary"], shared: true });
      rfb.scaleViewport = scaleRef.current;
      rfb.resizeSession = false;
      rfb.background = "#0b0d12";
      rfb.addEventListener("connect", () => {
        setStatus({ kind: "connected", text: "Connected" });
        rfb?.focus();
      });
      rfb.addEventListener("disconnect", (e) => {
        const clean = (e as CustomEvent<{ clean: boolean }>).detail?.clean;
        setStatus({ kind: "disconnected", text: clean ? "Disconnected" : "Connection lost" });
      });
      rfb.addEventListener("securityfailure", (e) => {
        const d = (e as CustomEvent<{ status: number; reason?: string }>).detail;
        setStatus({ kind: "error", text: `VNC security failure: ${d?.reason ?? d?.status}` });
      });
      rfb.addEventListener("clipboard", (e) => setClipIn((e as CustomEvent<{ text: string }>).detail.text));
      rfbRef.current = rfb;
    })();
    return () => {
      cancelled = true;
      rfbRef.current = null;
      try {
        rfb?.disconnect();
      } catch {
        // already closed
      }
    };
  }, [vm, attempt]);

  useEffect(() => {
    if (rfbRef.current) rfbRef.current.scaleViewport = scale;
  }, [scale]);

  useEffect(() => {
    const onChange = () => setFullscreen(document.fullscreenElement === wrap.current);
    document.addEventListener("fullscreenchange", onChange);
    return () => document.removeEventListener("fullscreenchange", onChange);
  }, []);

  const toggleFullscreen = () => {
    if (document.fullscreenElement) void document.exitFullscreen();
    else void wrap.current?.requestFullscreen?.();
  };

  const connected = status.kind === "connected";
  return (
    <div className={`console vnc ${fullscreen ? "is-fullscreen" : ""}`} ref={wrap}>
      <div className="console-bar" role="toolbar" aria-label="Console controls">
        <span className={`conn conn-${status.kind}`} role="status" aria-label={`Console: ${status.text}`}>
          <span className="dot" aria-hidden="true" />
          {status.text}
        </span>
        <button type="button" className="btn small" disabled={!connected} onClick={() => rfbRef.current?.sendCtrlAltDel()}>
          <Icon name="keyboard" />
          Send Ctrl+Alt+Del
        </button>
        <label className="check small">
          <input type="checkbox" checked={scale} onChange={(e) => setScale(e.target.checked)} /> Scale to fit
        </label>
        <button type="button" className={`btn small ${showClip ? "active" : ""}`} aria-expanded={showClip} aria-controls="vnc-clipboard" onClick={() => setShowClip((s) => !s)}>
          <Icon name="clipboard" />
          Clipboard
        </button>
        <button type="button" className="btn small" onClick={toggleFullscreen} aria-label={fullscreen ? "Exit full screen" : "Full screen"}>
          <Icon name="fullscreen" />
          {fullscreen ? "Exit full screen" : "Full screen"}
        </button>
        {(status.kind === "disconnected" || status.kind === "error") && (
          <button type="button" className="btn small primary" onClick={() => setAttempt((a) => a + 1)}>
            Reconnect
          </button>
        )}
      </div>
      {showClip && (
        <div className="clipboard" id="vnc-clipboard">
          <label className="field">
            <span>Text to send to the guest's clipboard</span>
            <textarea rows={3} value={clipOut} onChange={(e) => setClipOut(e.target.value)} />
          </label>
          <button type="button" className="btn small" disabled={!connected || clipOut === ""} onClick={() => rfbRef.current?.clipboardPasteFrom(clipOut)}>
            Send to guest
          </button>
          <label className="field">
            <span>Guest clipboard</span>
            <textarea rows={2} readOnly value={clipIn} placeholder="Text the guest copies appears here" />
          </label>
        </div>
      )}
      {status.kind === "unavailable" || status.kind === "error" ? (
        <div className="empty console-msg" role="status">
          <p>{status.text}</p>
        </div>
      ) : null}
      <div className="vnc-screen" ref={screen} aria-label={`Graphical console of ${vm}`} role="application" data-connected={connected} />
    </div>
  );
}
