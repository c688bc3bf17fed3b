package main

import (
	"github.com/limiquantix/limiquantix/api"
	"github.com/spf13/cobra"
)

// newVMNICCmd is `lq vm nic add|remove`: NIC hotplug.
func newVMNICCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nic",
		Short: "Add or remove a VM's NICs (hotplugged while it runs)",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	var req api.NICRequest
	add := &cobra.Command{
		Use:   "add VM --network NET [--ip ADDR] [--sg GROUP]...",
		Short: "Add a NIC on a network; a running VM gets it hotplugged on a free PCIe root port",
		Args:  exactArgs("VM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Network == "" {
				return usageErrorf("--network is required")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			vm, err := c.AddNIC(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return a.printVM(vm)
		},
	}
	add.Flags().StringVar(&req.Network, "network", "", "network to join")
	add.Flags().StringVar(&req.IP, "ip", "", "fixed address (default: the next free one)")
	add.Flags().StringSliceVar(&req.SecurityGroups, "sg", nil, "security group (repeatable)")
	remove := &cobra.Command{
		Use:     "remove VM NIC",
		Aliases: []string{"rm"},
		Short:   "Remove a NIC, named by index, MAC or tap; a running guest must release it first",
		Args:    exactArgs("VM", "NIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			vm, err := c.RemoveNIC(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return a.printVM(vm)
		},
	}
	cmd.AddCommand(add, remove)
	return cmd
}
