package integration

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/limiquantix/limiquantix/integration/guest"
)

// authorizedKey formats an ed25519 public key the way ~/.ssh/authorized_keys holds it.
func authorizedKey(pub ed25519.PublicKey, comment string) string {
	var blob []byte
	for _, part := range [][]byte{[]byte("ssh-ed25519"), pub} {
		blob = binary.BigEndian.AppendUint32(blob, uint32(len(part)))
		blob = append(blob, part...)
	}
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob) + " " + comment
}

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

	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := authorizedKey(pub, "lq-test@host")
	dir := filepath.Dir(data)
	keyFile := filepath.Join(dir, "id_ed25519.pub")
	userData := filepath.Join(dir, "cloud-config.yaml")
	os.WriteFile(keyFile, []byte(key+"\n"), 0o600)
	os.WriteFile(userData, []byte(`#cloud-config
write_files:
  - path: /etc/lq-marker
    content: "written-by-user-cloud-config\n"
runcmd:
  - [sh, -c, "echo runcmd-ran > /run/lq-runcmd"]
`), 0o600)

	d.mustLQ("vm", "create", "web1", "--image", "debian-12", "--cpus", "1", "--memory", "1024", "--disk", "4",
		"--ssh-key", keyFile, "--user-data", userData, "--start")
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
	exec := func(t *testing.T, args ...string) string {
		t.Helper()
		return d.with(t).mustLQ(append([]string{"vm", "exec", "web1", "--timeout", "120", "--"}, args...)...)
	}
	// cloud-init's final stage is done when status --wait returns.
	exec(t, "cloud-init", "status", "--wait")

	t.Run("hostname", func(t *testing.T) {
		d := d.with(t)
		if got := strings.TrimSpace(exec(t, "cat", "/etc/hostname")); got != "web1" {
			t.Fatalf("/etc/hostname = %q", got)
		}
		if v := d.vm("web1"); v.Guest.Hostname != "web1" {
			t.Fatalf("agent hostname = %q", v.Guest.Hostname)
		}
	})
	t.Run("ssh-key", func(t *testing.T) {
		out := exec(t, "sh", "-c", "cat /home/*/.ssh/authorized_keys /root/.ssh/authorized_keys 2>/dev/null; true")
		if !strings.Contains(out, strings.Fields(key)[1]) {
			t.Fatalf("the injected key is in no authorized_keys:\n%s", out)
		}
	})
	t.Run("user-cloud-config", func(t *testing.T) {
		if got := exec(t, "cat", "/etc/lq-marker"); got != "written-by-user-cloud-config\n" {
			t.Fatalf("write_files: %q", got)
		}
		if got := strings.TrimSpace(exec(t, "cat", "/run/lq-runcmd")); got != "runcmd-ran" {
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
