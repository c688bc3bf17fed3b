package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/limiquantix/limiquantix/api"
	"github.com/spf13/cobra"
)

func newVMCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vm",
		Short: "Manage virtual machines",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(
		newVMListCmd(a),
		newVMShowCmd(a),
		newVMCreateCmd(a),
		newVMSetCmd(a),
		newVMDeleteCmd(a),
		newVMActionCmd(a, "start", "Start a VM"),
		newVMActionCmd(a, "stop", "Stop a VM at once (like pulling the plug)"),
		newVMActionCmd(a, "reset", "Reset a VM (like pressing the reset button)"),
		newVMActionCmd(a, "pause", "Pause a VM's vCPUs"),
		newVMActionCmd(a, "resume", "Resume a paused VM"),
		newVMShutdownCmd(a, "shutdown", "Shut a VM down through its guest agent, else ACPI; stop it by force after --timeout"),
		newVMShutdownCmd(a, "reboot", "Reboot a VM through its guest agent, else shut it down (ACPI, force after --timeout) and start it"),
		newVMConsoleLogCmd(a),
		newVMExecCmd(a),
		newVMNICCmd(a),
		newVMConsoleCmd(a),
	)
	cmd.AddCommand(vmStorageCmds(a)...)
	return cmd
}

func newVMListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List VMs",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			vms, err := c.VMs(cmd.Context())
			if err != nil {
				return err
			}
			if vms == nil {
				vms = []api.VM{}
			}
			if a.jsonOutput() {
				return printJSON(a.stdout, vms)
			}
			return writeVMTable(a.stdout, vms, time.Now())
		},
	}
}

// writeVMTable writes the table of lq vm list, sorted by name.
func writeVMTable(w io.Writer, vms []api.VM, now time.Time) error {
	vms = slices.Clone(vms)
	slices.SortFunc(vms, func(x, y api.VM) int { return strings.Compare(x.Name, y.Name) })
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tSTATE\tCPUS\tMEMORY\tIMAGE\tUPTIME\tIPS")
	for _, vm := range vms {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n",
			vm.Name, dash(vm.State), vm.CPUs, formatMiB(vm.MemoryMiB), dash(vm.Image),
			dash(vmUptime(vm, now)), dash(strings.Join(vmIPs(vm), ",")))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func newVMShowCmd(a *app) *cobra.Command {
	return showCmd(a, "Show everything about a VM", (*api.Client).VM, a.printVM)
}

// printVM writes vm as JSON or as lq vm show's key: value lines.
func (a *app) printVM(vm api.VM) error {
	if a.jsonOutput() {
		return printJSON(a.stdout, vm)
	}
	return writeVMDetails(a.stdout, vm, time.Now())
}

// writeVMDetails writes the key: value lines of lq vm show.
func writeVMDetails(w io.Writer, vm api.VM, now time.Time) error {
	var l kvList
	l.add("name", vm.Name)
	l.add("uuid", vm.UUID)
	l.add("host", vm.Host)
	l.add("state", vm.State)
	l.add("last_error", vm.LastError)
	l.add("cpus", strconv.Itoa(vm.CPUs))
	l.add("memory", formatMiB(vm.MemoryMiB))
	if vm.DiskGiB > 0 {
		l.add("disk", strconv.Itoa(vm.DiskGiB)+"GiB")
	}
	l.add("image", vm.Image)
	for _, d := range vm.Disks { // attached volumes (lq vm disk)
		l.add("volume "+d.Volume, fmt.Sprintf("%s on %s", d.Path, formatPort(d.Port)))
	}
	l.add("restart_policy", vm.RestartPolicy)
	l.add("autostart", strconv.FormatBool(vm.Autostart))
	l.add("accel", vm.Accel)
	if vm.PID != 0 {
		l.add("pid", strconv.Itoa(vm.PID))
	}
	if vm.StartedAt != nil {
		l.add("started_at", formatTime(*vm.StartedAt))
	}
	l.add("uptime", vmUptime(vm, now))
	l.add("created_at", formatTime(vm.CreatedAt))
	for _, k := range vm.SSHKeys {
		l.add("ssh_key", k)
	}
	if vm.UserData != "" {
		l.add("user_data", fmt.Sprintf("%d bytes (see -o json)", len(vm.UserData)))
	}
	addNICs(&l, vm.NICs)
	if g := vm.Guest; g != nil {
		l.add("guest_agent", g.AgentVersion)
		if g.OS != nil {
			l.add("guest_os", firstNonEmpty(g.OS.PrettyName, strings.TrimSpace(g.OS.Name+" "+g.OS.Version)))
			l.add("guest_kernel", g.OS.KernelRelease)
			l.add("guest_arch", g.OS.Machine)
		}
		l.add("guest_hostname", g.Hostname)
		for _, iface := range g.Interfaces {
			v := dash(strings.Join(iface.IPs, ", "))
			if iface.MAC != "" {
				v = iface.MAC + " " + v
			}
			l.add("guest_interface "+iface.Name, v)
		}
		l.add("guest_updated_at", formatTime(g.UpdatedAt))
	}
	return l.write(w)
}

// vmSpecFlags are the flags lq vm create and lq vm set share.
type vmSpecFlags struct {
	cpus, memory, disk int
	sshKeys            []string
	userData           string
	restartPolicy      string
	autostart          bool
}

func (f *vmSpecFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&f.cpus, "cpus", 0, "number of vCPUs (default 1)")
	fl.IntVar(&f.memory, "memory", 0, "memory in MiB (default 512)")
	fl.IntVar(&f.disk, "disk", 0, "disk size in GiB (default: the image's size)")
	fl.StringArrayVar(&f.sshKeys, "ssh-key", nil, "public key FILE (one key a line), or a key itself (ssh-..., ecdsa-..., sk-...); repeatable")
	fl.StringVar(&f.userData, "user-data", "", "cloud-init user-data FILE (- for stdin)")
	fl.StringVar(&f.restartPolicy, "restart-policy", "", "never, on-crash or always (default never)")
	fl.BoolVar(&f.autostart, "autostart", false, "start the VM when lqd starts")
}

func newVMCreateCmd(a *app) *cobra.Command {
	var (
		spec  vmSpecFlags
		nics  nicFlags
		image string
		start bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME --image IMG",
		Short: "Create a VM from an image",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if image == "" {
				return usageErrorf("--image is required")
			}
			req := api.CreateVMRequest{
				Name:          args[0],
				Image:         image,
				CPUs:          spec.cpus,
				MemoryMiB:     spec.memory,
				DiskGiB:       spec.disk,
				RestartPolicy: spec.restartPolicy,
				Autostart:     spec.autostart,
				Start:         start,
			}
			var err error
			if req.NICs, err = nics.requests(); err != nil {
				return err
			}
			keys, err := parseSSHKeys(spec.sshKeys, a.readUserFile)
			if err != nil {
				return err
			}
			req.SSHKeys = keys
			if spec.userData != "" {
				b, err := a.readUserFile(spec.userData)
				if err != nil {
					return fmt.Errorf("read --user-data: %w", err)
				}
				req.UserData = string(b)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			vm, err := c.CreateVM(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.printVM(vm)
		},
	}
	spec.register(cmd)
	nics.register(cmd)
	cmd.Flags().StringVar(&image, "image", "", "image to create the VM's disk from (required)")
	cmd.Flags().BoolVar(&start, "start", false, "start the VM once created")
	return cmd
}

func newVMSetCmd(a *app) *cobra.Command {
	var spec vmSpecFlags
	cmd := &cobra.Command{
		Use:   "set NAME [flags]",
		Short: "Change a VM's settings; only the flags given change (CPUs, memory and disk only while stopped)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := a.updateRequest(cmd, spec)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			vm, err := c.UpdateVM(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return a.printVM(vm)
		},
	}
	spec.register(cmd)
	return cmd
}

// updateRequest builds a PATCH body from the flags the user gave.
func (a *app) updateRequest(cmd *cobra.Command, spec vmSpecFlags) (api.UpdateVMRequest, error) {
	var req api.UpdateVMRequest
	changed := cmd.Flags().Changed
	if changed("cpus") {
		req.CPUs = &spec.cpus
	}
	if changed("memory") {
		req.MemoryMiB = &spec.memory
	}
	if changed("disk") {
		req.DiskGiB = &spec.disk
	}
	if changed("ssh-key") {
		keys, err := parseSSHKeys(spec.sshKeys, a.readUserFile)
		if err != nil {
			return req, err
		}
		req.SSHKeys = &keys
	}
	if changed("user-data") {
		var ud string
		if spec.userData != "" {
			b, err := a.readUserFile(spec.userData)
			if err != nil {
				return req, fmt.Errorf("read --user-data: %w", err)
			}
			ud = string(b)
		}
		req.UserData = &ud
	}
	if changed("restart-policy") {
		req.RestartPolicy = &spec.restartPolicy
	}
	if changed("autostart") {
		req.Autostart = &spec.autostart
	}
	if req == (api.UpdateVMRequest{}) {
		return req, usageErrorf("nothing to change: give at least one of --cpus, --memory, --disk, --ssh-key, --user-data, --restart-policy, --autostart")
	}
	return req, nil
}

// parseSSHKeys turns --ssh-key values into keys: a value that looks like a key is taken
// as is; anything else is a file of keys, one a line (blank lines and # comments skipped).
func parseSSHKeys(values []string, readFile func(string) ([]byte, error)) ([]string, error) {
	var keys []string
	for _, v := range values {
		v = strings.TrimSpace(v)
		if looksLikeSSHKey(v) {
			keys = append(keys, v)
			continue
		}
		b, err := readFile(v)
		if err != nil {
			return nil, fmt.Errorf("read --ssh-key: %w", err)
		}
		n := 0
		for line := range strings.Lines(string(b)) {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			keys = append(keys, line)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("read --ssh-key: %s holds no keys", v)
		}
	}
	return keys, nil
}

// looksLikeSSHKey reports whether a --ssh-key value is a key rather than a file name.
func looksLikeSSHKey(s string) bool {
	for _, p := range []string{"ssh-", "ecdsa-", "sk-"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func newVMDeleteCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a VM and its disk",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return c.DeleteVM(cmd.Context(), args[0], force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "stop the VM first if it runs")
	return cmd
}

func newVMActionCmd(a *app, action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " NAME",
		Short: short,
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.vmAction(cmd, args[0], action, nil)
		},
	}
}

func newVMShutdownCmd(a *app, action, short string) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   action + " NAME",
		Short: short,
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout < 0 {
				return usageErrorf("--timeout must not be negative")
			}
			return a.vmAction(cmd, args[0], action, api.ShutdownRequest{TimeoutSeconds: timeout})
		},
	}
	cmd.Flags().IntVar(&timeout, "timeout", 60, "seconds to wait for the guest before forcing")
	return cmd
}

// vmAction runs a lifecycle action and reports the VM's state afterwards.
func (a *app) vmAction(cmd *cobra.Command, name, action string, body any) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	vm, err := c.VMAction(cmd.Context(), name, action, body)
	if err != nil {
		return err
	}
	if a.jsonOutput() {
		return printJSON(a.stdout, vm)
	}
	_, err = fmt.Fprintf(a.stdout, "%s: %s\n", vm.Name, vm.State)
	return err
}

func newVMConsoleLogCmd(a *app) *cobra.Command {
	var tail int64
	cmd := &cobra.Command{
		Use:   "console-log NAME",
		Short: "Print a VM's serial console output so far",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			b, err := c.ConsoleLog(cmd.Context(), args[0], tail)
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(b)
			return err
		},
	}
	cmd.Flags().Int64Var(&tail, "tail", 0, "print only the last BYTES bytes")
	return cmd
}

func newVMExecCmd(a *app) *cobra.Command {
	var (
		timeout int
		stdin   bool
	)
	cmd := &cobra.Command{
		Use:   "exec NAME [--timeout S] [--stdin] -- CMD [ARGS...]",
		Short: "Run a command in a VM through its guest agent",
		Long: "Run a command in a VM through the qemu-guest-agent. Its stdout and stderr are\n" +
			"printed, and lq exits with its exit status (128+N if killed by signal N).",
		Args: func(cmd *cobra.Command, args []string) error {
			_, _, err := splitExecArgs(args, cmd.ArgsLenAtDash())
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name, argv, _ := splitExecArgs(args, cmd.ArgsLenAtDash())
			req := api.ExecRequest{Command: argv, TimeoutSeconds: timeout}
			if stdin {
				b, err := io.ReadAll(a.stdin)
				if err != nil {
					return fmt.Errorf("read stdin: %w", err)
				}
				req.Input = b
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.Exec(cmd.Context(), name, req)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				if err := printJSON(a.stdout, res); err != nil {
					return err
				}
			} else {
				if _, err := a.stdout.Write(res.Stdout); err != nil {
					return fmt.Errorf("write stdout: %w", err)
				}
				if _, err := a.stderr.Write(res.Stderr); err != nil {
					return fmt.Errorf("write stderr: %w", err)
				}
			}
			if code := execExitCode(res); code != 0 {
				return exitStatus(code)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&timeout, "timeout", 0, "seconds to let the command run (default: lqd's)")
	cmd.Flags().BoolVar(&stdin, "stdin", false, "send lq's stdin to the command")
	return cmd
}

// splitExecArgs splits lq vm exec's arguments into the VM name and the guest command.
// dash is cobra's ArgsLenAtDash: -1 when there was no --.
func splitExecArgs(args []string, dash int) (string, []string, error) {
	if len(args) == 0 || dash == 0 {
		return "", nil, usageErrorf("exec needs a VM name: lq vm exec NAME -- CMD [ARGS...]")
	}
	if dash > 1 {
		return "", nil, usageErrorf("exec takes one VM name before --, got %d arguments", dash)
	}
	if len(args) < 2 {
		return "", nil, usageErrorf("exec needs a command: lq vm exec NAME -- CMD [ARGS...]")
	}
	return args[0], args[1:], nil
}

// execExitCode maps a guest command's result to lq's exit status, as a shell does.
func execExitCode(res api.ExecResult) int {
	if res.Signal > 0 {
		return 128 + res.Signal
	}
	return res.ExitCode
}
