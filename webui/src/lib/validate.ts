// Client-side checks that mirror lqd's, so the wizard can say what is wrong before submitting.
import { parseDocument } from "yaml";

export { NAME_RE, validateName } from "./names";

/**
 * Checks user-data: empty is fine; a script (#!) is passed as is; a cloud-config must start
 * with "#cloud-config" and be a YAML mapping. null when valid, else why not.
 */
export function validateCloudConfig(text: string): string | null {
  if (text.trim() === "") return null;
  if (text.startsWith("#!")) return null;
  if (!/^#cloud-config[ \t]*(\r?\n|$)/.test(text)) {
    return 'User data must start with "#cloud-config" (a cloud-config) or "#!" (a script).';
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const where = e.linePos?.[0] ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : "";
    const msg = e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
    return `Invalid YAML${where}: ${msg}`;
  }
  const v = doc.toJS();
  if (v === null || v === undefined) return null; // only the header: an empty cloud-config
  if (typeof v !== "object" || Array.isArray(v)) return "A cloud-config must be a YAML mapping (key: value), not a list or a scalar.";
  return null;
}

/** One key per non-empty line; lines starting with # are comments. */
export function parseSSHKeys(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

const KEY_RE = /^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/=]+( .*)?$/;

/** null when every key looks like an OpenSSH public key, else the first bad line. */
export function validateSSHKeys(text: string): string | null {
  const keys = parseSSHKeys(text);
  for (let i = 0; i < keys.length; i++) {
    if (!KEY_RE.test(keys[i])) return `Key ${i + 1} is not an OpenSSH public key (e.g. "ssh-ed25519 AAAA… user@host").`;
  }
  return null;
}
