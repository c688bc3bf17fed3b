package cloudinit

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
)

// mimeBoundary is fixed so that rendered seeds (and goldens) are stable. A
// numeric suffix is added in the unlikely case that a part contains it.
const mimeBoundary = "==limiquantix-seed-boundary=="

// mimePart is one part of a multipart/mixed user-data.
type mimePart struct {
	contentType string // e.g. "text/cloud-config"
	filename    string // cloud-init names the saved part after it
	body        []byte
}

// multipartUserData renders parts as the MIME multipart/mixed user-data that
// cloud-init splits into its handlers (text/cloud-config,
// text/x-shellscript, ...). Lines end in LF, as cloud-init's own make-mime
// writes them. Parts that are plain 7-bit text stay readable; others are
// base64-encoded so that any bytes survive.
func multipartUserData(parts []mimePart) []byte {
	boundary := pickBoundary(parts)
	var b bytes.Buffer
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\n", boundary)
	b.WriteString("MIME-Version: 1.0\n\n")
	for _, p := range parts {
		fmt.Fprintf(&b, "--%s\n", boundary)
		fmt.Fprintf(&b, "Content-Type: %s; charset=\"utf-8\"\n", p.contentType)
		b.WriteString("MIME-Version: 1.0\n")
		body := p.body
		if is7bit(body) {
			b.WriteString("Content-Transfer-Encoding: 7bit\n")
		} else {
			b.WriteString("Content-Transfer-Encoding: base64\n")
			body = base64Lines(body)
		}
		fmt.Fprintf(&b, "Content-Disposition: attachment; filename=%s\n\n", strconv.Quote(p.filename))
		// The line end before a boundary belongs to the boundary, so the
		// body keeps its own trailing newline (or lack of one).
		b.Write(body)
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "--%s--\n", boundary)
	return b.Bytes()
}

func pickBoundary(parts []mimePart) string {
	for i := 0; ; i++ {
		boundary := mimeBoundary
		if i > 0 {
			boundary += strconv.Itoa(i)
		}
		clash := false
		for _, p := range parts {
			if bytes.Contains(p.body, []byte("--"+boundary)) {
				clash = true
				break
			}
		}
		if !clash {
			return boundary
		}
	}
}

// is7bit reports whether body can go into a part as-is under RFC 2045 7bit:
// printable ASCII, tabs and LF line ends, lines of at most 998 bytes.
func is7bit(body []byte) bool {
	line := 0
	for _, c := range body {
		switch {
		case c == '\n':
			line = 0
			continue
		case c == '\t' || (c >= 0x20 && c < 0x7f):
		default:
			return false
		}
		line++
		if line > 998 {
			return false
		}
	}
	return true
}

// base64Lines encodes body as base64 in lines of 76 characters.
func base64Lines(body []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(body)
	var b bytes.Buffer
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\n")
	return b.Bytes()
}
