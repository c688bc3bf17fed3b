package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/limiquantix/limiquantix/integration/guest"
)

// TestDebianCloudGuest boots a real Debian 12 cloud guest: cloud-init applies the hostname,
// the SSH key and the user's cloud-config; the guest agent reports the OS and runs
// commands; a graceful shutdown goes through the agent.
func TestDebianCloudGuest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	img, err := guest.Debian(ctx)
	if err != nil {
		t.Fatalf("debian guest: %v", err)
	}
	data, run := newDirs(t)
	d := startLQD(t, data, run)
	d.mustLQ("image", "import", "debian-12", img.Disk, "--kernel", img.Kernel, "--initrd", img.Initrd, "--cmdline", img.Cmdline)

	// An SSH key pair made with ssh-keygen, so the test can log in with ssh.
	dir := filepath.Dir(data)
	privFile := filepath.Join(dir, "id_ed25519")
	keyFile := privFile + ".pub"
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lq-test@host", "-f", privFile).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	keyBytes, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(keyBytes))
	userData := filepath.Join(dir, "cloud-config.yaml")
	os.WriteFile(userData, []byte(`#cloud-config
write_files:
  - path: /etc/lq-marker
    content: "written-by-user-cloud-config\n"
runcmd:
  - [sh, -c, "echo runcmd-ran > /run/lq-runcmd"]
`), 0o600)

	// The NIC is on the default network in group "ssh", which starts with no rules.
	d.mustLQ("sg", "create", "ssh")
	d.mustLQ("vm", "create", "web1", "--image", "debian-12", "--cpus", "1", "--memory", "1024", "--disk", "4",
		"--ssh-key", keyFile, "--user-data", userData, "--nic", "default,sg=ssh", "--start")
	d.waitState("web1", "running", 60*time.Second)

	// The agent answers once the guest is up; lqd polls it and "show" asks it afresh.
	waitFor(t, 300*time.Second, "the guest agent to report the OS", func() (bool, string) {
		v := d.vm("web1")
		if v.Guest == nil || v.Guest.OS == nil {
			tail := d.consoleLog("web1")
			if len(tail) > 400 {
				tail = tail[len(tail)-400:]
			}
			return false, "no agent facts yet; console tail:\n" + tail
		}
		return v.Guest.OS.ID == "debian", "os id " + v.Guest.OS.ID
	})
	guestExec := func(t *testing.T, args ...string) string {
		t.Helper()
		return d.with(t).mustLQ(append([]string{"vm", "exec", "web1", "--timeout", "120", "--"}, args...)...)
	}
	// cloud-init's final stage is done when status --wait returns.
	guestExec(t, "cloud-init", "status", "--wait")

	t.Run("hostname", func(t *testing.T) {
		d := d.with(t)
		if got := strings.TrimSpace(guestExec(t, "cat", "/etc/hostname")); got != "web1" {
			t.Fatalf("/etc/hostname = %q", got)
		}
		if v := d.vm("web1"); v.Guest.Hostname != "web1" {
			t.Fatalf("agent hostname = %q", v.Guest.Hostname)
		}
	})
	t.Run("ssh-key", func(t *testing.T) {
		out := guestExec(t, "sh", "-c", "cat /home/*/.ssh/authorized_keys /root/.ssh/authorized_keys 2>/dev/null; true")
		if !strings.Contains(out, strings.Fields(key)[1]) {
			t.Fatalf("the injected key is in no authorized_keys:\n%s", out)
		}
	})
	t.Run("user-cloud-config", func(t *testing.T) {
		if got := guestExec(t, "cat", "/etc/lq-marker"); got != "written-by-user-cloud-config\n" {
			t.Fatalf("write_files: %q", got)
		}
		if got := strings.TrimSpace(guestExec(t, "cat", "/run/lq-runcmd")); got != "runcmd-ran" {
			t.Fatalf("runcmd: %q", got)
		}
	})
	t.Run("agent-facts", func(t *testing.T) {
		d := d.with(t)
		v := d.vm("web1")
		if !strings.Contains(v.Guest.OS.PrettyName, "Debian") || v.Guest.OS.KernelRelease == "" {
			t.Fatalf("os facts: %+v", v.Guest.OS)
		}
		if len(v.Guest.Interfaces) == 0 {
			t.Fatalf("no interfaces reported")
		}
		out := d.mustLQ("vm", "show", "web1")
		if !strings.Contains(out, "Debian") {
			t.Fatalf("vm show lacks the guest OS:\n%s", out)
		}
	})
	t.Run("exec-exit-code", func(t *testing.T) {
		d := d.with(t)
		_, _, code := d.lq("vm", "exec", "web1", "--", "sh", "-c", "exit 7")
		if code != 7 {
			t.Fatalf("exit code %d, want 7", code)
		}
	})
	t.Run("network-config-address", func(t *testing.T) {
		v := d.vm("web1")
		if len(v.NICs) != 1 {
			t.Fatalf("NICs: %+v", v.NICs)
		}
		nic := v.NICs[0]
		// cloud-init wrote a static configuration from network-config (not DHCP).
		cfg := guestExec(t, "sh", "-c", "cat /etc/network/interfaces.d/50-cloud-init")
		if !strings.Contains(cfg, nic.IP) || strings.Contains(cfg, "dhcp") {
			t.Fatalf("cloud-init network config does not set %s statically:\n%s", nic.IP, cfg)
		}
		if out := guestExec(t, "ip", "-4", "-o", "addr", "show"); !strings.Contains(out, nic.IP+"/24") {
			t.Fatalf("guest addresses lack %s:\n%s", nic.IP, out)
		}
		waitFor(t, 60*time.Second, "the agent to report the NIC's address", func() (bool, string) {
			v := d.vm("web1")
			return len(v.NICs[0].GuestIPs) > 0 && strings.HasPrefix(v.NICs[0].GuestIPs[0], nic.IP+"/"), fmt.Sprint(v.NICs[0].GuestIPs)
		})
	})

	t.Run("ssh-through-security-group", func(t *testing.T) {
		d := d.with(t)
		addr := d.vm("web1").NICs[0].IP
		ssh := func() error {
			out, err := inNetns(d.ns, "ssh", "-i", privFile, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
				"-o", "ConnectTimeout=5", "-o", "BatchMode=yes", "debian@"+addr, "hostname")
			if err == nil && strings.TrimSpace(lastLine(out)) != "web1" {
				return fmt.Errorf("ssh ran but hostname said %q", out)
			}
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}
		if err := ssh(); err == nil {
			t.Fatalf("ssh got through a group with no rules")
		}
		out := d.mustLQ("sg", "rule", "add", "ssh", "--in", "--proto", "tcp", "--port", "22", "--from", "10.87.0.0/24")
		if err := ssh(); err != nil {
			t.Fatalf("ssh with port 22 allowed: %v", err)
		}
		d.mustLQ("sg", "rule", "remove", "ssh", strings.TrimSpace(out))
		if err := ssh(); err == nil {
			t.Fatalf("ssh still gets through after the rule was removed")
		}
	})

	t.Run("graceful-shutdown-via-agent", func(t *testing.T) {
		d := d.with(t)
		d.mustLQ("vm", "shutdown", "web1", "--timeout", "120")
		if v := d.vm("web1"); v.State != "stopped" {
			t.Fatalf("after shutdown: %s", v.State)
		}
		evs := d.events("web1")
		if !hasEvent(evs, "vm.shutdown", "via guest-agent") || hasEvent(evs, "vm.shutdown", "forcing") {
			t.Fatalf("shutdown did not go cleanly through the agent: %+v", evs)
		}
	})
	d.mustLQ("vm", "delete", "web1")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
