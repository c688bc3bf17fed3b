package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/limiquantix/limiquantix/api"
	"github.com/spf13/cobra"
)

// Values of --output.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// jsonOutput reports whether -o json was given.
func (a *app) jsonOutput() bool { return a.output == outputJSON }

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// newTable returns a tabwriter for columns separated by \t; call Flush.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// kvList collects "key: value" lines, written aligned by write.
type kvList struct {
	lines [][2]string
}

// add appends a line, unless value is empty.
func (l *kvList) add(key, value string) {
	if value != "" {
		l.lines = append(l.lines, [2]string{key, value})
	}
}

func (l *kvList) write(w io.Writer) error {
	tw := newTable(w)
	for _, kv := range l.lines {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// dash stands in for an empty table cell, keeping columns countable for scripts.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// formatDuration renders a duration with its two largest units: 45s, 3m12s, 2h5m, 4d3h.
func formatDuration(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s < 0:
		return "0s"
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	default:
		return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
	}
}

// vmUptime is how long vm has run, or "" if it is not running.
func vmUptime(vm api.VM, now time.Time) string {
	switch {
	case vm.UptimeSeconds > 0:
		return formatDuration(time.Duration(vm.UptimeSeconds) * time.Second)
	case vm.StartedAt != nil && !vm.StartedAt.IsZero() && vm.State == "running":
		return formatDuration(now.Sub(*vm.StartedAt))
	default:
		return ""
	}
}

// guestIPs lists the guest's addresses without prefix lengths, leaving out loopback.
func guestIPs(g *api.Guest) []string {
	if g == nil {
		return nil
	}
	var ips []string
	for _, iface := range g.Interfaces {
		for _, ip := range iface.IPs {
			addr, ok := parseAddr(ip)
			if !ok {
				ips = append(ips, ip) // not ours to judge; show as given
				continue
			}
			if addr.IsLoopback() {
				continue
			}
			ips = append(ips, addr.String())
		}
	}
	return ips
}

// parseAddr parses an address in CIDR notation or bare.
func parseAddr(s string) (netip.Addr, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr(), true
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil
}

// formatMiB renders a memory size in MiB as the API counts it: 1024MiB.
func formatMiB(mib int) string { return strconv.Itoa(mib) + "MiB" }

// formatBytes renders a byte count in binary units: 512B, 1.5KiB, 20.0GiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// formatTime renders a timestamp for people, in local time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// readUserFile reads a file named on the command line: "-" is stdin, and a leading ~/ is
// the home directory.
func (a *app) readUserFile(path string) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(expandHome(path))
	if err != nil {
		return nil, err // *PathError names the file
	}
	return b, nil
}

// expandHome replaces a leading ~/ by the home directory.
func expandHome(path string) string {
	rest, ok := strings.CutPrefix(path, "~/")
	if !ok {
		return path
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return path
	}
	return filepath.Join(home, rest)
}

// showCmd is a `show NAME` command: fetch one object by name and print it (as a table, or
// as JSON with -o json).
func showCmd[T any](a *app, short string, get func(*api.Client, context.Context, string) (T, error), print func(T) error) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: short,
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			v, err := get(c, cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return print(v)
		},
	}
}
