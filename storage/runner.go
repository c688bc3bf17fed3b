package storage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Runner runs an external command (qemu-img) and returns its stdout.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) (stdout []byte, err error)
}

// ExecRunner runs commands with os/exec. On failure its error names the command line
// and includes the command's trimmed stderr.
type ExecRunner struct{}

// maxStderr bounds how much stderr an error message carries.
const maxStderr = 4096

// Run implements Runner. Cancelling ctx kills the command.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > maxStderr {
			msg = msg[:maxStderr] + "..."
		}
		line := strings.Join(append([]string{name}, args...), " ")
		if msg == "" {
			return stdout.Bytes(), fmt.Errorf("%s: %w", line, err)
		}
		return stdout.Bytes(), fmt.Errorf("%s: %w: %s", line, err, msg)
	}
	return stdout.Bytes(), nil
}
