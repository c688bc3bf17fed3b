package main

import (
	"context"

	"github.com/limiquantix/limiquantix/netdev"
	"github.com/limiquantix/limiquantix/vmm"
)

// vmNets adapts the network service to what vmm asks of it.
type vmNets struct{ s *netdev.Service }

func (n vmNets) AllocateNICs(ctx context.Context, vmUUID, vmName string, first int, reqs []vmm.NICRequest) ([]vmm.NIC, error) {
	in := make([]netdev.NICRequest, 0, len(reqs))
	for _, r := range reqs {
		in = append(in, netdev.NICRequest{Network: r.Network, IP: r.IP, Groups: r.SecurityGroups})
	}
	got, err := n.s.AllocateNICs(ctx, vmUUID, vmName, first, in)
	if err != nil {
		return nil, err
	}
	out := make([]vmm.NIC, 0, len(got))
	for _, g := range got {
		out = append(out, vmm.NIC{Index: g.Index, Network: g.Network, MAC: g.MAC, IP: g.IP, Tap: g.Tap, SecurityGroups: g.Groups,
			PrefixLen: g.PrefixLen, Gateway: g.Gateway, Domain: g.Domain})
	}
	return out, nil
}

func (n vmNets) ReleaseNICs(ctx context.Context, vmUUID string) error {
	return n.s.ReleaseNICs(ctx, vmUUID)
}

func (n vmNets) ReleaseNIC(ctx context.Context, tap string) error { return n.s.ReleaseNIC(ctx, tap) }

func (n vmNets) PlugNIC(ctx context.Context, nic vmm.NIC, queues int) error {
	return n.s.PlugNIC(ctx, nic.Tap, nic.Network, queues)
}

func (n vmNets) UnplugNIC(ctx context.Context, nic vmm.NIC) error { return n.s.UnplugNIC(ctx, nic.Tap) }

func (n vmNets) DefaultNetwork(ctx context.Context) string { return n.s.DefaultNetwork(ctx) }
