package vmm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/limiquantix/limiquantix/qmp"
)

// deviceDel asks the guest to release a PCIe device and waits for qemu's DEVICE_DELETED
// (the guest has to cooperate, as with a real hot-unplug button). A device that is gone
// already counts as released, so a retry after a timeout completes; a request still
// pending from earlier is waited for like a new one. Timing out wraps ErrTimeout.
func deviceDel(ctx context.Context, mon monitor, id string, timeout time.Duration) error {
	events, unsubscribe := mon.Subscribe(64)
	defer unsubscribe()
	if err := mon.Execute(ctx, "device_del", map[string]string{"id": id}, nil); err != nil {
		var qe *qmp.Error
		switch {
		case errors.As(err, &qe) && qe.Class == "DeviceNotFound":
			return nil
		case errors.As(err, &qe) && strings.Contains(strings.ToLower(qe.Desc), "in progress"):
		default:
			return qmpErr("device_del", err)
		}
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok || ev.Event == qmp.EventDisconnected {
				return fmt.Errorf("device_del %s: qemu went away", id)
			}
			if ev.Event == "DEVICE_DELETED" && ev.Data["device"] == id {
				return nil
			}
		case <-t.C:
			return fmt.Errorf("%w: device_del %s: not released within %s", ErrTimeout, id, timeout)
		case <-ctx.Done():
			return fmt.Errorf("device_del %s: %w", id, ctx.Err())
		}
	}
}
