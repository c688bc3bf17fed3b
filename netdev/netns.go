package netdev

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// inNetns runs f on a fresh OS thread that has joined ns, for the calls that act on the
// calling thread's namespace rather than on a netlink handle's (opening /dev/net/tun, a
// bare netlink request). The thread stays locked until its goroutine ends, so the Go
// runtime destroys it instead of reusing a thread in a foreign namespace. f must not start
// goroutines.
func inNetns(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// currentNetns returns a handle on the calling process's network namespace.
func currentNetns() (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ns, err := netns.Get()
	if err != nil {
		return netns.None(), fmt.Errorf("get current netns: %w", err)
	}
	return ns, nil
}
