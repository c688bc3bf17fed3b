package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"

	"github.com/limiquantix/limiquantix/api"
	"github.com/spf13/cobra"
)

func newHostCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "host",
		Short: "Show facts about the host lqd runs on",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			h, err := c.Host(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return printJSON(a.stdout, h)
			}
			var l kvList
			l.add("name", h.Name)
			l.add("version", h.Version)
			l.add("qemu_version", h.QEMUVersion)
			accel := h.Accel
			if h.AccelReason != "" {
				accel += " (" + h.AccelReason + ")"
			}
			l.add("accel", accel)
			l.add("cpus", strconv.Itoa(h.CPUs))
			l.add("memory", formatBytes(h.MemoryBytes))
			l.add("vms", fmt.Sprintf("%d (%d running)", h.VMs, h.VMsRunning))
			for _, p := range h.Pools {
				l.add("pool "+p.Name, fmt.Sprintf("%s: %s free of %s (%s used)",
					p.Path, formatBytes(p.Free), formatBytes(p.Total), formatBytes(p.Used)))
			}
			return l.write(a.stdout)
		},
	}
}

func newEventsCmd(a *app) *cobra.Command {
	var (
		after int64
		limit int
	)
	cmd := &cobra.Command{
		Use:   "events [--after ID] [--limit N]",
		Short: "Show the host's event log",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			evs, err := c.Events(cmd.Context(), after, limit)
			if err != nil {
				return err
			}
			if evs == nil {
				evs = []api.Event{}
			}
			if a.jsonOutput() {
				return printJSON(a.stdout, evs)
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "ID\tTIME\tTYPE\tVM\tMESSAGE")
			for _, e := range evs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.ID, formatTime(e.Time), e.Type, dash(e.VM), e.Message)
			}
			if err := tw.Flush(); err != nil {
				return fmt.Errorf("write output: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&after, "after", 0, "show only events with an ID above this")
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most N events (default: lqd's)")
	return cmd
}

// versionInfo is lq's build, as lq version -o json prints it.
type versionInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	GoVersion string `json:"go_version"`
}

// buildVersion reads lq's version from the build information Go stamps into binaries.
func buildVersion() versionInfo {
	v := versionInfo{Version: "dev", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v.Revision = s.Value
		}
	}
	return v
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print lq's version",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := buildVersion()
			if a.jsonOutput() {
				return printJSON(a.stdout, v)
			}
			s := "lq " + v.Version
			if v.Revision != "" {
				s += " (" + v.Revision + ")"
			}
			_, err := fmt.Fprintf(a.stdout, "%s %s\n", s, v.GoVersion)
			return err
		},
	}
}
