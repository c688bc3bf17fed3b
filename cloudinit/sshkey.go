package cloudinit

import (
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
)

// ValidateSSHKey checks that k is a single OpenSSH authorized_keys line of the
// form "<type> <base64 blob> [comment]" with a supported key type, and that the
// blob decodes and names the same type. Surrounding whitespace is ignored.
// Options prefixes (command="...", from="...") are not accepted.
func ValidateSSHKey(k string) error {
	_, err := parseSSHKey("ssh-key", k)
	return err
}

// parseSSHKey validates k and returns its identity, "<type> <blob>", which is
// what deduplication compares (comments do not make a key different). field
// names k in errors.
func parseSSHKey(field, k string) (string, error) {
	k = strings.TrimSpace(k)
	if k == "" {
		return "", invalid(field, "empty key", nil)
	}
	if strings.ContainsAny(k, "\r\n") {
		return "", invalid(field, "must be a single line", nil)
	}
	f := strings.Fields(k)
	if !supportedKeyType(f[0]) {
		return "", invalid(field, "unsupported key type "+quoteShort(f[0])+
			" (want ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521, "+
			"sk-ssh-ed25519@openssh.com or sk-ecdsa-sha2-nistp256@openssh.com)", nil)
	}
	if len(f) < 2 {
		return "", invalid(field, "missing base64 key data after "+f[0], nil)
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return "", invalid(field, "key data is not valid base64", err)
	}
	// The blob starts with the key type as an SSH string: uint32 length, bytes.
	if len(blob) < 4 {
		return "", invalid(field, "key data too short", nil)
	}
	n := binary.BigEndian.Uint32(blob)
	if uint64(n) > uint64(len(blob)-4) || string(blob[4:4+n]) != f[0] {
		return "", invalid(field, "key data does not match key type "+f[0], nil)
	}
	return f[0] + " " + f[1], nil
}

func supportedKeyType(t string) bool {
	switch t {
	case "ssh-ed25519",
		"ssh-rsa",
		"ecdsa-sha2-nistp256",
		"ecdsa-sha2-nistp384",
		"ecdsa-sha2-nistp521",
		"sk-ssh-ed25519@openssh.com",
		"sk-ecdsa-sha2-nistp256@openssh.com":
		return true
	}
	return false
}

// quoteShort quotes s for an error message, truncated so that a pasted blob
// does not flood the message.
func quoteShort(s string) string {
	const max = 40
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
