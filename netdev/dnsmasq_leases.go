package netdev

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// A removed host's lease would keep its address from the host's successor: dnsmasq does not
// offer an address that is leased to another MAC until that lease expires, and a SIGHUP
// does not drop leases. So Ensure restarts dnsmasq with such leases cut from the lease file.

// staleLeases counts leases in dnsmasq's lease file whose MAC and address are not a pair
// in hosts.
func staleLeases(path string, hosts []DHCPHost) (int, error) {
	_, n, err := filterLeases(path, hosts)
	return n, err
}

// pruneLeases rewrites the lease file without stale leases; dnsmasq must not be running.
func pruneLeases(path string, hosts []DHCPHost) (int, error) {
	keep, n, err := filterLeases(path, hosts)
	if err != nil || n == 0 {
		return n, err
	}
	return n, writeFileAtomic(path, keep, 0o644)
}

// filterLeases reads a lease file ("EXPIRY MAC IP NAME CLIENT-ID" lines) and returns it
// without the stale leases, and how many there were. Lines it does not understand stay.
func filterLeases(path string, hosts []DHCPHost) ([]byte, int, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read leases: %w", err)
	}
	known := map[string]netip.Addr{}
	for _, h := range hosts {
		known[h.MAC.String()] = h.IP.Unmap()
	}
	var keep bytes.Buffer
	stale := 0
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 3 {
			mac, err1 := net.ParseMAC(f[1])
			ip, err2 := netip.ParseAddr(f[2])
			if err1 == nil && err2 == nil && ip.Is4() {
				if want, ok := known[mac.String()]; !ok || want != ip {
					stale++
					continue
				}
			}
		}
		keep.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("read leases: %w", err)
	}
	return keep.Bytes(), stale, nil
}
