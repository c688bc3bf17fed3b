package netdev

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// readPIDFile returns the pid in a pid file, 0 if there is no file.
func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("pid file %s: bad pid %q", path, b)
	}
	return pid, nil
}

// trustedDNSMasq reports whether pid is a live dnsmasq started with --conf-file=conf. A pid
// from a file is only a hint: after a reboot the number may belong to anything.
func trustedDNSMasq(pid int, conf string) bool {
	if pid <= 1 || zombie(pid) {
		return false
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(raw) == 0 {
		return false
	}
	args := bytes.Split(bytes.TrimRight(raw, "\x00"), []byte{0})
	if filepath.Base(string(args[0])) != "dnsmasq" {
		return false
	}
	for _, a := range args[1:] {
		if string(a) == "--conf-file="+conf {
			return true
		}
	}
	return false
}

// zombie reports whether pid has exited but not been reaped (state Z in /proc/PID/stat).
func zombie(pid int) bool {
	state, ok := procState(pid)
	return ok && state == 'Z'
}

// exited reports whether pid has released everything it held: no such process, or a
// zombie. A process whose /proc cmdline went empty may still be closing its sockets, so
// trustedDNSMasq turning false is not enough before a restart binds the same address.
func exited(pid int) bool {
	state, ok := procState(pid)
	return !ok || state == 'Z' || state == 'X'
}

// procState returns the state letter from /proc/PID/stat.
func procState(pid int) (byte, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The state follows the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, false
	}
	return b[i+2], true
}

// waitExited waits up to limit for pid to exit (see exited).
func waitExited(ctx context.Context, pid int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for !exited(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d has not exited after %v", pid, limit)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for pid %d to exit: %w", pid, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// terminate sends SIGTERM to pid, which the caller has just found to be trusted, and
// waits until it has exited, escalating to SIGKILL after grace.
func terminate(ctx context.Context, pid int, grace time.Duration) error {
	if err := unix.Kill(pid, unix.SIGTERM); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	if waitExited(ctx, pid, grace) == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("wait for %d to exit: %w", pid, ctx.Err())
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill -9 %d: %w", pid, err)
	}
	return waitExited(ctx, pid, grace)
}

// writeFileAtomic replaces path with data via a temporary file and a rename, so a reader
// (dnsmasq rereading on SIGHUP) sees the old or the new file, never half of one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
