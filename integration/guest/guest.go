// Package guest locates (and builds on demand) the guest images used by the
// limiquantix integration tests.
//
// Images are built by the scripts in ../images (build-tiny.sh,
// build-debian.sh) into CacheDir(). The scripts are cached by their own
// sha256, so calling Tiny/Debian when the images are current costs one short
// bash run. Builds are serialised across processes (go test runs packages in
// parallel) with flock(2) on a per-image lock file in the cache directory.
// Building needs root (debootstrap, chroot) and the host's apt sources.
package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// TinyImage is a busybox initramfs guest booted with -kernel/-initrd.
// Boot with -append "console=ttyS0 [hostname=NAME]"; it prints
// "LQ-TINY-BOOTED" on the serial console when ready and runs a root shell there.
type TinyImage struct {
	Kernel string // vmlinuz (Debian linux-image-cloud-amd64)
	Initrd string // initrd.gz (whole userspace; no disk needed)
}

// DebianImage is a Debian 12 cloud image for direct kernel boot.
type DebianImage struct {
	Disk    string // qcow2 base image; use as a backing file only, never write to it
	Kernel  string // vmlinuz for -kernel
	Initrd  string // initrd for -initrd
	Cmdline string // kernel command line for -append
}

// CacheDir is where images are built: $LQ_TEST_CACHE, else
// /var/cache/limiquantix-test.
func CacheDir() string {
	if d := os.Getenv("LQ_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/limiquantix-test"
}

// Tiny returns the tiny guest, building it first if needed.
func Tiny(ctx context.Context) (TinyImage, error) {
	dir := CacheDir()
	if err := build(ctx, "build-tiny.sh", "tiny"); err != nil {
		return TinyImage{}, err
	}
	img := TinyImage{
		Kernel: filepath.Join(dir, "vmlinuz"),
		Initrd: filepath.Join(dir, "initrd.gz"),
	}
	return img, exist(img.Kernel, img.Initrd)
}

// Debian returns the Debian 12 guest, building it first if needed (several
// minutes on first use).
func Debian(ctx context.Context) (DebianImage, error) {
	dir := CacheDir()
	if err := build(ctx, "build-debian.sh", "debian"); err != nil {
		return DebianImage{}, err
	}
	img := DebianImage{
		Disk:   filepath.Join(dir, "debian-12.qcow2"),
		Kernel: filepath.Join(dir, "debian-vmlinuz"),
		Initrd: filepath.Join(dir, "debian-initrd.img"),
	}
	if err := exist(img.Disk, img.Kernel, img.Initrd); err != nil {
		return DebianImage{}, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "debian-cmdline"))
	if err != nil {
		return DebianImage{}, err
	}
	img.Cmdline = strings.TrimSpace(string(b))
	return img, nil
}

// scriptDir is the images directory next to this package's source.
func scriptDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("guest: cannot locate package source")
	}
	return filepath.Join(filepath.Dir(file), "..", "images"), nil
}

// build runs `bash images/SCRIPT CacheDir()` holding an exclusive flock on
// CacheDir()/.NAME.lock, streaming the script's output to stderr.
func build(ctx context.Context, script, name string) error {
	sdir, err := scriptDir()
	if err != nil {
		return err
	}
	dir := CacheDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("guest: cache dir: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(dir, "."+name+".lock"))
	if err != nil {
		return err
	}
	defer unlock()

	cmd := exec.CommandContext(ctx, "bash", filepath.Join(sdir, script), dir)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	// On cancellation kill the whole process group (debootstrap, tar, ...).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("guest: %s %s: %w", script, dir, err)
	}
	return nil
}

// lock takes an exclusive flock on path, polling so ctx can cancel the wait.
func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("guest: lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("guest: flock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func exist(paths ...string) error {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("guest: image missing after build: %w", err)
		}
	}
	return nil
}
