package vmm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// launch runs qemu with -daemonize and returns the daemon's pid once qemu has set up its
// sockets. qemu's own messages before it detaches go to <run-dir>/qemu.log, which the
// error quotes.
func launch(ctx context.Context, argv []string, runDir string) (int, error) {
	logPath := filepath.Join(runDir, "qemu.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("vmm: launch: %w", err)
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A session of its own: signals for lqd's process group never reach the guest.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(logPath)
		return 0, fmt.Errorf("vmm: qemu failed to start: %w: %s", err, strings.TrimSpace(string(msg)))
	}
	pid, err := readPIDFile(filepath.Join(runDir, PIDFile))
	if err != nil {
		return 0, fmt.Errorf("vmm: launch: %w", err)
	}
	return pid, nil
}

func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("pidfile %s: bad pid %q", path, b)
	}
	return pid, nil
}

// trusted reports whether pid is a live qemu process started for the VM with this uuid.
// A pid from a file is only a hint: after a reboot or a long downtime the number may belong
// to anything, so the process's own command line must name qemu and the uuid.
func trusted(pid int, uuid string) bool {
	if pid <= 1 {
		return false
	}
	if zombie(pid) {
		return false
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(raw) == 0 {
		return false
	}
	args := bytes.Split(bytes.TrimRight(raw, "\x00"), []byte{0})
	if !strings.Contains(filepath.Base(string(args[0])), "qemu") {
		return false
	}
	for i, a := range args {
		if string(a) == "-uuid" && i+1 < len(args) && string(args[i+1]) == uuid {
			return true
		}
	}
	return false
}

// zombie reports whether pid has exited but not been reaped (state Z or X).
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	return b[i+2] == 'Z' || b[i+2] == 'X'
}

// waitExit waits until pid has exited, or ctx ends. It works for processes that are not
// our children (qemu daemonizes) through a pidfd.
func waitExit(ctx context.Context, pid int) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return pollExit(ctx, pid)
	}
	defer unix.Close(fd)
	for {
		if zombie(pid) {
			return nil
		}
		timeout := 200
		if dl, ok := ctx.Deadline(); ok {
			if ms := time.Until(dl).Milliseconds(); ms < int64(timeout) {
				timeout = int(max(ms, 0))
			}
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, timeout)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("vmm: wait for pid %d: %w", pid, err)
		}
		if n > 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("vmm: pid %d still running: %w", pid, err)
		}
	}
}

func pollExit(ctx context.Context, pid int) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if unix.Kill(pid, 0) != nil || zombie(pid) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vmm: pid %d still running: %w", pid, ctx.Err())
		case <-t.C:
		}
	}
}

// kill sends SIGKILL to a trusted qemu and waits for it to go.
func kill(ctx context.Context, pid int, uuid string) error {
	if !trusted(pid, uuid) {
		return nil
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("vmm: kill qemu %d: %w", pid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return waitExit(ctx, pid)
}
