package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/limiquantix/limiquantix/api"
	"github.com/spf13/cobra"
)

// vmStorageCmds are the storage subcommands of lq vm.
func vmStorageCmds(a *app) []*cobra.Command {
	return []*cobra.Command{newVMDiskCmd(a), newVMSnapshotCmd(a), newVMCloneCmd(a), newVMBackupCmd(a), newVMRestoreCmd(a)}
}

func newVMSnapshotCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "snapshot",
		Aliases: []string{"snap"},
		Short:   "Take, list, revert to and delete VM snapshots",
		Args:    groupArgs,
		RunE:    groupRun,
	}
	var memory, quiesce bool
	create := &cobra.Command{
		Use:   "create VM NAME [--memory | --quiesce]",
		Short: "Take a snapshot: disks, plus RAM and device state with --memory",
		Args:  exactArgs("VM", "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if memory && quiesce {
				return usageErrorf("--memory and --quiesce exclude each other: a snapshot with memory needs no quiescing")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			sn, err := c.CreateSnapshot(cmd.Context(), args[0], api.CreateSnapshotRequest{Name: args[1], Memory: memory, Quiesce: quiesce})
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return printJSON(a.stdout, sn)
			}
			return writeSnapshotTable(a.stdout, []api.Snapshot{sn})
		},
	}
	create.Flags().BoolVar(&memory, "memory", false, "include RAM and device state (running VM): a revert resumes the guest where it was")
	create.Flags().BoolVar(&quiesce, "quiesce", false, "freeze the guest's file systems through its agent while the disks are snapshotted")
	list := &cobra.Command{
		Use:     "list VM",
		Aliases: []string{"ls"},
		Short:   "List a VM's snapshots",
		Args:    exactArgs("VM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			sns, err := c.Snapshots(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if sns == nil {
				sns = []api.Snapshot{}
			}
			if a.jsonOutput() {
				return printJSON(a.stdout, sns)
			}
			return writeSnapshotTable(a.stdout, sns)
		},
	}
	revert := &cobra.Command{
		Use:   "revert VM NAME",
		Short: "Bring a VM back to a snapshot (its settings too)",
		Args:  exactArgs("VM", "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			vm, err := c.RevertSnapshot(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return printJSON(a.stdout, vm)
			}
			_, err = fmt.Fprintf(a.stdout, "%s: reverted to %s; %s\n", vm.Name, args[1], vm.State)
			return err
		},
	}
	del := &cobra.Command{
		Use:     "delete VM NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a snapshot (the others stay)",
		Args:    exactArgs("VM", "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return c.DeleteSnapshot(cmd.Context(), args[0], args[1])
		},
	}
	cmd.AddCommand(create, list, revert, del)
	return cmd
}

// writeSnapshotTable writes the table of lq vm snapshot list.
func writeSnapshotTable(w io.Writer, sns []api.Snapshot) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tCREATED\tMEMORY\tQUIESCED\tVM STATE\tCPUS\tRAM\tVOLUMES\tMACHINE")
	for _, s := range sns {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", s.Name, dash(formatTime(s.CreatedAt)), yesNo(s.Memory),
			yesNo(s.Quiesced), dash(s.VMState), s.CPUs, formatMiB(s.MemoryMiB), dash(strings.Join(s.Disks, ",")), dash(s.Machine))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func newVMCloneCmd(a *app) *cobra.Command {
	var linked, start bool
	cmd := &cobra.Command{
		Use:   "clone VM NEW [--linked] [--start]",
		Short: "Copy a VM: a full copy of its disk, or (--linked, VM stopped) an overlay on its frozen disk",
		Args:  exactArgs("VM", "NEW"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			vm, err := c.CloneVM(cmd.Context(), args[0], api.CloneVMRequest{Name: args[1], Linked: linked, Start: start})
			if err != nil {
				return err
			}
			return a.printVM(vm)
		},
	}
	cmd.Flags().BoolVar(&linked, "linked", false, "share the source's disk as a read-only base (instant; the source must be stopped)")
	cmd.Flags().BoolVar(&start, "start", false, "start the clone")
	return cmd
}

func newVMBackupCmd(a *app) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "backup VM --to FILE",
		Short: "Write a standalone qcow2 copy of a VM's disk (it keeps running)",
		Args:  exactArgs("VM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageErrorf("--to FILE is required (inside one of lqd's --backup-dir directories)")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			b, err := c.BackupVM(cmd.Context(), args[0], to)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return printJSON(a.stdout, b)
			}
			var l kvList
			l.add("vm", b.VM)
			l.add("path", b.Path)
			l.add("size", formatBytes(b.Size))
			l.add("virtual_size", formatBytes(b.VirtualSize))
			l.add("live", yesNo(b.Live))
			l.add("quiesced", yesNo(b.Quiesced))
			l.add("duration", (time.Duration(b.DurationMS) * time.Millisecond).String())
			return l.write(a.stdout)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the backup FILE (must not exist)")
	return cmd
}

func newVMRestoreCmd(a *app) *cobra.Command {
	var from, image string
	var start bool
	cmd := &cobra.Command{
		Use:   "restore NEW --from FILE [--image IMG] [--start]",
		Short: "Create a VM from a backup",
		Args:  exactArgs("NEW"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" {
				return usageErrorf("--from FILE is required")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			vm, err := c.RestoreVM(cmd.Context(), api.RestoreVMRequest{Name: args[0], From: from, Image: image, Start: start})
			if err != nil {
				return err
			}
			return a.printVM(vm)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the backup FILE")
	cmd.Flags().StringVar(&image, "image", "", "the image the VM boots like (default: from the backup's metadata)")
	cmd.Flags().BoolVar(&start, "start", false, "start the restored VM")
	return cmd
}

func newImageCreateFromVMCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "create-from-vm NAME VM",
		Short: "Make a reusable base image from a stopped VM's disk",
		Args:  exactArgs("NAME", "VM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			img, err := c.ImageFromVM(cmd.Context(), api.ImageFromVMRequest{Name: args[0], VM: args[1]})
			if err != nil {
				return err
			}
			return a.printImage(img)
		},
	}
}

// formatPort renders a root port index as qemu names it.
func formatPort(p int) string { return "rp" + strconv.Itoa(p) }
