package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/limiquantix/limiquantix/api"
	"github.com/spf13/cobra"
)

func newPoolCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pool",
		Short: "Manage storage pools",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(newPoolListCmd(a), newPoolShowCmd(a), newPoolCreateCmd(a), newPoolDeleteCmd(a))
	return cmd
}

func newPoolListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List storage pools: capacity, used, free, volumes",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ps, err := c.Pools(cmd.Context())
			if err != nil {
				return err
			}
			if ps == nil {
				ps = []api.StoragePool{}
			}
			if a.jsonOutput() {
				return printJSON(a.stdout, ps)
			}
			return writePoolTable(a.stdout, ps)
		},
	}
}

// writePoolTable writes the table of lq pool list.
func writePoolTable(w io.Writer, ps []api.StoragePool) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tDRIVER\tPATH\tTOTAL\tUSED\tFREE\tVOLUMES\tALLOCATED")
	for _, p := range ps {
		name := p.Name
		if p.Default {
			name += " (default)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", name, p.Driver, p.Path, formatBytes(p.Total),
			formatBytes(p.Used), formatBytes(p.Free), p.Volumes, formatBytes(p.Allocated))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func (a *app) printPool(p api.StoragePool) error {
	if a.jsonOutput() {
		return printJSON(a.stdout, p)
	}
	var l kvList
	l.add("name", p.Name)
	l.add("driver", p.Driver)
	l.add("path", p.Path)
	l.add("default", yesNo(p.Default))
	l.add("total", formatBytes(p.Total))
	l.add("used", formatBytes(p.Used))
	l.add("free", formatBytes(p.Free))
	l.add("volumes", strconv.Itoa(p.Volumes))
	l.add("allocated", formatBytes(p.Allocated))
	l.add("error", p.Error)
	return l.write(a.stdout)
}

func newPoolShowCmd(a *app) *cobra.Command {
	return showCmd(a, "Show a storage pool", (*api.Client).Pool, a.printPool)
}

func newPoolCreateCmd(a *app) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "create NAME --path DIR",
		Short: "Add a directory pool (a local or NFS-mounted directory)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if path == "" {
				return usageErrorf("--path is required")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			p, err := c.CreatePool(cmd.Context(), api.CreatePoolRequest{Name: args[0], Path: path})
			if err != nil {
				return err
			}
			return a.printPool(p)
		},
	}
	cmd.Flags().StringVar(&path, "path", "", "absolute directory of the pool (made if missing)")
	return cmd
}

func newPoolDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Forget an empty pool (its directory stays)",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return c.DeletePool(cmd.Context(), args[0])
		},
	}
}
