// Command lq is the command-line client of lqd, limiquantix's host daemon: it manages VMs
// and images through lqd's REST API (see package api).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/limiquantix/limiquantix/api"
	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// app is one invocation of lq: its I/O, environment and global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	// Global flags.
	url, token, output string

	// resolvedURL is where requests went, for error hints; set by client.
	resolvedURL string
}

// run executes lq with args (without the program name) and returns its exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRootCmd(a)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	return a.exitCode(ctx, cmd, err)
}

// Exit statuses besides a guest command's own.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// usageError is a mistake in how lq was called; it exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitStatus ends lq with a given status and no message (lq vm exec passes on the guest's).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// exitCode reports err on stderr and maps it to lq's exit status.
func (a *app) exitCode(ctx context.Context, cmd *cobra.Command, err error) int {
	if err == nil {
		return exitOK
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		fmt.Fprintln(a.stderr, "lq: interrupted")
		return exitInterrupted
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "lq: ") { // api.APIError carries the prefix already
		msg = "lq: " + msg
	}
	if errors.Is(err, syscall.ECONNREFUSED) && a.resolvedURL != "" {
		msg += fmt.Sprintf(" (is lqd running and listening at %s?)", a.resolvedURL)
	}
	fmt.Fprintln(a.stderr, msg)
	var ue usageError
	if errors.As(err, &ue) {
		if cmd == nil {
			cmd = &cobra.Command{Use: "lq"}
		}
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	}
	return exitError
}

// client returns an API client for the configured lqd.
func (a *app) client() (*api.Client, error) {
	cfg, err := resolveConfig(a.url, a.token, a.getenv)
	if err != nil {
		return nil, err
	}
	a.resolvedURL = cfg.URL
	return api.NewClient(cfg.URL, cfg.Token), nil
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "lq",
		Short:         "Manage limiquantix VMs and images through lqd",
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          groupArgs,
		RunE:          groupRun,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if a.output != outputTable && a.output != outputJSON {
				return usageErrorf("--output must be %s or %s, not %q", outputTable, outputJSON, a.output)
			}
			return nil
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	pf := root.PersistentFlags()
	pf.StringVar(&a.url, "url", "", "lqd's URL (env LQ_URL; default: $LQ_DATA_DIR/api.url, else "+defaultURL+")")
	pf.StringVar(&a.token, "token", "", "API token (env LQ_TOKEN; default: $LQ_DATA_DIR/admin.token)")
	pf.StringVarP(&a.output, "output", "o", outputTable, "output format: table or json")

	root.AddCommand(
		newHostCmd(a),
		newVMCmd(a),
		newImageCmd(a),
		newPoolCmd(a), newVolumeCmd(a),
		newNetworkCmd(a), newSGCmd(a),
		newEventsCmd(a),
		newVersionCmd(a),
	)
	return root
}

// groupArgs rejects unknown subcommands of a command that only groups others.
func groupArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return nil
}

// groupRun shows a group command's help.
func groupRun(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// exactArgs is cobra.ExactArgs naming the arguments and reporting a usage error.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == len(names):
			return nil
		case len(names) == 0:
			return usageErrorf("%s takes no arguments; got %q", subcommand(cmd), args)
		default:
			return usageErrorf("%s takes %s; got %d argument(s)", subcommand(cmd), strings.Join(names, " "), len(args))
		}
	}
}

// subcommand names cmd without the program name, e.g. "vm show", for messages that get
// the "lq: " prefix anyway.
func subcommand(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}
