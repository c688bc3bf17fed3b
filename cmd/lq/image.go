package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/limiquantix/limiquantix/api"
	"github.com/spf13/cobra"
)

func newImageCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage the image library",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(
		newImageImportCmd(a),
		newImageListCmd(a),
		newImageShowCmd(a),
		newImageDeleteCmd(a),
		newImageCreateFromVMCmd(a),
	)
	return cmd
}

func newImageImportCmd(a *app) *cobra.Command {
	var kernel, initrd, cmdline, format string
	cmd := &cobra.Command{
		Use:   "import NAME [FILE] [--kernel F] [--initrd F] [--cmdline S] [--format qcow2|raw]",
		Short: "Upload a disk image (FILE, - for stdin) and/or a kernel for direct boot",
		Long: "Upload an image to lqd's library. FILE is the disk (qcow2 or raw; - reads stdin).\n" +
			"With --kernel (and optionally --initrd and --cmdline) VMs boot that kernel directly;\n" +
			"a kernel-only image has no FILE and lqd gives it a small empty disk.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageErrorf("%s takes NAME and an optional FILE; got %d argument(s)", subcommand(cmd), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			up := api.ImageUpload{Name: args[0], Format: format, Cmdline: cmdline}
			if len(args) < 2 && kernel == "" {
				return usageErrorf("give a disk FILE, --kernel, or both")
			}
			if initrd != "" && kernel == "" {
				return usageErrorf("--initrd needs --kernel")
			}
			if cmdline != "" && kernel == "" {
				return usageErrorf("--cmdline needs --kernel")
			}
			if kernel == "-" || initrd == "-" {
				return usageErrorf("only the disk FILE can be - (stdin)")
			}
			var files []io.Closer
			defer func() {
				for _, f := range files {
					f.Close()
				}
			}()
			open := func(flag, path string) (io.Reader, error) {
				if path == "-" {
					return a.stdin, nil
				}
				f, err := os.Open(expandHome(path))
				if err != nil {
					return nil, fmt.Errorf("open %s: %w", flag, err)
				}
				files = append(files, f)
				return f, nil
			}
			var err error
			if len(args) == 2 {
				if up.Disk, err = open("disk", args[1]); err != nil {
					return err
				}
			}
			if kernel != "" {
				if up.Kernel, err = open("--kernel", kernel); err != nil {
					return err
				}
			}
			if initrd != "" {
				if up.Initrd, err = open("--initrd", initrd); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			img, err := c.ImportImage(cmd.Context(), up)
			if err != nil {
				return err
			}
			return a.printImage(img)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&kernel, "kernel", "", "kernel FILE for direct boot")
	fl.StringVar(&initrd, "initrd", "", "initrd FILE for direct boot (with --kernel)")
	fl.StringVar(&cmdline, "cmdline", "", "kernel command line (with --kernel)")
	fl.StringVar(&format, "format", "", "disk format, qcow2 or raw (default: detected)")
	return cmd
}

func newImageListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List images",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			imgs, err := c.Images(cmd.Context())
			if err != nil {
				return err
			}
			if imgs == nil {
				imgs = []api.Image{}
			}
			if a.jsonOutput() {
				return printJSON(a.stdout, imgs)
			}
			return writeImageTable(a.stdout, imgs)
		},
	}
}

// writeImageTable writes the table of lq image list, sorted by name.
func writeImageTable(w io.Writer, imgs []api.Image) error {
	imgs = slices.Clone(imgs)
	slices.SortFunc(imgs, func(x, y api.Image) int { return strings.Compare(x.Name, y.Name) })
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tFORMAT\tSIZE\tVIRTUAL SIZE\tKERNEL\tCREATED")
	for _, img := range imgs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", img.Name, dash(img.Format), formatBytes(img.Size),
			formatBytes(img.VirtualSize), yesNo(img.Kernel), dash(formatTime(img.CreatedAt)))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func newImageShowCmd(a *app) *cobra.Command {
	return showCmd(a, "Show an image", (*api.Client).Image, a.printImage)
}

// printImage writes img as JSON or as key: value lines.
func (a *app) printImage(img api.Image) error {
	if a.jsonOutput() {
		return printJSON(a.stdout, img)
	}
	var l kvList
	l.add("name", img.Name)
	l.add("format", img.Format)
	l.add("size", formatBytes(img.Size))
	l.add("virtual_size", formatBytes(img.VirtualSize))
	l.add("sha256", img.SHA256)
	l.add("kernel", yesNo(img.Kernel))
	l.add("initrd", yesNo(img.Initrd))
	l.add("cmdline", img.Cmdline)
	l.add("created_at", formatTime(img.CreatedAt))
	return l.write(a.stdout)
}

func newImageDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete an image",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return c.DeleteImage(cmd.Context(), args[0])
		},
	}
}
