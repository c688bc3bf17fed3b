package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// errReader yields some bytes, then fails.
type errReader struct{ n int }

func (r *errReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("connection reset")
	}
	r.n--
	return copy(p, "data"), nil
}

// cancelReader cancels its context after the first read.
type cancelReader struct {
	cancel context.CancelFunc
	r      io.Reader
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p[:min(len(p), 10)])
	c.cancel()
	return n, err
}

func TestStage(t *testing.T) {
	payload := bytes.Repeat([]byte("limiquantix\n"), 300000) // 3.6 MB: several chunks
	sum := sha256.Sum256(payload)
	tests := []struct {
		name    string
		src     func(cancel context.CancelFunc) io.Reader
		max     int64
		wantErr error // nil, ErrTooLarge, ErrInvalid, context.Canceled or errAny
	}{
		{"streams and hashes", func(context.CancelFunc) io.Reader { return bytes.NewReader(payload) }, 1 << 30, nil},
		{"exactly the limit", func(context.CancelFunc) io.Reader { return bytes.NewReader(payload) }, int64(len(payload)), nil},
		{"one byte over the limit", func(context.CancelFunc) io.Reader { return bytes.NewReader(payload) }, int64(len(payload)) - 1, ErrTooLarge},
		{"no limit is refused", func(context.CancelFunc) io.Reader { return bytes.NewReader(payload) }, 0, ErrInvalid},
		{"reader fails", func(context.CancelFunc) io.Reader { return &errReader{n: 3} }, 1 << 30, errAny},
		{"context cancelled", func(c context.CancelFunc) io.Reader { return &cancelReader{c, bytes.NewReader(payload)} }, 1 << 30, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := OpenDirPool("default", t.TempDir(), ExecRunner{})
			if err != nil {
				t.Fatal(err)
			}
			l := NewLibrary(nil, p, ExecRunner{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			s, err := l.Stage(ctx, tt.src(cancel), tt.max)

			images := filepath.Join(p.Path(), "images")
			if tt.wantErr != nil {
				if err == nil || (tt.wantErr != errAny && !errors.Is(err, tt.wantErr)) {
					t.Fatalf("Stage err = %v, want %v", err, tt.wantErr)
				}
				if s != nil {
					t.Errorf("Stage returned %+v with an error", s)
				}
				if names := dirNames(t, images); len(names) != 0 {
					t.Errorf("images/ = %q after a failed Stage, want empty", names)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Size != int64(len(payload)) || s.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("Staged size %d sha %s, want %d %x", s.Size, s.SHA256, len(payload), sum)
			}
			if filepath.Dir(s.Path) != images || !strings.HasPrefix(filepath.Base(s.Path), ".staging-") {
				t.Errorf("staged at %s", s.Path)
			}
			s.Discard()
			s.Discard() // idempotent
			if names := dirNames(t, images); len(names) != 0 {
				t.Errorf("images/ = %q after Discard, want empty", names)
			}
		})
	}
	var nilStaged *Staged
	nilStaged.Discard()
}
