// End-to-end test of the web UI in real headless Chromium, against a running lqd that has
// an image named "tiny" (the integration suite's tiny guest).
//
//   LQ_URL=http://127.0.0.1:7480 LQ_TOKEN=$(cat /var/lib/limiquantix/admin.token) npm run e2e
//
// Env: LQ_URL, LQ_TOKEN (required); LQ_E2E_ARTIFACTS (screenshots, default e2e/artifacts);
// CHROMIUM (default /usr/bin/chromium); LQ_E2E_IMAGE (default tiny); LQ_E2E_TIMEOUT_S
// (boot waits, default 180).
import { chromium } from "playwright-core";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const BASE = (process.env.LQ_URL ?? "").replace(/\/$/, "");
const TOKEN = (process.env.LQ_TOKEN ?? "").trim();
const IMAGE = process.env.LQ_E2E_IMAGE ?? "tiny";
const ART = resolve(process.env.LQ_E2E_ARTIFACTS ?? join(here, "artifacts"));
const BOOT_MS = Number(process.env.LQ_E2E_TIMEOUT_S ?? 180) * 1000;
const EXE = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!BASE || !TOKEN) {
  console.error("e2e: set LQ_URL and LQ_TOKEN (a running lqd and its admin token)");
  process.exit(2);
}
mkdirSync(ART, { recursive: true });

const vmName = `e2e-${Date.now().toString(36)}`;
const t0 = Date.now();
const log = (...a) => console.log(`[e2e ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s]`, ...a);
let shot = 0;

async function apiFetch(path, init = {}) {
  return fetch(BASE + path, { ...init, headers: { Authorization: `Bearer ${TOKEN}`, ...(init.headers ?? {}) } });
}

async function waitFor(what, fn, timeoutMs, everyMs = 500) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last && last.ok !== false) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const userData = mkdtempSync(join(tmpdir(), "lq-e2e-chromium-"));
const ctx = await chromium.launchPersistentContext(userData, {
  executablePath: EXE,
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = ctx.pages()[0] ?? (await ctx.newPage());
page.setDefaultTimeout(30_000);
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(e.message));
page.on("console", (m) => {
  if (m.type() === "error") log("browser console error:", m.text());
});

async function screenshot(name) {
  const file = join(ART, `${String(++shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  log("screenshot", file);
}

/** Canvas pixels of the VNC screen: true once it shows more than one colour. */
async function canvasHasContent() {
  return page.evaluate(() => {
    const c = document.querySelector(".vnc-screen canvas");
    if (!c || c.width < 2 || c.height < 2) return { ok: false, why: "no canvas" };
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4 * 13) {
      seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      if (seen.size > 1) return { ok: true, width: c.width, height: c.height };
    }
    return { ok: false, why: `one colour over ${c.width}x${c.height}` };
  });
}

async function xtermText() {
  return page.evaluate(() => document.querySelector(".xterm-rows")?.textContent ?? "");
}

async function stateOf() {
  return page.locator(".page-header .badge").first().getAttribute("data-state");
}

let failed = false;
try {
  // ---- log in ----
  await page.goto(BASE + "/");
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  await screenshot("login");
  await page.getByLabel("API token").fill("lq_not-a-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "refused" }).waitFor();
  await page.getByLabel("API token").fill(TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Dashboard", level: 1 }).waitFor();
  const stored = await page.evaluate(() => sessionStorage.getItem("lq.token"));
  if (stored !== TOKEN) throw new Error("token not kept in sessionStorage");
  await page.getByRole("heading", { name: "Recent events" }).waitFor();
  await screenshot("dashboard");
  log("logged in");

  // ---- create a VM with the wizard ----
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Virtual machines" }).click();
  await page.getByRole("heading", { name: "Virtual machines", level: 1 }).waitFor();
  await screenshot("vms");
  await page.getByRole("link", { name: "New VM" }).first().click();
  await page.getByRole("heading", { name: "New virtual machine" }).waitFor();
  await page.getByLabel("Name", { exact: true }).fill("Bad_Name");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByText("Use lowercase letters").waitFor();
  await page.getByLabel("Name", { exact: true }).fill(vmName);
  await page.getByLabel("Image", { exact: true }).selectOption(IMAGE);
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByRole("heading", { name: "Hardware" }).waitFor();
  await page.getByLabel("Memory (MiB)").fill("256");
  await page.getByRole("button", { name: "Next" }).click();
  if (await page.getByRole("heading", { name: "Network" }).isVisible().catch(() => false)) {
    log("the host has networks: keeping the default adapter");
    await screenshot("wizard-network");
    await page.getByRole("button", { name: "Next" }).click();
  }
  await page.getByRole("heading", { name: "Customize" }).waitFor();
  const cloudInit = page.getByLabel("Cloud-init user data (optional)");
  await cloudInit.fill("#cloud-config\npackages: [nginx\n");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByText("Invalid YAML").waitFor();
  await screenshot("wizard-invalid-cloud-config");
  await cloudInit.fill("");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByRole("heading", { name: "Review" }).waitFor();
  if (!(await page.getByLabel("Power on after creation").isChecked())) throw new Error("start is not the default");
  await screenshot("wizard-review");
  await page.getByRole("button", { name: "Create VM" }).click();
  await page.waitForURL(`**/vms/${vmName}`);
  log("created", vmName);

  // ---- it reaches running without a reload ----
  await waitFor("the VM to show running", async () => ({ ok: (await stateOf()) === "running" }), BOOT_MS);
  await page.getByRole("heading", { name: "Guest" }).waitFor();
  await screenshot("vm-summary");
  log("running");

  // ---- graphical console ----
  await page.getByRole("tab", { name: "Console", exact: true }).click();
  await page.getByRole("status", { name: "Console: Connected" }).waitFor({ timeout: 30_000 });
  const px = await waitFor("the VNC canvas to show something", canvasHasContent, BOOT_MS, 1000);
  log(`VNC canvas ${px.width}x${px.height} is not blank`);
  await page.getByLabel("Scale to fit").uncheck();
  await page.getByLabel("Scale to fit").check();
  await page.getByRole("button", { name: "Send Ctrl+Alt+Del" }).isEnabled();
  await screenshot("vm-console");

  // ---- serial console ----
  // Wait for the guest's shell first, as a person would for the prompt.
  await waitFor(
    "the tiny guest to boot (LQ-TINY-BOOTED on its serial console)",
    async () => ({ ok: (await (await apiFetch(`/api/v1/vms/${vmName}/console-log?tail=65536`)).text()).includes("LQ-TINY-BOOTED") }),
    BOOT_MS,
    1000,
  );
  await page.getByRole("tab", { name: "Serial console" }).click();
  await page.getByRole("status", { name: "Serial console: Connected" }).waitFor({ timeout: 30_000 });
  await page.locator(".xterm-host .xterm").click();
  await page.keyboard.press("Enter");
  await page.keyboard.type("echo hello-$((6*7))");
  await page.keyboard.press("Enter");
  await waitFor("hello-42 in the serial console", async () => ({ ok: (await xtermText()).includes("hello-42") }), 60_000, 300);
  log("serial console answered hello-42");
  await screenshot("vm-serial");

  // ---- snapshots ----
  const snapRes = await apiFetch(`/api/v1/vms/${vmName}/snapshots`);
  if (snapRes.status === 404) {
    log("NOTE: GET /api/v1/vms/{name}/snapshots answers 404 on this lqd: skipping the snapshot step");
    if (await page.getByRole("tab", { name: "Snapshots" }).count()) throw new Error("Snapshots tab shown although the API answers 404");
  } else {
    await page.getByRole("tab", { name: "Snapshots" }).click();
    await page.getByLabel("Snapshot name").fill("e2e-snap");
    await page.getByRole("button", { name: "Take snapshot" }).click();
    await page.getByRole("row", { name: /e2e-snap/ }).waitFor({ timeout: 120_000 });
    await screenshot("vm-snapshots");
    await page.getByRole("button", { name: "Revert to e2e-snap" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Revert" }).click();
    await page.getByRole("dialog").waitFor({ state: "detached", timeout: 120_000 });
    await waitFor("the VM to be running after the revert", async () => ({ ok: (await stateOf()) === "running" }), 60_000);
    log("snapshot taken and reverted");
    await page.getByRole("button", { name: "Delete snapshot e2e-snap" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete snapshot" }).click();
    await page.getByRole("dialog").waitFor({ state: "detached", timeout: 60_000 });
    await page.getByRole("row", { name: /e2e-snap/ }).waitFor({ state: "detached" });
  }

  // ---- the other views of the VM ----
  await page.getByRole("tab", { name: "Monitor" }).click();
  await page.waitForTimeout(5000); // a few samples for the charts
  await screenshot("vm-monitor");
  await page.getByRole("tab", { name: "Console log" }).click();
  await page.getByRole("log").filter({ hasText: "LQ-TINY-BOOTED" }).waitFor();
  await screenshot("vm-console-log");

  // ---- list shows it with live state and CPU ----
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Virtual machines" }).click();
  await page.getByLabel("Search VMs").fill(vmName);
  await page.getByRole("row", { name: new RegExp(vmName) }).getByText("running").waitFor();
  await page.waitForTimeout(4000);
  await screenshot("vms-running");

  // ---- the other pages ----
  for (const [link, heading] of [
    ["Images", "Images"],
    ["Networks", "Networks"],
    ["Security groups", "Security groups"],
    ["Volumes", "Volumes"],
  ]) {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: link }).click();
    await page.getByRole("heading", { name: heading, level: 1 }).waitFor();
    // Loaded: a table, an empty state or "not available", and no spinner.
    await page.locator("main").locator("table, .empty, p.muted").first().waitFor();
    await page.locator("main .loading").waitFor({ state: "detached" });
    await screenshot(link.toLowerCase().replace(/ /g, "-"));
  }
  // ---- upload an image (a small raw disk), then delete it ----
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Images" }).click();
  await page.getByRole("row", { name: new RegExp(`^${IMAGE}\\b`) }).waitFor();
  const imgName = `${vmName}-img`;
  const rawPath = join(userData, "upload.raw");
  writeFileSync(rawPath, Buffer.alloc(1 << 20));
  await page.getByRole("button", { name: "Upload image" }).click();
  const up = page.getByRole("dialog", { name: "Upload image" });
  await up.getByLabel("Name").fill(imgName);
  await up.getByLabel("Disk file (qcow2 or raw)").setInputFiles(rawPath);
  await up.getByLabel("Format").selectOption("raw");
  await up.getByRole("button", { name: "Upload" }).click();
  await up.waitFor({ state: "detached", timeout: 60_000 });
  await page.getByRole("row", { name: new RegExp(`^${imgName}\\b`) }).waitFor();
  await screenshot("image-uploaded");
  await page.getByRole("button", { name: `Delete image ${imgName}` }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete image" }).click();
  await page.getByRole("row", { name: new RegExp(`^${imgName}\\b`) }).waitFor({ state: "detached" });
  log("uploaded and deleted an image");

  // ---- delete it ----
  await page.goto(`${BASE}/vms/${vmName}`); // a deep link loads the app (SPA fallback)
  await page.getByRole("group", { name: `Actions for ${vmName}` }).getByRole("button", { name: "Delete" }).click();
  const dialog = page.getByRole("dialog", { name: `Delete ${vmName}?` });
  if (!(await dialog.getByLabel(/Force/).isChecked())) throw new Error("force is not preselected for a running VM");
  await dialog.getByLabel("Type the VM's name to confirm").fill(vmName);
  await screenshot("vm-delete");
  await dialog.getByRole("button", { name: "Delete VM" }).click();
  await page.waitForURL("**/vms");
  await page.getByLabel("Search VMs").fill("");
  await waitFor("the VM to leave the list", async () => ({ ok: (await page.locator(`tr[data-vm="${vmName}"]`).count()) === 0 }), 30_000);
  const gone = await apiFetch(`/api/v1/vms/${vmName}`);
  if (gone.status !== 404) throw new Error(`VM still exists after delete: HTTP ${gone.status}`);
  log("deleted");

  if (pageErrors.length) throw new Error(`uncaught errors in the page:\n${pageErrors.join("\n")}`);
  log("PASS");
} catch (e) {
  failed = true;
  console.error("e2e FAILED:", e instanceof Error ? e.stack : e);
  try {
    await page.screenshot({ path: join(ART, "failure.png") });
    writeFileSync(join(ART, "failure.html"), await page.content());
    console.error("failure screenshot:", join(ART, "failure.png"));
  } catch {
    // the browser is gone
  }
} finally {
  await apiFetch(`/api/v1/vms/${vmName}?force=true`, { method: "DELETE" }).catch(() => {});
  await apiFetch(`/api/v1/images/${vmName}-img`, { method: "DELETE" }).catch(() => {});
  await ctx.close().catch(() => {});
  rmSync(userData, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
