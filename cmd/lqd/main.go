// Command lqd is limiquantix's host supervisor: it runs qemu guests over QMP, keeps their
// state in SQLite, and serves the REST API. Guests outlive it: stopping, restarting or
// upgrading lqd never touches a running VM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/limiquantix/limiquantix/api"
	"github.com/limiquantix/limiquantix/storage"
	"github.com/limiquantix/limiquantix/store"
	"github.com/limiquantix/limiquantix/vmm"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type config struct {
	dataDir, runDir, listen, accel, qemu, logLevel string
	firewall, defaultNetwork, dnsDomain            string
	reconcileEvery                                 time.Duration
	backupDirs                                     []string // default <data-dir>/backups
	consoleOrigins                                 []string // extra origins for console WebSockets
}

// env returns $LQ_<NAME> or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv("LQ_" + name); ok && v != "" {
		return v
	}
	return def
}

// envDuration returns $LQ_<NAME> parsed as a duration, or def.
func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(env(name, "")); err == nil && d > 0 {
		return d
	}
	return def
}

// splitList splits a comma-separated flag value, dropping empty elements.
func splitList(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("lqd", flag.ContinueOnError)
	fs.StringVar(&c.dataDir, "data-dir", env("DATA_DIR", "/var/lib/limiquantix"), "persistent state: database, pools, admin token (LQ_DATA_DIR)")
	fs.StringVar(&c.runDir, "run-dir", env("RUN_DIR", "/run/limiquantix"), "volatile state: qemu sockets and pidfiles (LQ_RUN_DIR)")
	fs.StringVar(&c.listen, "listen", env("LISTEN", "127.0.0.1:7480"), "API address (LQ_LISTEN)")
	fs.StringVar(&c.accel, "accel", env("ACCEL", "auto"), "accelerator: auto, kvm or tcg (LQ_ACCEL)")
	fs.StringVar(&c.qemu, "qemu", env("QEMU", "qemu-system-x86_64"), "qemu binary (LQ_QEMU)")
	fs.StringVar(&c.logLevel, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (LQ_LOG_LEVEL)")
	fs.StringVar(&c.firewall, "firewall", env("FIREWALL", "nft"), "security-group back end: nft or iptables (LQ_FIREWALL)")
	fs.StringVar(&c.defaultNetwork, "default-network", env("DEFAULT_NETWORK", "10.87.0.0/24"), "subnet of the NAT network \"default\" made on first start; none for no default network (LQ_DEFAULT_NETWORK)")
	fs.DurationVar(&c.reconcileEvery, "reconcile-interval", envDuration("RECONCILE_INTERVAL", 30*time.Second), "how often bridges, dnsmasq, taps and the firewall are checked against the database and repaired (LQ_RECONCILE_INTERVAL)")
	fs.StringVar(&c.dnsDomain, "dns-domain", env("DNS_DOMAIN", "lq"), "DNS domain under which VM names resolve on managed networks (LQ_DNS_DOMAIN)")
	fs.Func("console-origin", "an origin (host pattern like *.example.com, or scheme://host) whose pages may open console WebSockets besides lqd's own; repeatable or comma-separated (LQ_CONSOLE_ORIGIN)", func(v string) error {
		c.consoleOrigins = append(c.consoleOrigins, splitList(v)...)
		return nil
	})
	fs.Func("backup-dir", "a directory backups may be written to and restored from; repeatable or comma-separated (LQ_BACKUP_DIR; default <data-dir>/backups)", func(v string) error {
		return c.addBackupDirs(v)
	})
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if len(c.consoleOrigins) == 0 {
		c.consoleOrigins = splitList(env("CONSOLE_ORIGIN", ""))
	}
	if len(c.backupDirs) == 0 {
		if err := c.addBackupDirs(env("BACKUP_DIR", filepath.Join(c.dataDir, "backups"))); err != nil {
			return c, err
		}
	}
	return c, nil
}

// addBackupDirs adds comma-separated absolute directories to the allowed backup dirs.
func (c *config) addBackupDirs(v string) error {
	for _, d := range strings.Split(v, ",") {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		if !filepath.IsAbs(d) {
			return fmt.Errorf("--backup-dir %q: want an absolute path", d)
		}
		c.backupDirs = append(c.backupDirs, filepath.Clean(d))
	}
	return nil
}

func main() {
	c, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lqd:", err)
		os.Exit(2)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "lqd: --log-level:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, log); err != nil {
		log.Error("lqd failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, log *slog.Logger) error {
	for _, d := range []string{c.dataDir, c.runDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	unlock, err := lockRunDir(c.runDir)
	if err != nil {
		return err
	}
	defer unlock()

	db, err := store.Open(ctx, filepath.Join(c.dataDir, "lq.db"))
	if err != nil {
		return err
	}
	defer db.Close()

	host, err := vmm.ProbeHost(ctx, c.qemu, c.accel)
	if err != nil {
		return err
	}
	if host.Accel == vmm.AccelTCG && c.accel == vmm.AccelAuto {
		log.Warn("using TCG software emulation", "why", host.AccelReason)
	}
	log.Info("host", "qemu", host.QEMU, "qemu_version", host.QEMUVersion, "accel", host.Accel, "cpus", host.CPUs, "memory_mib", host.MemoryBytes>>20)

	runner := storage.ExecRunner{}
	pool, err := storage.OpenDirPool("default", filepath.Join(c.dataDir, "pools", "default"), runner)
	if err != nil {
		return err
	}
	lib := storage.NewLibrary(db, pool, runner)
	// Uploads and imports a crash interrupted leave files no record names: remove them.
	if removed, err := lib.GC(ctx); err != nil {
		log.Warn("image library gc", "err", err)
	} else if len(removed) > 0 {
		log.Info("removed unfinished uploads", "files", removed)
	}

	vols, err := storage.OpenVolumes(ctx, db, runner, pool)
	if err != nil {
		return err
	}
	if removed, err := vols.GC(ctx); err != nil {
		log.Warn("volume gc", "err", err)
	} else if len(removed) > 0 {
		log.Info("removed unfinished volumes", "files", removed)
	}
	st := vmm.Storage{Tool: storage.Tool{R: runner}, Images: lib, BackupDirs: c.backupDirs}
	nets, err := startNetworking(ctx, c, db, log)
	if err != nil {
		return err
	}
	mgr := vmm.New(vmm.Config{DataDir: c.dataDir, RunDir: c.runDir, Host: host, DB: db, Disks: pool, Storage: st, Nets: vmNets{nets}, Log: log})
	if removed, err := mgr.CleanBackupDirs(); err != nil {
		log.Warn("backup dirs", "err", err)
	} else if len(removed) > 0 {
		log.Info("removed unfinished backups", "files", removed)
	}
	defer mgr.Close()
	if err := mgr.Reconcile(ctx); err != nil {
		return err
	}
	// Now that vmm knows which VMs run, stale taps can go; then keep repairing drift.
	if err := nets.Reconcile(ctx, mgr.ActiveTaps); err != nil {
		log.Warn("network reconcile", "err", err)
	}
	go reconcileNetworks(ctx, c.reconcileEvery, nets, mgr, log)

	made, err := api.EnsureAdminToken(ctx, db, filepath.Join(c.dataDir, "admin.token"))
	if err != nil {
		return err
	}
	if made {
		log.Info("wrote a new admin token", "path", filepath.Join(c.dataDir, "admin.token"))
	}

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	if err := writeFileAtomic(filepath.Join(c.dataDir, "api.url"), url+"\n", 0o644); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           api.NewServer(api.Config{VMs: mgr, Images: lib, Pool: pool, Volumes: vols, Nets: nets, ConsoleOrigins: c.consoleOrigins, DB: db, Log: log, Version: version}).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("lqd ready", "url", url, "data_dir", c.dataDir, "run_dir", c.runDir, "version", version)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down; guests keep running")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// lockRunDir makes sure one lqd at a time manages a run dir.
func lockRunDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "lqd.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another lqd already manages %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

func writeFileAtomic(path, content string, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
