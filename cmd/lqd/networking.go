package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/limiquantix/limiquantix/netdev"
	"github.com/limiquantix/limiquantix/netdev/firewall"
	"github.com/limiquantix/limiquantix/store"
	"github.com/limiquantix/limiquantix/vmm"
)

// startNetworking brings the managed networks up from the database (bridges, dnsmasq,
// the firewall table) and makes the default network on first start. Taps are reconciled
// later, once vmm knows which VMs run.
func startNetworking(ctx context.Context, c config, db *store.DB, log *slog.Logger) (*netdev.Service, error) {
	var fw firewall.Backend
	switch c.firewall {
	case "nft":
		fw = firewall.NewNFT("limiquantix")
	case "iptables":
		fw = firewall.NewIPTables("LQ")
	default:
		return nil, fmt.Errorf("--firewall %q: must be nft or iptables", c.firewall)
	}
	links, err := netdev.NewLinks("")
	if err != nil {
		return nil, err
	}
	svc := netdev.NewService(netdev.ServiceConfig{
		DB: db, Links: links, DNSMasq: netdev.NewDNSMasq("", log), Firewall: fw,
		StateDir: filepath.Join(c.dataDir, "networks"), Domain: c.dnsDomain, Log: log,
	})
	if err := svc.Reconcile(ctx, nil); err != nil {
		log.Warn("network reconcile", "err", err)
	}
	if err := svc.EnsureDefault(ctx, c.defaultNetwork); err != nil {
		log.Error("default network not created; VMs get no NIC unless asked", "subnet", c.defaultNetwork, "err", err)
	}
	return svc, nil
}

// reconcileNetworks repairs drift every interval until ctx ends: the network layer makes
// bridges, dnsmasq, stale taps and the firewall match the database (a flushed ruleset comes
// back), then vmm replugs NICs of running VMs whose taps someone deleted.
func reconcileNetworks(ctx context.Context, every time.Duration, nets *netdev.Service, mgr *vmm.Manager, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := nets.Reconcile(ctx, mgr.ActiveTaps); err != nil {
				log.Warn("network reconcile", "err", err)
			}
			mgr.RepairNICs(ctx)
		}
	}
}
