import { useState, type FormEvent } from "react";
import { ApiError, request, setToken } from "../lib/api";
import type { Host } from "../lib/types";

export function Login() {
  const [token, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const t = token.trim();
    if (!t) {
      setError("Enter a token.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await request<Host>("/api/v1/host", { token: t });
      setToken(t);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? "lqd refused this token." : `Cannot reach lqd: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="login">
      <form className="login-card" onSubmit={submit} aria-labelledby="login-title">
        <div className="brand big">
          <span className="logo" aria-hidden="true">
            lq
          </span>
          limiquantix
        </div>
        <h1 id="login-title">Sign in</h1>
        <label className="field">
          <span>API token</span>
          <input type="password" name="token" autoComplete="current-password" value={token} onChange={(e) => setValue(e.target.value)} autoFocus spellCheck={false} />
        </label>
        <p className="hint">
          The admin token is in <code>&lt;data-dir&gt;/admin.token</code> on the host (by default <code>/var/lib/limiquantix/admin.token</code>). It is kept for this browser tab only.
        </p>
        {error && (
          <div className="alert error" role="alert">
            {error}
          </div>
        )}
        <button type="submit" className="btn primary solid wide" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
