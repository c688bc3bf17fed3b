package netdev

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"

	"github.com/google/uuid"
)

const (
	// TapPrefix starts the name of every tap lqd creates; reconcile lists taps by it.
	TapPrefix = "lqt"
	// BridgePrefix starts the name of every bridge lqd creates.
	BridgePrefix = "lqb-"
	// maxIfName is the longest Linux interface name (IFNAMSIZ-1).
	maxIfName = 15
)

// TapName returns the tap name of NIC index of a VM: "lqt", 10 hex digits that stand for
// the VM, then the index in decimal, e.g. "lqt3f2a9c41d00" and "lqt3f2a9c41d01". For a
// random (version 4) UUID the digits are the UUID's own leading ones, so an operator can
// match taps to `lq vm list`; any other string (or a time-ordered UUID, whose leading
// digits are a clock) is hashed. An index outside 0..99 gets a hash of the UUID and the
// index instead. Names are at most 15 characters and distinct for distinct (VM, index)
// pairs up to a 40-bit hash collision.
func TapName(vmUUID string, index int) string {
	var id string
	if u, err := uuid.Parse(vmUUID); err == nil && u.Version() == 4 {
		id = hex.EncodeToString(u[:5])
	} else {
		id = hashHex(vmUUID, 10)
	}
	if index < 0 || index > 99 {
		return TapPrefix + hashHex(vmUUID+"\x00"+strconv.Itoa(index), maxIfName-len(TapPrefix))
	}
	return TapPrefix + id + strconv.Itoa(index)
}

// BridgeName returns the bridge name of a network: "lqb-" + name when the name is at most
// 11 characters of [A-Za-z0-9_-], otherwise "lqb-", up to 4 of those characters, "." and
// 6 hex digits of a hash of the name. Only hashed names contain ".", so the two forms never
// collide.
func BridgeName(network string) string {
	if len(network) > 0 && len(BridgePrefix)+len(network) <= maxIfName && plainName(network) {
		return BridgePrefix + network
	}
	keep := make([]byte, 0, 4)
	for i := 0; i < len(network) && len(keep) < 4; i++ {
		if plainByte(network[i]) {
			keep = append(keep, network[i])
		}
	}
	return BridgePrefix + string(keep) + "." + hashHex(network, 6)
}

// GuestMAC returns the MAC of a VM NIC: qemu's 52:54:00 prefix (locally administered,
// unicast) and three bytes hashed from seed (say, the VM UUID and NIC index). 24 bits are
// few: the caller must still check the MAC is unused on the network and pick another seed
// if it is.
func GuestMAC(seed string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("guest\x00" + seed))
	return net.HardwareAddr{0x52, 0x54, 0x00, sum[0], sum[1], sum[2]}
}

// HostMAC returns a MAC for a host-side device (a tap or a bridge): fe: (locally
// administered, unicast) and five bytes hashed from seed. Guest MACs start with 52:54:00,
// so host and guest MACs never clash, and the host side of a tap is easy to tell apart in
// a bridge's forwarding table.
func HostMAC(seed string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("host\x00" + seed))
	return net.HardwareAddr{0xfe, sum[0], sum[1], sum[2], sum[3], sum[4]}
}

// validIfName reports why name cannot be a Linux interface name, or nil.
func validIfName(name string) error {
	if name == "" || len(name) > maxIfName || name == "." || name == ".." {
		return fmt.Errorf("interface name %q: must be 1 to %d characters: %w", name, maxIfName, ErrInvalid)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == '/' || c == ':' {
			return fmt.Errorf("interface name %q: bad character %q: %w", name, c, ErrInvalid)
		}
	}
	return nil
}

func plainName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte(s[i]) {
			return false
		}
	}
	return true
}

func plainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func hashHex(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}
