package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// escapeByte ends an interactive console session: Ctrl+] as in telnet and virsh console.
const escapeByte = 0x1d

// newVMConsoleCmd is `lq vm console NAME`: the VM's serial console in the terminal,
// through the same ticketed WebSocket the web UI uses. Others may watch at the same time.
func newVMConsoleCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "console NAME",
		Short: "Attach to a VM's serial console (Ctrl+] to detach)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			tk, err := c.ConsoleTicket(ctx, args[0])
			if err != nil {
				return err
			}
			url := "ws" + strings.TrimPrefix(strings.TrimSuffix(c.BaseURL, "/"), "http") + tk.SerialURL
			ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: c.HTTPClient})
			if err != nil {
				return fmt.Errorf("serial console of %s: %w", args[0], err)
			}
			defer ws.CloseNow()
			ws.SetReadLimit(-1)
			in, ok := a.stdin.(*os.File)
			if ok && term.IsTerminal(int(in.Fd())) {
				old, err := term.MakeRaw(int(in.Fd()))
				if err != nil {
					return err
				}
				defer term.Restore(int(in.Fd()), old)
				fmt.Fprintf(a.stderr, "Connected to %s's serial console; Ctrl+] to detach.\r\n", args[0])
			}
			done := make(chan error, 2)
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := a.stdin.Read(buf)
					if i := strings.IndexByte(string(buf[:n]), escapeByte); i >= 0 {
						ws.Write(ctx, websocket.MessageBinary, buf[:i])
						done <- nil
						return
					}
					if n > 0 {
						if werr := ws.Write(ctx, websocket.MessageBinary, buf[:n]); werr != nil {
							done <- werr
							return
						}
					}
					if err != nil {
						if errors.Is(err, io.EOF) {
							err = nil
						}
						done <- err
						return
					}
				}
			}()
			go func() {
				for {
					_, b, err := ws.Read(ctx)
					if err != nil {
						if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
							err = nil
						}
						done <- err
						return
					}
					a.stdout.Write(b)
				}
			}()
			err = <-done
			ws.Close(websocket.StatusNormalClosure, "detached")
			return err
		},
	}
}
