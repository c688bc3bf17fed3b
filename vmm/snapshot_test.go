package vmm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/limiquantix/limiquantix/qmp"
)

func TestWaitJob(t *testing.T) {
	const id = "lq-save-1"
	running := fakeReply{out: []jobInfo{{ID: id, Type: "snapshot-save", Status: "running"}}}
	done := fakeReply{out: []jobInfo{{ID: "other", Status: "running"}, {ID: id, Type: "snapshot-save", Status: "concluded"}}}
	tests := []struct {
		name    string
		replies []fakeReply
		want    string
		wantErr error
	}{
		{"concludes and is dismissed", []fakeReply{running, running, done},
			"query-jobs\nquery-jobs\nquery-jobs\njob-dismiss {\"id\":\"lq-save-1\"}", nil},
		{"fails: the error is qemu's", []fakeReply{{out: []jobInfo{{ID: id, Type: "snapshot-load", Status: "concluded", ErrorMsg: "Snapshot 's1' does not exist in one or more devices"}}}},
			"query-jobs\njob-dismiss {\"id\":\"lq-save-1\"}", errAny},
		{"target full", []fakeReply{{out: []jobInfo{{ID: id, Type: "backup", Status: "concluded", ErrorMsg: "No space left on device"}}}},
			"query-jobs\njob-dismiss {\"id\":\"lq-save-1\"}", ErrNoSpace},
		{"vanished", []fakeReply{{out: []jobInfo{}}}, "query-jobs", errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeMon(map[string][]fakeReply{"query-jobs": tt.replies})
			err := waitJob(context.Background(), f, id, nil)
			checkErr(t, err, tt.wantErr)
			if got := f.transcript(); got != tt.want {
				t.Errorf("transcript:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestRunJobCommands(t *testing.T) {
	disks := []writableDisk{{node: rootDiskNode}, {node: "disk-p5", volume: "data1"}}
	done := fakeReply{out: []jobInfo{{ID: "j", Status: "concluded"}}}
	f := newFakeMon(map[string][]fakeReply{"query-jobs": {done}})
	if err := runJob(context.Background(), f, "snapshot-save", "j", map[string]any{"tag": "s1", "vmstate": rootDiskNode, "devices": nodes(disks)}); err != nil {
		t.Fatal(err)
	}
	want := `snapshot-save {"devices":["disk-root","disk-p5"],"job-id":"j","tag":"s1","vmstate":"disk-root"}` + "\nquery-jobs\njob-dismiss {\"id\":\"j\"}"
	if got := f.transcript(); got != want {
		t.Errorf("transcript:\n%s\nwant:\n%s", got, want)
	}
	// The read-only cloud-init seed is never among the devices.
	if strings.Contains(f.transcript(), seedNode) {
		t.Error("the seed is in a snapshot")
	}

	f = newFakeMon(nil)
	if err := internalSnapshot(context.Background(), f, "d1", disks); err != nil {
		t.Fatal(err)
	}
	want = `transaction {"actions":[{"data":{"device":"disk-root","name":"d1"},"type":"blockdev-snapshot-internal-sync"},{"data":{"device":"disk-p5","name":"d1"},"type":"blockdev-snapshot-internal-sync"}]}`
	if got := f.transcript(); got != want {
		t.Errorf("transcript:\n%s\nwant:\n%s", got, want)
	}
}

// fakeAgent records freeze and thaw calls.
type fakeAgent struct {
	calls               []string
	freezeErr, thawErr  error
	frozen, thawedCount int
}

func (a *fakeAgent) FSFreeze(ctx context.Context) (int, error) {
	a.calls = append(a.calls, "freeze")
	return a.frozen, a.freezeErr
}

func (a *fakeAgent) FSThaw(ctx context.Context) (int, error) {
	a.calls = append(a.calls, "thaw")
	return a.thawedCount, a.thawErr
}

func TestQuiescedAlwaysThaws(t *testing.T) {
	boom := errors.New("snapshot failed")
	tests := []struct {
		name      string
		agent     fakeAgent
		fnErr     error
		wantCalls string
		wantErr   error
		report    string
	}{
		{"snapshot between freeze and thaw", fakeAgent{frozen: 2, thawedCount: 2}, nil, "freeze fn thaw", nil,
			"froze 2 file system(s); thawed 2 file system(s)"},
		{"a failure between them still thaws", fakeAgent{frozen: 2, thawedCount: 2}, boom, "freeze fn thaw", boom,
			"froze 2 file system(s); thawed 2 file system(s)"},
		{"a failed freeze (maybe half done) still thaws", fakeAgent{freezeErr: errors.New("EBUSY"), thawedCount: 1}, nil, "freeze thaw", ErrAgent,
			"thawed 1 file system(s)"},
		{"a failed thaw is reported", fakeAgent{frozen: 1, thawErr: errors.New("timeout")}, nil, "freeze fn thaw", ErrAgent,
			"froze 1 file system(s); fsthaw failed: timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.agent
			var reports []string
			err := quiesced(context.Background(), &a, func(s string) { reports = append(reports, s) }, func() error {
				a.calls = append(a.calls, "fn")
				return tt.fnErr
			})
			checkErr(t, err, tt.wantErr)
			if got := strings.Join(a.calls, " "); got != tt.wantCalls {
				t.Errorf("calls %q, want %q", got, tt.wantCalls)
			}
			if got := strings.Join(reports, "; "); got != tt.report {
				t.Errorf("reports %q, want %q", got, tt.report)
			}
		})
	}
	// Even with the caller's context gone, the thaw goes out.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a := &fakeAgent{}
	quiesced(ctx, a, func(string) {}, func() error { return ctx.Err() })
	if strings.Join(a.calls, " ") != "freeze thaw" {
		t.Errorf("with a cancelled context: %v", a.calls)
	}
}

func TestSameHardware(t *testing.T) {
	base := Spec{CPUs: 2, MemoryMiB: 1024, NICs: []NIC{{MAC: "m1", Port: 4}},
		Disks: []DiskAttachment{{Volume: "a", Port: 5}, {Volume: "b", Port: 6}}}
	with := func(f func(*Spec)) Spec {
		s := base
		s.NICs = append([]NIC(nil), base.NICs...)
		s.Disks = append([]DiskAttachment(nil), base.Disks...)
		f(&s)
		return s
	}
	tests := []struct {
		name string
		b    Spec
		want bool
	}{
		{"same", with(func(*Spec) {}), true},
		{"disks listed in another order", with(func(s *Spec) { s.Disks[0], s.Disks[1] = s.Disks[1], s.Disks[0] }), true},
		{"other settings do not matter", with(func(s *Spec) { s.UserData = "x"; s.SSHKeys = []string{"k"} }), true},
		{"memory", with(func(s *Spec) { s.MemoryMiB = 2048 }), false},
		{"cpus", with(func(s *Spec) { s.CPUs = 1 }), false},
		{"a disk less", with(func(s *Spec) { s.Disks = s.Disks[:1] }), false},
		{"a disk on another port", with(func(s *Spec) { s.Disks[1].Port = 7 }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameHardware(base, tt.b); got != tt.want {
				t.Errorf("sameHardware = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestQMPErr(t *testing.T) {
	tests := []struct {
		err  error
		want error
	}{
		{&qmp.Error{Desc: `Failed to get "write" lock`}, ErrInUse},
		{&qmp.Error{Desc: "No space left on device"}, ErrNoSpace},
		{&qmp.Error{Desc: "Snapshot 'q1' already exists"}, ErrConflict},
		{&qmp.Error{Desc: "something else"}, nil},
	}
	for _, tt := range tests {
		err := qmpErr("x", tt.err)
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("qmpErr(%v) = %v, want %v", tt.err, err, tt.want)
		}
		if tt.want == nil && (errors.Is(err, ErrInUse) || errors.Is(err, ErrNoSpace) || errors.Is(err, ErrConflict)) {
			t.Errorf("qmpErr(%v) = %v", tt.err, err)
		}
	}
}

func TestStartBackupJob(t *testing.T) {
	const (
		with    = `blockdev-backup {"auto-dismiss":false,"device":"disk-root","job-id":"j","sync":"full","target":"t","x-perf":{"use-copy-range":true}}`
		without = `blockdev-backup {"auto-dismiss":false,"device":"disk-root","job-id":"j","sync":"full","target":"t"}`
	)
	tests := []struct {
		name    string
		replies []fakeReply
		want    string
		wantErr error
	}{
		{"copy offloading", nil, with, nil},
		{"a qemu without x-perf", []fakeReply{{err: &qmp.Error{Class: "GenericError", Desc: "Parameter 'x-perf' is unexpected"}}, {}}, with + "\n" + without, nil},
		{"other errors are errors", []fakeReply{{err: &qmp.Error{Class: "GenericError", Desc: "Node 't' is busy"}}}, with, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeMon(map[string][]fakeReply{"blockdev-backup": tt.replies})
			checkErr(t, startBackupJob(context.Background(), f, "j", "t"), tt.wantErr)
			if got := f.transcript(); got != tt.want {
				t.Errorf("transcript:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}
