package qmp

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Defaults applied when no Option overrides them.
const (
	DefaultTimeout      = 30 * time.Second // per monitor command without a ctx deadline
	DefaultAgentTimeout = 10 * time.Second // per agent call without a ctx deadline
	DefaultEventBuffer  = 256              // subscriber buffer used by Monitor.Events
)

// Option configures Dial and DialAgent.
type Option func(*options)

type options struct {
	timeout time.Duration
	log     *slog.Logger
}

// WithTimeout sets the deadline applied to a call whose ctx has none.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithLogger sets the logger for protocol oddities (late replies, junk).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

func newOptions(timeout time.Duration, opts []Option) options {
	o := options{timeout: timeout, log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// request is a command as sent on the wire.
type request struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
	ID        string `json:"id,omitempty"` // a string: go-qemu decodes ids as strings
}

// withDefaultTimeout bounds ctx by d unless it already has a deadline.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// watchDeadline makes I/O guarded by set (a conn's SetDeadline or
// SetWriteDeadline) fail when ctx expires or is cancelled. The returned stop
// clears the deadline; after it returns, ctx no longer affects the conn.
func watchDeadline(ctx context.Context, set func(time.Time) error) (stop func()) {
	d, _ := ctx.Deadline()
	_ = set(d)
	var mu sync.Mutex
	stopped := false
	cancel := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			_ = set(time.Unix(1, 0))
		}
	})
	return func() {
		cancel()
		mu.Lock()
		stopped = true
		mu.Unlock()
		_ = set(time.Time{})
	}
}

// ctxErr turns a conn deadline error into the ctx error that caused it.
func ctxErr(ctx context.Context, err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return context.DeadlineExceeded
}
