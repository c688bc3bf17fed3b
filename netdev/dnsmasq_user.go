package netdev

import (
	"os/user"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// pickUser returns d.User, else "dnsmasq" if that user exists and can reach dir, else
// "root" and why.
func (d *DNSMasq) pickUser(dir string) (name, why string) {
	if d.User != "" {
		return d.User, ""
	}
	u, err := user.Lookup("dnsmasq")
	if err != nil {
		return "root", "no user dnsmasq"
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return "root", "user dnsmasq has a non-numeric id"
	}
	if blocked := unsearchable(dir, uint32(uid), uint32(gid)); blocked != "" {
		return "root", "user dnsmasq cannot search " + blocked
	}
	return "dnsmasq", ""
}

// unsearchable returns the first of dir and its parents that uid:gid may not search, or "".
// Supplementary groups are not considered, so it errs towards "".
func unsearchable(dir string, uid, gid uint32) string {
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return p
		}
		var bit uint32 = unix.S_IXOTH
		switch {
		case st.Uid == uid:
			bit = unix.S_IXUSR
		case st.Gid == gid:
			bit = unix.S_IXGRP
		}
		if st.Mode&bit == 0 {
			return p
		}
		if p == "/" {
			return ""
		}
	}
}
