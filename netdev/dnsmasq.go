package netdev

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	dnsmasqStampFile    = "dnsmasq.applied"   // pid and hashes of what that pid has loaded
	dnsmasqStartLogFile = "dnsmasq.start.log" // dnsmasq's own output before it detaches
	dnsmasqLogMax       = 1 << 20             // rotate dnsmasq.log to .old past this on start
	dnsmasqStopGrace    = 5 * time.Second     // SIGTERM to SIGKILL
	dnsmasqPIDWait      = 2 * time.Second     // for the pid file after dnsmasq detaches
)

// DNSMasq starts and supervises one detached dnsmasq per network. Each dnsmasq runs as a
// daemon of its own session with a pid file in the network's StateDir, like qemu, so lqd
// can restart (or crash) without taking DHCP and DNS down; a restarted lqd adopts a running
// dnsmasq after checking its /proc cmdline names dnsmasq and that network's conf file.
//
// dnsmasq runs in the network namespace of the caller (the bridge's). Wrap can put it
// elsewhere, e.g. []string{"ip", "netns", "exec", "NS"}.
type DNSMasq struct {
	binary string
	log    *slog.Logger

	// Wrap is prepended to the dnsmasq command line. Set it before first use.
	Wrap []string
	// User is the user dnsmasq drops privileges to. "" picks "dnsmasq" if that user exists
	// and can search StateDir and all its parents (it rereads the hosts files there on
	// SIGHUP), and root otherwise. Set it before first use.
	User string

	mu sync.Mutex // serializes Ensure and Stop
}

// NewDNSMasq returns a supervisor for the dnsmasq at binary ("" means "dnsmasq" on PATH).
// A nil log discards messages.
func NewDNSMasq(binary string, log *slog.Logger) *DNSMasq {
	if binary == "" {
		binary = "dnsmasq"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DNSMasq{binary: binary, log: log}
}

// dnsmasqPaths are the files of one network's dnsmasq.
type dnsmasqPaths struct{ conf, hosts, addn, leases, pid, log, stamp, startLog string }

func pathsIn(dir string) dnsmasqPaths {
	j := func(name string) string { return filepath.Join(dir, name) }
	return dnsmasqPaths{
		conf: j(dnsmasqConfFile), hosts: j(dnsmasqHostsFile), addn: j(dnsmasqAddnFile),
		leases: j(dnsmasqLeaseFile), pid: j(dnsmasqPIDFile), log: j(dnsmasqLogFile),
		stamp: j(dnsmasqStampFile), startLog: j(dnsmasqStartLogFile),
	}
}

// stamp records what a dnsmasq process has loaded: the hash of its conf and of its hosts
// files. Without it a pid file says nothing about whether a SIGHUP was lost in an lqd crash.
type stamp struct {
	pid         int
	conf, hosts string
}

// Ensure makes the network's dnsmasq run with config c. The files are written atomically;
// then, if a trusted dnsmasq for this StateDir runs and has loaded the same files, nothing
// happens; if only the hosts changed it gets SIGHUP (it rereads dhcp-hostsfile and
// addn-hosts, keeping its pid and leases); if the conf changed, or a removed host still
// holds a lease (dnsmasq would refuse that address to its next owner until the lease ran
// out), it is restarted, with such leases dropped from the lease file. A dead one is
// started again.
func (d *DNSMasq) Ensure(ctx context.Context, c DNSMasqConfig) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := c.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(c.StateDir, 0o755); err != nil {
		return fmt.Errorf("dnsmasq %s: %w", c.Network, err)
	}
	if c.User == "" {
		var why string
		c.User, why = d.pickUser(c.StateDir)
		if why != "" {
			d.log.Debug("dnsmasq runs as root", "network", c.Network, "reason", why)
		}
	}
	conf, hosts, addn := RenderDNSMasq(c)
	want := stamp{conf: hashOf(conf), hosts: hashOf(hosts, addn)}
	p := pathsIn(c.StateDir)

	pid, err := readPIDFile(p.pid)
	if err != nil {
		d.log.Warn("dnsmasq pid file unreadable", "network", c.Network, "err", err)
	}
	running := trustedDNSMasq(pid, p.conf)
	have := readStamp(p.stamp)
	loaded := running && have.pid == pid
	if loaded && have.conf == want.conf && have.hosts == want.hosts {
		return nil
	}

	for _, f := range []struct {
		path string
		data []byte
	}{{p.conf, conf}, {p.hosts, hosts}, {p.addn, addn}} {
		if old, err := os.ReadFile(f.path); err == nil && bytes.Equal(old, f.data) {
			continue
		}
		if err := writeFileAtomic(f.path, f.data, 0o644); err != nil {
			return fmt.Errorf("dnsmasq %s: %w", c.Network, err)
		}
	}

	stale, err := staleLeases(p.leases, c.Hosts)
	if err != nil {
		return fmt.Errorf("dnsmasq %s: %w", c.Network, err)
	}
	if loaded && have.conf == want.conf && stale == 0 {
		if err := unix.Kill(pid, unix.SIGHUP); err != nil {
			return fmt.Errorf("dnsmasq %s: reload pid %d: %w", c.Network, pid, err)
		}
		want.pid = pid
		if err := writeStamp(p.stamp, want); err != nil {
			return fmt.Errorf("dnsmasq %s: %w", c.Network, err)
		}
		d.log.Info("dnsmasq reloaded hosts", "network", c.Network, "pid", pid, "hosts", len(c.Hosts))
		return nil
	}

	switch {
	case running:
		d.log.Info("dnsmasq restarting", "network", c.Network, "pid", pid,
			"conf_changed", have.conf != want.conf || !loaded, "stale_leases", stale)
		if err := terminate(ctx, pid, dnsmasqStopGrace); err != nil {
			return fmt.Errorf("dnsmasq %s: stop: %w", c.Network, err)
		}
	case have.pid != 0:
		d.log.Warn("dnsmasq is not running; starting it", "network", c.Network, "last_pid", have.pid)
		// A dnsmasq that just died may still hold its sockets for a moment.
		if err := waitExited(ctx, have.pid, time.Second); err != nil {
			d.log.Warn("dnsmasq: old process lingers", "network", c.Network, "err", err)
		}
	}
	if stale > 0 {
		if _, err := pruneLeases(p.leases, c.Hosts); err != nil {
			return fmt.Errorf("dnsmasq %s: %w", c.Network, err)
		}
	}
	newPID, err := d.start(ctx, c, p)
	if err != nil {
		return err
	}
	want.pid = newPID
	if err := writeStamp(p.stamp, want); err != nil {
		return fmt.Errorf("dnsmasq %s: %w", c.Network, err)
	}
	d.log.Info("dnsmasq started", "network", c.Network, "pid", newPID, "user", c.User, "hosts", len(c.Hosts))
	return nil
}

// Stop ends the dnsmasq of the network whose StateDir is stateDir, if one runs, and waits
// for it to exit. The conf, hosts and lease files stay; remove the directory to forget the
// network.
func (d *DNSMasq) Stop(ctx context.Context, stateDir string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := pathsIn(stateDir)
	pid, err := readPIDFile(p.pid)
	if err != nil {
		return fmt.Errorf("dnsmasq %s: stop: %w", stateDir, err)
	}
	if trustedDNSMasq(pid, p.conf) {
		if err := terminate(ctx, pid, dnsmasqStopGrace); err != nil {
			return fmt.Errorf("dnsmasq %s: stop: %w", stateDir, err)
		}
		d.log.Info("dnsmasq stopped", "dir", stateDir, "pid", pid)
	}
	for _, f := range []string{p.pid, p.stamp} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("dnsmasq %s: stop: %w", stateDir, err)
		}
	}
	return nil
}

// Supervise calls Ensure for every config that configs returns, at once and then every
// interval, until ctx ends: a dnsmasq that died is started again and drift is repaired.
// Errors are logged, not returned.
func (d *DNSMasq) Supervise(ctx context.Context, every time.Duration, configs func() []DNSMasqConfig) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, c := range configs() {
			if err := d.Ensure(ctx, c); err != nil && ctx.Err() == nil {
				d.log.Error("dnsmasq supervise", "network", c.Network, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// start runs dnsmasq, which detaches once it is serving (or exits non-zero with a message
// if it cannot bind, say), and returns the daemon's pid from its pid file.
func (d *DNSMasq) start(ctx context.Context, c DNSMasqConfig, p dnsmasqPaths) (int, error) {
	if fi, err := os.Stat(p.log); err == nil && fi.Size() > dnsmasqLogMax {
		if err := os.Rename(p.log, p.log+".old"); err != nil {
			return 0, fmt.Errorf("dnsmasq %s: rotate log: %w", c.Network, err)
		}
	}
	out, err := os.OpenFile(p.startLog, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, fmt.Errorf("dnsmasq %s: %w", c.Network, err)
	}
	defer out.Close()
	if err := os.Remove(p.pid); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("dnsmasq %s: %w", c.Network, err)
	}
	argv := append(slices.Clone(d.Wrap), d.binary, "--conf-file="+p.conf)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// A file, not a pipe: a daemon that kept the pipe open would make Run wait for it.
	cmd.Stdout, cmd.Stderr = out, out
	// A session of its own: signals for lqd's process group never reach dnsmasq.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(p.startLog)
		return 0, fmt.Errorf("dnsmasq %s: start %q: %w: %s", c.Network, strings.Join(argv, " "), err, strings.TrimSpace(string(msg)))
	}
	deadline := time.Now().Add(dnsmasqPIDWait)
	for {
		pid, err := readPIDFile(p.pid)
		if err == nil && trustedDNSMasq(pid, p.conf) {
			return pid, nil
		}
		if time.Now().After(deadline) {
			msg, _ := os.ReadFile(p.startLog)
			return 0, fmt.Errorf("dnsmasq %s: started but no live dnsmasq in %s (pid %d, %v): %s",
				c.Network, p.pid, pid, err, strings.TrimSpace(string(msg)))
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("dnsmasq %s: wait for pid file: %w", c.Network, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func hashOf(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func readStamp(path string) stamp {
	var s stamp
	raw, err := os.ReadFile(path)
	if err != nil {
		return s
	}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "pid":
			s.pid, _ = strconv.Atoi(v)
		case "conf":
			s.conf = v
		case "hosts":
			s.hosts = v
		}
	}
	return s
}

func writeStamp(path string, s stamp) error {
	return writeFileAtomic(path, fmt.Appendf(nil, "pid %d\nconf %s\nhosts %s\n", s.pid, s.conf, s.hosts), 0o644)
}
