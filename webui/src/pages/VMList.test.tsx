import { describe, expect, it } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { fakeLQD, renderWithClient, vm } from "../test/helpers";
import { VMList, filterVMs } from "./VMList";

const VMS = [
  vm({
    name: "web-1",
    state: "running",
    host: "hv1",
    cpus: 2,
    memory_mib: 2048,
    started_at: new Date(Date.now() - 3 * 3600 * 1000 - 5 * 60 * 1000).toISOString(),
    guest: {
      updated_at: "2026-01-01T00:00:00Z",
      interfaces: [
        { name: "lo", ips: ["127.0.0.1/8", "::1/128"] },
        { name: "eth0", mac: "52:54:00:00:00:01", ips: ["10.0.0.5/24", "fe80::1/64", "2001:db8::5/64"] },
      ],
    },
  }),
  vm({ name: "db-1", state: "stopped", host: "hv2", memory_mib: 4096 }),
  vm({ name: "web-2", state: "paused", host: "hv1", started_at: new Date().toISOString() }),
  vm({ name: "batch", state: "crashed", last_error: "qemu exited with status 1" }),
];

function rows() {
  return within(screen.getByRole("table", { name: "Virtual machines" }))
    .getAllByRole("row")
    .slice(1)
    .map((r) => r.getAttribute("data-vm"));
}

describe("VMList", () => {
  it("renders each VM with state, host, size, addresses and uptime", async () => {
    const srv = fakeLQD({ "GET /api/v1/vms": VMS });
    renderWithClient(<VMList />);
    await screen.findByRole("table", { name: "Virtual machines" });
    expect(rows()).toEqual(["batch", "db-1", "web-1", "web-2"]); // sorted by name
    const web = screen.getByRole("row", { name: /web-1/ });
    expect(within(web).getByRole("link", { name: "web-1" }).getAttribute("href")).toBe("/vms/web-1");
    expect(within(web).getByText("running")).toBeTruthy();
    expect(within(web).getByText("hv1")).toBeTruthy();
    expect(within(web).getByText("2 GiB")).toBeTruthy();
    // loopback and link-local addresses are left out
    expect(within(web).getByText("10.0.0.5, 2001:db8::5")).toBeTruthy();
    expect(within(web).getByText("3h 5m")).toBeTruthy();
    expect(within(web).getByRole("button", { name: "Shut down guest web-1" })).toBeTruthy();
    expect(within(web).queryByRole("button", { name: "Power on web-1" })).toBeNull();
    const db = screen.getByRole("row", { name: /db-1/ });
    expect(within(db).getByRole("button", { name: "Power on db-1" })).toBeTruthy();
    expect(within(screen.getByRole("row", { name: /batch/ })).getByText(/qemu exited/)).toBeTruthy();
    expect(screen.getByText("4 VMs, 1 running")).toBeTruthy();
    // the stats endpoint answered 404: the CPU column stays empty, no error shown
    await waitFor(() => expect(srv.calls.some((c) => c.path === "/api/v1/vms/web-1/stats")).toBe(true));
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("filters by state and searches by name or IP, keeping both in the URL", async () => {
    fakeLQD({ "GET /api/v1/vms": VMS });
    const user = userEvent.setup();
    renderWithClient(<VMList />);
    await screen.findByRole("table", { name: "Virtual machines" });

    await user.selectOptions(screen.getByLabelText("Filter by state"), "running");
    expect(rows()).toEqual(["web-1"]);
    expect(location.search).toBe("?state=running");

    await user.selectOptions(screen.getByLabelText("Filter by state"), "all");
    await user.type(screen.getByRole("searchbox", { name: "Search VMs" }), "WEB");
    expect(rows()).toEqual(["web-1", "web-2"]);
    expect(screen.getByRole("status").textContent).toBe("2 of 4 shown");

    await user.selectOptions(screen.getByLabelText("Filter by state"), "paused");
    expect(rows()).toEqual(["web-2"]);
    expect(new URLSearchParams(location.search).get("q")).toBe("WEB");

    await user.selectOptions(screen.getByLabelText("Filter by state"), "all");
    await user.clear(screen.getByRole("searchbox", { name: "Search VMs" }));
    await user.type(screen.getByRole("searchbox", { name: "Search VMs" }), "10.0.0");
    expect(rows()).toEqual(["web-1"]);

    await user.clear(screen.getByRole("searchbox", { name: "Search VMs" }));
    await user.type(screen.getByRole("searchbox", { name: "Search VMs" }), "nothing-like-this");
    expect(screen.queryByRole("table")).toBeNull();
    expect(screen.getByText("No VMs match the filter.")).toBeTruthy();
  });

  it("starts from the state in the URL (dashboard links)", async () => {
    history.replaceState(null, "", "/vms?state=crashed");
    fakeLQD({ "GET /api/v1/vms": VMS });
    renderWithClient(<VMList />);
    await screen.findByRole("table", { name: "Virtual machines" });
    expect(rows()).toEqual(["batch"]);
  });

  it("says so when there are no VMs", async () => {
    fakeLQD({ "GET /api/v1/vms": [] });
    renderWithClient(<VMList />);
    expect(await screen.findByText(/No virtual machines yet/)).toBeTruthy();
  });

  it("groups transitional states", () => {
    const t = [vm({ name: "a", state: "starting" }), vm({ name: "b", state: "migrating" }), vm({ name: "c", state: "running" })];
    expect(filterVMs(t, "transitioning", "").map((v) => v.name)).toEqual(["a", "b"]);
  });
});
