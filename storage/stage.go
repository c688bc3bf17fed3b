package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// Staged is an upload streamed into the pool's images/ directory, waiting for Commit.
type Staged struct {
	Path   string
	Size   int64
	SHA256 string // hex

	done bool // committed or discarded: the file is no longer ours to remove
}

// Discard removes the staged file. It is safe to call more than once, on nil, and after
// Commit (then it does nothing).
func (s *Staged) Discard() {
	if s == nil || s.done {
		return
	}
	s.done = true
	os.Remove(s.Path)
}

// stageChunk is the copy buffer; ctx is checked between chunks.
const stageChunk = 1 << 20

// Stage streams src into images/.staging-*, computing its SHA-256 on the way. More than
// maxBytes (which must be positive) is an error wrapping ErrTooLarge. Cancelling ctx
// aborts between reads (a reader blocked in Read is up to its owner, e.g. the HTTP
// server closing the body). On any error the staged file is removed.
func (l *Library) Stage(ctx context.Context, src io.Reader, maxBytes int64) (*Staged, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("storage: stage upload: %w", invalid("size limit %d is not positive", maxBytes))
	}
	f, err := os.CreateTemp(l.pool.images, stagingPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("storage: stage upload: %w", err)
	}
	s := &Staged{Path: f.Name()}
	fail := func(err error) (*Staged, error) {
		f.Close()
		os.Remove(s.Path)
		return nil, fmt.Errorf("storage: stage upload %s: %w", s.Path, err)
	}

	h := sha256.New()
	w := io.MultiWriter(f, h)
	buf := make([]byte, stageChunk)
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			if s.Size+int64(n) > maxBytes {
				return fail(fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxBytes))
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return fail(err)
			}
			s.Size += int64(n)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return fail(fmt.Errorf("read: %w", rerr))
		}
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(s.Path)
		return nil, fmt.Errorf("storage: stage upload %s: %w", s.Path, err)
	}
	s.SHA256 = hex.EncodeToString(h.Sum(nil))
	return s, nil
}
