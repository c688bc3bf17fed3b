package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/limiquantix/limiquantix/api"
)

// bin holds the lqd and lq binaries built once for the whole run.
var bin struct{ lqd, lq string }

func TestMain(m *testing.M) {
	flag.Parse()
	if why := missingPrereq(); why != "" {
		if os.Getenv("LQ_REQUIRE_INTEGRATION") == "1" {
			fmt.Fprintln(os.Stderr, "integration: prerequisite missing:", why)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "integration: skipping:", why)
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "lqbin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir+"/", "../cmd/lqd", "../cmd/lq")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: build:", err)
		os.Exit(1)
	}
	bin.lqd, bin.lq = filepath.Join(dir, "lqd"), filepath.Join(dir, "lq")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func missingPrereq() string {
	if testing.Short() {
		return "-short"
	}
	if os.Geteuid() != 0 {
		return "not root"
	}
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " not found"
		}
	}
	return ""
}

// daemon is one lqd under test, with its own data and run dirs.
type daemon struct {
	t       testing.TB
	dataDir string
	runDir  string
	url     string
	token   string
	cmd     *exec.Cmd
	logPath string
	client  *api.Client
	ns      string // the network namespace lqd runs in
}

// newDirs makes short temp dirs (unix socket paths are limited to 108 bytes).
func newDirs(t testing.TB) (data, run string) {
	t.Helper()
	root, err := os.MkdirTemp("", "lqi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killQEMUUnder(root)
		os.RemoveAll(root)
	})
	// Registered after the dir cleanup, so it runs before it: qemu and dnsmasq go first.
	newNetns(t, nsName(root))
	t.Cleanup(func() { killDNSMasqUnder(root) })
	return filepath.Join(root, "data"), filepath.Join(root, "run")
}

// startLQD starts lqd on dataDir and runDir and waits until it serves.
func startLQD(t testing.TB, dataDir, runDir string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, dataDir: dataDir, runDir: runDir, logPath: filepath.Join(filepath.Dir(dataDir), "lqd.log")}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dataDir, "api.url"))
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	d.ns = nsName(filepath.Dir(dataDir))
	d.cmd = exec.Command("ip", "netns", "exec", d.ns, bin.lqd, "--data-dir", dataDir, "--run-dir", runDir, "--listen", "127.0.0.1:0", "--accel", "tcg", "--log-level", "debug")
	d.cmd.Args = append(d.cmd.Args, extra...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := d.cmd
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	waitFor(t, 30*time.Second, "lqd to serve", func() (bool, string) {
		b, err := os.ReadFile(filepath.Join(dataDir, "api.url"))
		if err != nil {
			return false, err.Error()
		}
		d.url = strings.TrimSpace(string(b))
		return true, ""
	})
	tok, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	d.token = strings.TrimSpace(string(tok))
	d.client = api.NewClient(d.url, d.token)
	d.client.HTTPClient = httpClientIn(d.ns)
	if err := d.client.Health(context.Background()); err != nil {
		t.Fatalf("healthz: %v\n%s", err, d.log())
	}
	return d
}

func (d *daemon) log() string {
	b, _ := os.ReadFile(d.logPath)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// with returns the daemon bound to a subtest's t, so failures stop the right test.
func (d *daemon) with(t testing.TB) *daemon {
	c := *d
	c.t = t
	return &c
}

// kill9 kills lqd as a crash would.
func (d *daemon) kill9() {
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.cmd.Wait()
}

// lq runs the CLI as a user on the host would: it finds the API URL and token in the
// data dir by itself.
func (d *daemon) lq(args ...string) (stdout, stderr string, code int) {
	d.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", d.ns, bin.lq}, args...)...)
	cmd.Env = append(os.Environ(), "LQ_DATA_DIR="+d.dataDir)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			d.t.Fatalf("lq %v: %v", args, err)
		}
	}
	return o.String(), e.String(), code
}

// mustLQ runs lq and fails the test unless it exits 0.
func (d *daemon) mustLQ(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.lq(args...)
	if code != 0 {
		d.t.Fatalf("lq %s: exit %d\nstdout: %s\nstderr: %s\nlqd log:\n%s", strings.Join(args, " "), code, out, errOut, d.log())
	}
	return out
}

// vm reads one VM through the CLI's JSON output.
func (d *daemon) vm(name string) api.VM {
	d.t.Helper()
	var v api.VM
	if err := json.Unmarshal([]byte(d.mustLQ("vm", "show", name, "-o", "json")), &v); err != nil {
		d.t.Fatalf("vm show %s: %v", name, err)
	}
	return v
}

func (d *daemon) waitState(name, state string, timeout time.Duration) api.VM {
	d.t.Helper()
	var v api.VM
	waitFor(d.t, timeout, name+" to be "+state, func() (bool, string) {
		var err error
		v, err = d.client.VM(context.Background(), name)
		if err != nil {
			return false, err.Error()
		}
		return v.State == state, "state " + v.State + " " + v.LastError
	})
	return v
}

// consoleLog returns the VM's serial output so far.
func (d *daemon) consoleLog(name string) string {
	b, err := d.client.ConsoleLog(context.Background(), name, 0)
	if err != nil {
		d.t.Fatalf("console-log %s: %v", name, err)
	}
	return string(b)
}

// waitConsole waits until marker has appeared n times in the VM's serial output.
func (d *daemon) waitConsole(name, marker string, n int, timeout time.Duration) {
	d.t.Helper()
	waitFor(d.t, timeout, fmt.Sprintf("%q x%d in %s's console", marker, n, name), func() (bool, string) {
		log := d.consoleLog(name)
		got := strings.Count(log, marker)
		tail := log
		if len(tail) > 600 {
			tail = tail[len(tail)-600:]
		}
		return got >= n, fmt.Sprintf("seen %d times; console tail:\n%s", got, tail)
	})
}

func (d *daemon) events(vm string) []api.Event {
	d.t.Helper()
	all, err := d.client.Events(context.Background(), 0, 1000)
	if err != nil {
		d.t.Fatal(err)
	}
	var out []api.Event
	for _, e := range all {
		if e.VM == vm {
			out = append(out, e)
		}
	}
	return out
}

func hasEvent(evs []api.Event, typ, msgPart string) bool {
	for _, e := range evs {
		if e.Type == typ && strings.Contains(e.Message, msgPart) {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// serial is a client of a VM's serial console through lqd's WebSocket (qemu's serial
// socket takes one client, and lqd's console hub is it). It reads all the time.
type serial struct {
	conn *websocket.Conn
	mu   sync.Mutex
	buf  strings.Builder
	mark int // expect looks for output after this offset
}

func dialSerial(t testing.TB, d *daemon, v api.VM) *serial {
	t.Helper()
	ctx := context.Background()
	tk, err := d.client.ConsoleTicket(ctx, v.Name)
	if err != nil {
		t.Fatalf("console ticket %s: %v", v.Name, err)
	}
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(d.url, "http")+tk.SerialURL, &websocket.DialOptions{HTTPClient: d.client.HTTPClient})
	if err != nil {
		t.Fatalf("serial %s: %v", v.Name, err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { c.CloseNow() })
	s := &serial{conn: c}
	go func() {
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.buf.Write(b)
			s.mu.Unlock()
		}
	}()
	return s
}

// waitShell retries a computed echo until the guest's shell answers: keys typed while the
// kernel still boots, before the shell reads the console, are lost or mangled.
func (s *serial) waitShell(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for i := 1; ; i++ {
		want := fmt.Sprintf("shell-ready-%d", 1000+i)
		if _, ok := s.expect(fmt.Sprintf("echo shell-ready-$((1000+%d))", i), want, 3*time.Second); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest's shell did not answer within %s", timeout)
		}
	}
}

// send types a line into the console.
func (s *serial) send(line string) {
	s.conn.Write(context.Background(), websocket.MessageBinary, []byte(line+"\n"))
}

// expect types a shell command (unless cmd is empty) and waits up to timeout for want to
// appear in the output that follows the last successful expect.
func (s *serial) expect(cmd, want string, timeout time.Duration) (string, bool) {
	if cmd != "" {
		s.send(cmd)
	}
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		out := s.buf.String()[s.mark:]
		if i := strings.Index(out, want); i >= 0 {
			s.mark += i + len(want)
			s.mu.Unlock()
			return out, true
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			return out, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// qemuPIDs returns the pids of qemu processes whose command line mentions s.
func qemuPIDs(s string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(raw) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if strings.Contains(filepath.Base(args[0]), "qemu-system") && strings.Contains(string(raw), s) {
			out = append(out, pid)
		}
	}
	return out
}

// killDNSMasqUnder kills the dnsmasq processes whose config lives under root.
func killDNSMasqUnder(root string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(raw), "dnsmasq") && strings.Contains(string(raw), root) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// killQEMUUnder kills the qemu processes this test started: those whose sockets live
// under root, a temp dir only this test uses.
func killQEMUUnder(root string) {
	for _, pid := range qemuPIDs(root) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// treeFiles lists the files under dir (relative path → size), for "nothing changed" checks.
func treeFiles(t testing.TB, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = info.Size()
		return nil
	})
	return out
}
