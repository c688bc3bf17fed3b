package firewall

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

const bridgeNFCallIPTables = "/proc/sys/net/bridge/bridge-nf-call-iptables"

// ErrBridgeNetfilter means bridged IPv4 does not reach the IP hooks in the calling
// thread's network namespace (br_netfilter missing or bridge-nf-call-iptables=0), so
// per-NIC rules would not see VM-to-VM traffic. Call EnableBridgeNetfilter.
var ErrBridgeNetfilter = errors.New("bridged IPv4 bypasses netfilter (net.bridge.bridge-nf-call-iptables is not 1)")

// Features are the kernel facilities the firewall cares about.
type Features struct {
	// ConntrackBridge: nf_conntrack_bridge is loaded, so bridge-family chains could match
	// ct state directly. The ruleset does not rely on it (marks work either way).
	ConntrackBridge bool
	// BridgeNetfilter: br_netfilter is present and bridge-nf-call-iptables is 1 in the
	// calling thread's network namespace.
	BridgeNetfilter bool
}

// Detect reports Features, trying `modprobe nf_conntrack_bridge` once when it is not
// loaded (a failure just reports false).
func Detect(ctx context.Context) Features {
	f := Features{ConntrackBridge: moduleLoaded("nf_conntrack_bridge")}
	if !f.ConntrackBridge && exec.CommandContext(ctx, "modprobe", "-q", "nf_conntrack_bridge").Run() == nil {
		f.ConntrackBridge = moduleLoaded("nf_conntrack_bridge")
	}
	f.BridgeNetfilter = bridgeNetfilterOn() == nil
	return f
}

func moduleLoaded(name string) bool {
	_, err := os.Stat("/sys/module/" + name)
	return err == nil
}

// EnableBridgeNetfilter makes bridged IPv4 traverse the IP hooks in the calling thread's
// network namespace: it loads br_netfilter when the sysctl is missing, then writes
// net.bridge.bridge-nf-call-iptables=1. Lock the OS thread to act on another namespace.
func EnableBridgeNetfilter(ctx context.Context) error {
	if _, err := os.Stat(bridgeNFCallIPTables); errors.Is(err, os.ErrNotExist) {
		if out, err := exec.CommandContext(ctx, "modprobe", "br_netfilter").CombinedOutput(); err != nil {
			return fmt.Errorf("firewall: modprobe br_netfilter: %w: %s", err, strings.TrimSpace(string(out)))
		}
	}
	if err := os.WriteFile(bridgeNFCallIPTables, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("firewall: enable bridge-nf-call-iptables: %w", err)
	}
	return nil
}

// bridgeNetfilterOn returns nil when bridge-nf-call-iptables is 1 in the calling thread's
// network namespace.
func bridgeNetfilterOn() error {
	b, err := os.ReadFile(bridgeNFCallIPTables)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBridgeNetfilter, err)
	}
	if strings.TrimSpace(string(b)) != "1" {
		return ErrBridgeNetfilter
	}
	return nil
}
