package storage

import (
	"fmt"
	"io"
	"os"
	"regexp"
)

// nameRE is the API's rule for user-chosen names; image names become file names.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// idRE admits VM uuids and similar ids, never a path.
var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)

func validName(s string) bool { return nameRE.MatchString(s) }
func validID(s string) bool   { return idRE.MatchString(s) }

// maxCmdline is the longest kernel command line accepted (x86 COMMAND_LINE_SIZE is 2048
// on old kernels, larger on new ones; 4096 is the library's bound).
const maxCmdline = 4096

// checkCmdline refuses command lines that are too long or carry control characters
// (newline, NUL and the like), which could not be passed to qemu's -append intact.
func checkCmdline(s string) error {
	if len(s) > maxCmdline {
		return invalid("cmdline is %d bytes, more than %d", len(s), maxCmdline)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return invalid("cmdline has control character %q at byte %d", c, i)
		}
	}
	return nil
}

// bzImage's setup header carries "HdrS" at offset 0x202 (Documentation/arch/x86/boot.rst).
const (
	bzMagicOffset = 0x202
	bzMagic       = "HdrS"
)

// checkKernel refuses a file that is not an x86 bzImage.
func checkKernel(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	defer f.Close()
	buf := make([]byte, len(bzMagic))
	if _, err := f.ReadAt(buf, bzMagicOffset); err != nil && err != io.EOF {
		return fmt.Errorf("kernel: %w", err)
	}
	if string(buf) != bzMagic {
		return invalid("kernel is not an x86 bzImage (no %q at offset %#x)", bzMagic, bzMagicOffset)
	}
	return nil
}
