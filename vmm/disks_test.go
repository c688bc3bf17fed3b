package vmm

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goqmp "github.com/digitalocean/go-qemu/qmp"
	"github.com/limiquantix/limiquantix/qmp"
)

// fakeMon is a scripted QMP monitor: it records every command (name and JSON arguments,
// one line each) and answers from per-command queues of replies (the last one repeats;
// no queue: success with an empty reply). A reply's then runs after the command, before
// its answer, e.g. to emit an event.
type fakeMon struct {
	log     []string
	replies map[string][]fakeReply
	events  chan goqmp.Event
}

type fakeReply struct {
	out  any
	err  error
	then func(f *fakeMon)
}

func newFakeMon(replies map[string][]fakeReply) *fakeMon {
	return &fakeMon{replies: replies, events: make(chan goqmp.Event, 16)}
}

func (f *fakeMon) Execute(_ context.Context, cmd string, args, out any) error {
	line := cmd
	if args != nil {
		b, _ := json.Marshal(args)
		line += " " + string(b)
	}
	f.log = append(f.log, line)
	q := f.replies[cmd]
	if len(q) == 0 {
		return nil
	}
	r := q[0]
	if len(q) > 1 {
		f.replies[cmd] = q[1:]
	}
	if r.then != nil {
		r.then(f)
	}
	if r.out != nil && out != nil {
		b, _ := json.Marshal(r.out)
		json.Unmarshal(b, out)
	}
	return r.err
}

func (f *fakeMon) Subscribe(int) (<-chan goqmp.Event, func()) { return f.events, func() {} }

func (f *fakeMon) transcript() string { return strings.Join(f.log, "\n") }

func deleted(dev string) func(*fakeMon) {
	return func(f *fakeMon) {
		// qemu first reports the virtio backend (no "device"), then the device itself.
		f.events <- goqmp.Event{Event: "DEVICE_DELETED", Data: map[string]any{"path": "/machine/peripheral/" + dev + "/virtio-backend"}}
		f.events <- goqmp.Event{Event: "DEVICE_DELETED", Data: map[string]any{"device": dev, "path": "/machine/peripheral/" + dev}}
	}
}

var vol = DiskAttachment{Volume: "data1", Path: "/p/volumes/data1.qcow2", Port: 5}

func TestPlugDisk(t *testing.T) {
	const (
		add    = `blockdev-add {"discard":"unmap","driver":"qcow2","file":{"aio":"threads","driver":"file","filename":"/p/volumes/data1.qcow2"},"node-name":"disk-p5"}`
		device = `device_add {"bus":"rp5","drive":"disk-p5","driver":"virtio-blk-pci","id":"vdisk-p5","serial":"data1"}`
		del    = `blockdev-del {"node-name":"disk-p5"}`
	)
	lockErr := &qmp.Error{Command: "blockdev-add", Class: "GenericError", Desc: `Failed to get "write" lock`}
	tests := []struct {
		name    string
		replies map[string][]fakeReply
		want    string
		wantErr error
	}{
		{"plugged", nil, add + "\n" + device, nil},
		{"device_add fails: the node goes again", map[string][]fakeReply{"device_add": {{err: &qmp.Error{Class: "GenericError", Desc: "Bus 'rp5' is full"}}}},
			add + "\n" + device + "\n" + del, errAny},
		{"volume locked by another qemu", map[string][]fakeReply{"blockdev-add": {{err: lockErr}}}, add, ErrInUse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeMon(tt.replies)
			err := plugDisk(context.Background(), f, vol)
			checkErr(t, err, tt.wantErr)
			if got := f.transcript(); got != tt.want {
				t.Errorf("transcript:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestUnplugDisk(t *testing.T) {
	const (
		devDel = `device_del {"id":"vdisk-p5"}`
		del    = `blockdev-del {"node-name":"disk-p5"}`
	)
	tests := []struct {
		name    string
		replies map[string][]fakeReply
		want    string
		wantErr error
	}{
		{"the guest releases it", map[string][]fakeReply{"device_del": {{then: deleted("vdisk-p5")}}}, devDel + "\n" + del, nil},
		{"already gone (a late unplug): only the node goes", map[string][]fakeReply{"device_del": {{err: &qmp.Error{Class: "DeviceNotFound", Desc: "Device 'vdisk-p5' not found"}}}},
			devDel + "\n" + del, nil},
		{"an unplug already pending is waited for", map[string][]fakeReply{"device_del": {{err: &qmp.Error{Class: "GenericError", Desc: "Hot-unplug already in progress"}, then: deleted("vdisk-p5")}}},
			devDel + "\n" + del, nil},
		{"the guest never releases it: timeout, node kept", nil, devDel, ErrTimeout},
		{"node already gone", map[string][]fakeReply{
			"device_del":   {{then: deleted("vdisk-p5")}},
			"blockdev-del": {{err: &qmp.Error{Class: "GenericError", Desc: "Failed to find node with node-name='disk-p5'"}}},
		}, devDel + "\n" + del, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeMon(tt.replies)
			err := unplugDisk(context.Background(), f, vol, 200*time.Millisecond)
			checkErr(t, err, tt.wantErr)
			if got := f.transcript(); got != tt.want {
				t.Errorf("transcript:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// errAny stands for "some error" in tables.
var errAny = errors.New("any error")

func checkErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("err = %v, want nil", err)
	case want == errAny && err == nil:
		t.Fatal("err = nil, want an error")
	case want != nil && want != errAny && !errors.Is(err, want):
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func TestFreePortAndCheckPorts(t *testing.T) {
	nic := func(port int) NIC { return NIC{Tap: "t", MAC: "52:54:00:00:00:01", Port: port} }
	disk := func(name string, port int) DiskAttachment {
		return DiskAttachment{Volume: name, Path: "/v/" + name, Port: port}
	}
	full := Spec{Name: "full"}
	for p := FirstFreePort; p < RootPorts; p++ {
		full.Disks = append(full.Disks, disk("d"+string(rune('a'+p)), p))
	}
	tests := []struct {
		name     string
		spec     Spec
		wantPort int
		portErr  error
		checkErr bool
	}{
		{"empty", Spec{}, FirstFreePort, nil, false},
		{"after nics", Spec{NICs: []NIC{nic(4), nic(5)}}, 6, nil, false},
		{"fills a gap", Spec{NICs: []NIC{nic(4)}, Disks: []DiskAttachment{disk("a", 6)}}, 5, nil, false},
		{"all taken", full, 0, ErrConflict, false},
		{"disk on a reserved port", Spec{Disks: []DiskAttachment{disk("a", 2)}}, 4, nil, true},
		{"disk and nic on one port", Spec{NICs: []NIC{nic(4)}, Disks: []DiskAttachment{disk("a", 4)}}, 5, nil, true},
		{"disk without a path", Spec{Disks: []DiskAttachment{{Volume: "a", Port: 4}}}, 5, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := freePort(tt.spec)
			checkErr(t, err, tt.portErr)
			if err == nil && p != tt.wantPort {
				t.Errorf("freePort = %d, want %d", p, tt.wantPort)
			}
			if err := checkPorts(tt.spec); (err != nil) != tt.checkErr {
				t.Errorf("checkPorts = %v, want error %v", err, tt.checkErr)
			}
		})
	}
}

func TestAllowedPath(t *testing.T) {
	root := t.TempDir()
	backups, other := filepath.Join(root, "backups"), filepath.Join(root, "other")
	for _, d := range []string{backups, other, filepath.Join(backups, "sub")} {
		os.MkdirAll(d, 0o700)
	}
	os.WriteFile(filepath.Join(backups, "old.qcow2"), nil, 0o600)
	os.WriteFile(filepath.Join(other, "secret"), nil, 0o600)
	os.Symlink(other, filepath.Join(backups, "escape"))
	os.Symlink(filepath.Join(other, "secret"), filepath.Join(backups, "link.qcow2"))
	m := &Manager{cfg: Config{Storage: Storage{BackupDirs: []string{backups}}}}
	tests := []struct {
		name      string
		path      string
		mustExist bool
		want      error
	}{
		{"new file in the dir", filepath.Join(backups, "web1.qcow2"), false, nil},
		{"new file in a subdir", filepath.Join(backups, "sub", "web1.qcow2"), false, nil},
		{"outside", filepath.Join(other, "web1.qcow2"), false, ErrInvalid},
		{"dot-dot", backups + "/../other/web1.qcow2", false, ErrInvalid},
		{"relative", "backups/web1.qcow2", false, ErrInvalid},
		{"through a symlinked dir", filepath.Join(backups, "escape", "web1.qcow2"), false, ErrInvalid},
		{"existing target", filepath.Join(backups, "old.qcow2"), false, ErrConflict},
		{"missing directory", filepath.Join(backups, "nope", "web1.qcow2"), false, ErrInvalid},
		{"hidden name", filepath.Join(backups, ".web1.qcow2"), false, ErrInvalid},
		{"sidecar name", filepath.Join(backups, "web1.qcow2.json"), false, ErrInvalid},
		{"restore an existing backup", filepath.Join(backups, "old.qcow2"), true, nil},
		{"restore a missing backup", filepath.Join(backups, "none.qcow2"), true, ErrNotFound},
		{"restore through a symlinked file", filepath.Join(backups, "link.qcow2"), true, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.allowedPath(tt.path, tt.mustExist)
			checkErr(t, err, tt.want)
		})
	}
	none := &Manager{}
	if _, err := none.allowedPath(filepath.Join(backups, "x.qcow2"), false); !errors.Is(err, ErrInvalid) {
		t.Errorf("no backup dirs configured: %v", err)
	}
}
