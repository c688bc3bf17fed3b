package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func open(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "lq.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrationsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lq.db")
	for i := 0; i < 2; i++ {
		db, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("open #%d: %v", i, err)
		}
		v, err := db.SchemaVersion(ctx)
		if err != nil || v != len(migrations) {
			t.Fatalf("schema version = %d, %v; want %d", v, err, len(migrations))
		}
		db.Close()
	}
}

func TestVMLifecycleAndImageInUse(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	vm := VM{UUID: "u1", Name: "web1", Image: "deb", Spec: []byte(`{"cpus":1}`), State: "stopped"}
	if err := db.CreateVM(ctx, vm); !errors.Is(err, ErrNotFound) {
		t.Fatalf("create vm with missing image: %v, want ErrNotFound", err)
	}
	if err := db.CreateImage(ctx, Image{Name: "deb", Format: "qcow2", Path: "/x"}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateImage(ctx, Image{Name: "deb", Format: "qcow2", Path: "/y"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate image: %v, want ErrConflict", err)
	}
	if err := db.CreateVM(ctx, vm); err != nil {
		t.Fatal(err)
	}
	dup := vm
	dup.UUID = "u2"
	if err := db.CreateVM(ctx, dup); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate vm name: %v, want ErrConflict", err)
	}
	if err := db.DeleteImage(ctx, "deb"); !errors.Is(err, ErrInUse) {
		t.Fatalf("delete image in use: %v, want ErrInUse", err)
	}
	start := time.Now().Truncate(time.Millisecond)
	if err := db.SetVMRuntime(ctx, "u1", "running", 42, start); err != nil {
		t.Fatal(err)
	}
	vms, err := db.VMs(ctx)
	if err != nil || len(vms) != 1 {
		t.Fatalf("VMs = %v, %v", vms, err)
	}
	if got := vms[0]; got.State != "running" || got.PID != 42 || !got.StartedAt.Equal(start) || string(got.Spec) != `{"cpus":1}` {
		t.Fatalf("vm = %+v", got)
	}
	if err := db.DeleteVM(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteImage(ctx, "deb"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Image(ctx, "deb"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("image after delete: %v", err)
	}
}

func TestTokensAndEvents(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	if err := db.CreateToken(ctx, Token{ID: "t1", Name: "admin", Hash: "h", Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	if tok, err := db.TokenByHash(ctx, "h"); err != nil || tok.Name != "admin" {
		t.Fatalf("TokenByHash = %+v, %v", tok, err)
	}
	if _, err := db.TokenByHash(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	for _, typ := range []string{"a", "b", "c"} {
		if _, err := db.AddEvent(ctx, Event{Type: typ}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := db.Events(ctx, 1, 10)
	if err != nil || len(evs) != 2 || evs[0].Type != "b" {
		t.Fatalf("Events(after 1) = %+v, %v", evs, err)
	}
}
