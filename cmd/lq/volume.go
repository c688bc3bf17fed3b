package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/limiquantix/limiquantix/api"
	"github.com/spf13/cobra"
)

func newVolumeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "Manage data volumes",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(newVolumeListCmd(a), newVolumeShowCmd(a), newVolumeCreateCmd(a), newVolumeResizeCmd(a), newVolumeDeleteCmd(a))
	return cmd
}

func newVolumeListCmd(a *app) *cobra.Command {
	var pool string
	cmd := &cobra.Command{
		Use:     "list [--pool P]",
		Aliases: []string{"ls"},
		Short:   "List volumes",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			vs, err := c.Volumes(cmd.Context(), pool)
			if err != nil {
				return err
			}
			if vs == nil {
				vs = []api.Volume{}
			}
			if a.jsonOutput() {
				return printJSON(a.stdout, vs)
			}
			return writeVolumeTable(a.stdout, vs)
		},
	}
	cmd.Flags().StringVar(&pool, "pool", "", "only the volumes of this pool")
	return cmd
}

// writeVolumeTable writes the table of lq volume list.
func writeVolumeTable(w io.Writer, vs []api.Volume) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tPOOL\tSIZE\tALLOCATED\tATTACHED TO\tSNAPSHOTS")
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", v.Name, v.Pool, formatBytes(v.VirtualSize), formatBytes(v.ActualSize),
			dash(v.AttachedTo), len(v.Snapshots))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func (a *app) printVolume(v api.Volume) error {
	if a.jsonOutput() {
		return printJSON(a.stdout, v)
	}
	var l kvList
	l.add("name", v.Name)
	l.add("pool", v.Pool)
	l.add("path", v.Path)
	l.add("format", v.Format)
	l.add("virtual_size", formatBytes(v.VirtualSize))
	l.add("actual_size", formatBytes(v.ActualSize))
	l.add("backing_chain", strings.Join(v.BackingChain, " <- "))
	l.add("snapshots", strings.Join(v.Snapshots, ", "))
	l.add("attached_to", v.AttachedTo)
	l.add("created_at", formatTime(v.CreatedAt))
	l.add("error", v.Error)
	return l.write(a.stdout)
}

func newVolumeShowCmd(a *app) *cobra.Command {
	return showCmd(a, "Show a volume (format, sizes, backing chain, snapshots)", (*api.Client).Volume, a.printVolume)
}

func newVolumeCreateCmd(a *app) *cobra.Command {
	var (
		size int64
		pool string
	)
	cmd := &cobra.Command{
		Use:   "create NAME --size GIB [--pool P]",
		Short: "Create an empty qcow2 volume",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if size <= 0 {
				return usageErrorf("--size GIB is required and must be positive")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			v, err := c.CreateVolume(cmd.Context(), api.CreateVolumeRequest{Name: args[0], Pool: pool, SizeGiB: size})
			if err != nil {
				return err
			}
			return a.printVolume(v)
		},
	}
	cmd.Flags().Int64Var(&size, "size", 0, "size in GiB")
	cmd.Flags().StringVar(&pool, "pool", "", "pool (default: the default pool)")
	return cmd
}

func newVolumeResizeCmd(a *app) *cobra.Command {
	var size int64
	cmd := &cobra.Command{
		Use:   "resize NAME --size GIB",
		Short: "Grow a volume (live, if its VM runs)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if size <= 0 {
				return usageErrorf("--size GIB is required and must be positive")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			v, err := c.ResizeVolume(cmd.Context(), args[0], size)
			if err != nil {
				return err
			}
			return a.printVolume(v)
		},
	}
	cmd.Flags().Int64Var(&size, "size", 0, "new size in GiB")
	return cmd
}

func newVolumeDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a volume that is not attached",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return c.DeleteVolume(cmd.Context(), args[0])
		},
	}
}

func newVMDiskCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "disk",
		Short: "Attach and detach volumes (hotplug while the VM runs)",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	attach := &cobra.Command{
		Use:   "attach VM VOLUME",
		Short: "Attach a volume to a VM",
		Args:  exactArgs("VM", "VOLUME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			vm, err := c.AttachDisk(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return a.printDisks(vm)
		},
	}
	var timeout int
	detach := &cobra.Command{
		Use:   "detach VM VOLUME [--timeout S]",
		Short: "Detach a volume from a VM (waits for the guest to release it)",
		Args:  exactArgs("VM", "VOLUME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout < 0 {
				return usageErrorf("--timeout must not be negative")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			vm, err := c.DetachDisk(cmd.Context(), args[0], args[1], timeout)
			if err != nil {
				return err
			}
			return a.printDisks(vm)
		},
	}
	detach.Flags().IntVar(&timeout, "timeout", 0, "seconds to wait for the guest (default: lqd's, 60)")
	list := &cobra.Command{
		Use:     "list VM",
		Aliases: []string{"ls"},
		Short:   "List a VM's attached volumes",
		Args:    exactArgs("VM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			vm, err := c.VM(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printDisks(vm)
		},
	}
	cmd.AddCommand(attach, detach, list)
	return cmd
}

// printDisks writes a VM's attached volumes.
func (a *app) printDisks(vm api.VM) error {
	disks := vm.Disks
	if disks == nil {
		disks = []api.VMDisk{}
	}
	if a.jsonOutput() {
		return printJSON(a.stdout, disks)
	}
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "VOLUME\tSERIAL\tPORT\tPATH")
	for _, d := range disks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Volume, d.Serial, formatPort(d.Port), d.Path)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
