import { describe, expect, it } from "vitest";
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { fakeLQD, renderWithClient, vm } from "../test/helpers";
import CreateVM from "./CreateVM";
import type { Route } from "../test/helpers";

const base = {
  "GET /api/v1/images": [{ name: "tiny", format: "qcow2", size: 1, virtual_size: 1 << 30, sha256: "x", kernel: true, initrd: true, created_at: "2026-01-01T00:00:00Z" }],
  "GET /api/v1/host": { name: "hv1", version: "dev", qemu_version: "8", accel: "kvm", cpus: 8, memory_bytes: 16 * 2 ** 30, vms: 1, vms_running: 0, pools: [] },
  "GET /api/v1/vms": [vm({ name: "taken" })],
};

const created: Route = ({ body }) => ({ status: 201, json: vm({ name: (body as { name: string }).name, state: "running" }) });

async function fillGeneral(user: ReturnType<typeof userEvent.setup>, name: string) {
  const input = await screen.findByLabelText("Name");
  await user.clear(input);
  await user.type(input, name);
  await waitFor(() => expect(screen.getByRole("option", { name: /tiny/ })).toBeTruthy());
  await user.selectOptions(screen.getByLabelText("Image"), "tiny");
}

const next = () => screen.getByRole("button", { name: "Next" });

describe("CreateVM wizard", () => {
  it("validates the name before moving on", async () => {
    fakeLQD(base);
    const user = userEvent.setup();
    renderWithClient(<CreateVM />);
    await user.click(await screen.findByRole("button", { name: "Next" }));
    expect(screen.getByText("Name is required.")).toBeTruthy();
    expect(screen.getByText("Choose an image.")).toBeTruthy();
    expect(screen.getByLabelText("Name").getAttribute("aria-invalid")).toBe("true");

    for (const bad of ["Web_1", "-web", "a".repeat(64)]) {
      await fillGeneral(user, bad);
      await user.click(next());
      expect(screen.getByRole("heading", { name: "Name and image" })).toBeTruthy();
      expect(screen.getByText(/lowercase letters|at most 63/)).toBeTruthy();
    }
    await fillGeneral(user, "taken");
    await user.click(next());
    expect(screen.getByText("A VM named taken already exists.")).toBeTruthy();

    await fillGeneral(user, "web-1");
    await user.click(next());
    expect(screen.getByRole("heading", { name: "Hardware" })).toBeTruthy();
  });

  it("refuses invalid cloud-config and submits a valid VM with start", async () => {
    const srv = fakeLQD({ ...base, "POST /api/v1/vms": created });
    const user = userEvent.setup();
    renderWithClient(<CreateVM />);
    await fillGeneral(user, "web-1");
    await user.click(next());
    await user.clear(screen.getByLabelText("Memory (MiB)"));
    await user.type(screen.getByLabelText("Memory (MiB)"), "32");
    await user.click(next());
    expect(screen.getByText(/Memory must be/)).toBeTruthy();
    await user.clear(screen.getByLabelText("Memory (MiB)"));
    await user.type(screen.getByLabelText("Memory (MiB)"), "1024");
    await user.clear(screen.getByLabelText("vCPUs"));
    await user.type(screen.getByLabelText("vCPUs"), "2");
    await user.click(next());
    // no networks API on this host: no Network step
    expect(screen.queryByRole("button", { name: /Network/ })).toBeNull();
    expect(screen.getByRole("heading", { name: "Customize" })).toBeTruthy();

    const ud = screen.getByLabelText("Cloud-init user data (optional)");
    await user.click(ud);
    await user.paste("packages: [nginx]\n");
    await user.click(next());
    expect(screen.getByText(/must start with "#cloud-config"/)).toBeTruthy();
    await user.clear(ud);
    await user.paste("#cloud-config\npackages: [nginx\n");
    await user.click(next());
    expect(screen.getByText(/Invalid YAML/)).toBeTruthy();
    await user.clear(ud);
    await user.paste("#cloud-config\npackages: [nginx]\n");
    await user.click(screen.getByLabelText("SSH public keys"));
    await user.paste("ssh-ed25519 AAAAC3Nza me@laptop\n\n");
    await user.click(next());

    expect(screen.getByRole("heading", { name: "Review" })).toBeTruthy();
    expect((screen.getByLabelText("Power on after creation") as HTMLInputElement).checked).toBe(true);
    await user.click(screen.getByRole("button", { name: "Create VM" }));
    await waitFor(() => expect(location.pathname).toBe("/vms/web-1"));
    const post = srv.calls.find((c) => c.method === "POST");
    expect(post?.body).toEqual({
      name: "web-1",
      image: "tiny",
      cpus: 2,
      memory_mib: 1024,
      start: true,
      ssh_keys: ["ssh-ed25519 AAAAC3Nza me@laptop"],
      user_data: "#cloud-config\npackages: [nginx]\n",
    });
  });

  it("shows the server's refusal", async () => {
    fakeLQD({ ...base, "POST /api/v1/vms": () => ({ status: 409, json: { error: { code: "conflict", message: 'vm "web-1" already exists' } } }) });
    const user = userEvent.setup();
    renderWithClient(<CreateVM />);
    await fillGeneral(user, "web-1");
    await user.click(next());
    await user.click(next());
    await user.click(next());
    await user.click(screen.getByRole("button", { name: "Create VM" }));
    expect((await screen.findByRole("alert")).textContent).toContain("already exists");
  });

  it("adds a Network step when the host has networks, and sends the NICs", async () => {
    const srv = fakeLQD({
      ...base,
      "GET /api/v1/networks": [{ name: "lan", cidr: "10.0.0.0/24" }, { name: "dmz" }],
      "GET /api/v1/security-groups": [{ name: "web" }, { name: "ssh" }],
      "POST /api/v1/vms": created,
    });
    const user = userEvent.setup();
    renderWithClient(<CreateVM />);
    await screen.findByRole("button", { name: /Network/ });
    await fillGeneral(user, "web-2");
    await user.click(next());
    await user.click(next());
    expect(screen.getByRole("heading", { name: "Network" })).toBeTruthy();
    expect((screen.getByLabelText("Network", { selector: "select" }) as HTMLSelectElement).value).toBe("lan");
    await user.click(screen.getByRole("checkbox", { name: "ssh" }));
    await user.click(screen.getByRole("button", { name: "Add network adapter" }));
    await user.selectOptions(screen.getAllByLabelText("Network", { selector: "select" })[1], "dmz");
    await user.click(next());
    await user.click(next());
    await user.click(screen.getByRole("button", { name: "Create VM" }));
    await waitFor(() => expect(srv.calls.some((c) => c.method === "POST")).toBe(true));
    expect((srv.calls.find((c) => c.method === "POST")!.body as { nics: unknown }).nics).toEqual([
      { network: "lan", security_groups: ["ssh"] },
      { network: "dmz", security_groups: [] },
    ]);
  });
});
