#!/usr/bin/env bash
# build-debian.sh OUTDIR
#
# Builds a Debian 12 (bookworm) cloud guest for limiquantix integration tests,
# meant for *direct kernel boot* (qemu -kernel/-initrd/-append):
#
#   OUTDIR/debian-12.qcow2     ext4 filesystem on the whole disk (no partition
#                              table), label "root", 3 GiB virtual, uncompressed.
#                              Use it as a backing file only (qemu-img create -b).
#   OUTDIR/debian-vmlinuz      the image's kernel (linux-image-cloud-amd64)
#   OUTDIR/debian-initrd.img   the image's initramfs (initramfs-tools, MODULES=most)
#   OUTDIR/debian-cmdline      kernel command line to pass with -append
#
# The guest runs cloud-init (datasource_list [NoCloud, None]: attach a seed ISO
# with volume id "cidata"), qemu-guest-agent (udev-activated when a
# virtserialport named org.qemu.guest_agent.0 exists), openssh-server and
# ifupdown + isc-dhcp-client (dhclient timeout 10 s so boot never hangs on DHCP).
#
# Caching:
#   * If all outputs exist and OUTDIR/.debian.stamp holds this script's sha256,
#     exit 0 immediately.
#   * The freshly debootstrapped rootfs is kept as OUTDIR/.cache/rootfs-KEY.tar
#     (KEY = hash of mirror/suite/package list), and downloaded .debs are kept in
#     OUTDIR/.cache/debs, so editing the customisation part of this script only
#     costs an untar + mke2fs on the next run.
#
# Needs root (debootstrap, chroot, mke2fs -d preserving ownership), debootstrap,
# e2fsprogs (mke2fs >= 1.43 for -d) and qemu-utils. The Debian mirror is parsed
# from the host's apt sources (override with LQ_DEBIAN_MIRROR=URL).
set -euo pipefail

OUTDIR=${1:?usage: build-debian.sh OUTDIR}
SUITE=bookworm
VARIANT=minbase
DISK_SIZE=3G
# root by label so disk order/bus (virtio-blk vs virtio-scsi) does not matter;
# net.ifnames=0 keeps NIC names eth0, eth1, ... in PCI order.
CMDLINE="root=LABEL=root rw console=ttyS0 net.ifnames=0"
# Packages added on top of the minbase set. python3-cffi-backend must be
# listed explicitly or debootstrap fails to configure cloud-init's deps.
INCLUDE=(
	linux-image-cloud-amd64 initramfs-tools kmod
	systemd-sysv udev dbus
	cloud-init python3-cffi-backend
	openssh-server qemu-guest-agent sudo
	ifupdown isc-dhcp-client iproute2 iputils-ping netbase
	e2fsprogs procps less
)

SELF=$(readlink -f "${BASH_SOURCE[0]}")
SELF_SUM=$(sha256sum "$SELF" | cut -d' ' -f1)
OUTPUTS=(debian-12.qcow2 debian-vmlinuz debian-initrd.img debian-cmdline)
STAMP="$OUTDIR/.debian.stamp"

# ---- cache check ------------------------------------------------------------
up_to_date() {
	local f
	[[ -f $STAMP && $(cat "$STAMP") == "$SELF_SUM" ]] || return 1
	for f in "${OUTPUTS[@]}"; do [[ -s $OUTDIR/$f ]] || return 1; done
}
if up_to_date; then
	echo "build-debian: $OUTDIR is up to date"
	exit 0
fi

[[ $(id -u) == 0 ]] || { echo "build-debian: must run as root" >&2; exit 1; }
for tool in debootstrap mke2fs qemu-img chroot tar sha256sum flock; do
	command -v "$tool" >/dev/null || { echo "build-debian: missing $tool" >&2; exit 1; }
done

# ---- mirror discovery -----------------------------------------------------
# Prints the first URI that serves "$SUITE" (exact suite, not -security or
# -updates) from deb822 *.sources files, then classic sources.list files.
find_mirror() {
	local f
	shopt -s nullglob
	for f in /etc/apt/sources.list.d/*.sources; do
		# deb822: stanzas separated by blank lines; fields may be any case.
		awk -v suite="$SUITE" '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && enabled !~ /^(no|false)$/ && (" " suites " ") ~ (" " suite " ") && uris != "") {
					split(uris, u, " "); print u[1]; found = 1; exit
				}
				types = suites = uris = enabled = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			{
				key = tolower($1); sub(/:$/, "", key)
				val = $0; sub(/^[^:]*:[ \t]*/, "", val); gsub(/[ \t]+/, " ", val)
				if (key == "types") types = val
				else if (key == "suites") suites = val
				else if (key == "uris") uris = val
				else if (key == "enabled") enabled = tolower(val)
			}
			END { if (!found) flush() }
		' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f $f ]] || continue
		# deb [opts] URI SUITE COMPONENTS...
		sed -E 's/#.*//; s/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2 }'
	done
}
MIRROR=${LQ_DEBIAN_MIRROR:-$(find_mirror | head -n1)}
[[ -n $MIRROR ]] || { echo "build-debian: no apt source for suite $SUITE found on the host; set LQ_DEBIAN_MIRROR" >&2; exit 1; }
echo "build-debian: mirror $MIRROR suite $SUITE"

# ---- work area (same filesystem as OUTDIR so the final mv is atomic) --------
mkdir -p "$OUTDIR/.cache/debs"
# One build per OUTDIR at a time (the Go helper also locks, on another file).
exec 9>"$OUTDIR/.build-debian.lock"
flock 9
if up_to_date; then # someone else finished it while we waited
	echo "build-debian: $OUTDIR is up to date"
	exit 0
fi
# Work dirs left behind by a killed build (we hold the lock, so none is live).
unmount_under() { # lazily unmount anything mounted below $1 (deepest first)
	awk -v w="$1/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m" || true; done
}
for stale in "$OUTDIR"/.work-debian.*; do
	[[ -d $stale ]] || continue
	unmount_under "$stale"
	rm -rf --one-file-system "$stale"
done
WORK=$(mktemp -d "$OUTDIR/.work-debian.XXXXXX")
ROOT="$WORK/rootfs"
cleanup() {
	# debootstrap normally unmounts /proc etc. itself; be sure before rm.
	unmount_under "$WORK"
	rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

# ---- debootstrap (cached as a tarball) -----------------------------------
INCLUDE_CSV=$(IFS=,; echo "${INCLUDE[*]}")
KEY=$(printf '%s\n' "$MIRROR" "$SUITE" "$VARIANT" "$INCLUDE_CSV" | sha256sum | cut -c1-16)
ROOT_TAR="$OUTDIR/.cache/rootfs-$KEY.tar"
mkdir -p "$ROOT"
if [[ -s $ROOT_TAR ]]; then
	echo "build-debian: reusing cached rootfs $ROOT_TAR"
	tar -C "$ROOT" --numeric-owner --xattrs --xattrs-include='*' -xpf "$ROOT_TAR"
else
	echo "build-debian: debootstrap $SUITE (takes several minutes)"
	debootstrap --variant="$VARIANT" --include="$INCLUDE_CSV" \
		--cache-dir="$(readlink -f "$OUTDIR/.cache/debs")" \
		"$SUITE" "$ROOT" "$MIRROR"
	# store pristine rootfs; drop stale rootfs tarballs of other keys
	rm -f "$OUTDIR"/.cache/rootfs-*.tar
	tar -C "$ROOT" --numeric-owner --xattrs --xattrs-include='*' -cf "$ROOT_TAR.tmp" .
	mv "$ROOT_TAR.tmp" "$ROOT_TAR"
fi

# ---- customisation ------------------------------------------------------------
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

# cloud-init: only NoCloud (seed ISO "cidata" or kernel cmdline ds=nocloud), else None.
mkdir -p "$ROOT/etc/cloud/cloud.cfg.d"
cat >"$ROOT/etc/cloud/cloud.cfg.d/90-lq.cfg" <<'EOF'
# limiquantix test image: never probe cloud metadata services over the network.
datasource_list: [ NoCloud, None ]
# No locales package in the image: C.UTF-8 needs no generation.
locale: C.UTF-8
# DSA keys are obsolete and slow to make under TCG.
ssh_genkeytypes: [ rsa, ecdsa, ed25519 ]
EOF
echo 'LANG=C.UTF-8' >"$ROOT/etc/default/locale"

# Root filesystem: the whole virtio disk, no partition table.
cat >"$ROOT/etc/fstab" <<'EOF'
# <file system> <mount point> <type> <options> <dump> <pass>
LABEL=root / ext4 defaults,errors=remount-ro 0 1
EOF

# Hostname placeholder; cloud-init sets the real one from meta-data.
echo debian >"$ROOT/etc/hostname"
cat >"$ROOT/etc/hosts" <<'EOF'
127.0.0.1	localhost
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF

# Root account locked (no password login); cloud-init creates the default user.
in_root usermod -p '*' root

# Networking: only loopback statically; cloud-init writes
# /etc/network/interfaces.d/50-cloud-init (fallback: DHCP on the first NIC).
cat >"$ROOT/etc/network/interfaces" <<'EOF'
# Managed by cloud-init via /etc/network/interfaces.d/
auto lo
iface lo inet loopback

source /etc/network/interfaces.d/*
EOF
mkdir -p "$ROOT/etc/network/interfaces.d"
# dhclient (run by ifup with -1) must give up quickly when nobody answers,
# otherwise networking.service (and cloud-init.service after it) blocks ~60 s+.
if ! grep -q '^timeout ' "$ROOT/etc/dhcp/dhclient.conf"; then
	printf '\n# limiquantix: do not block boot waiting for DHCP\ntimeout 10;\nretry 10;\n' >>"$ROOT/etc/dhcp/dhclient.conf"
fi
# Cap networking.service in any case.
mkdir -p "$ROOT/etc/systemd/system/networking.service.d"
cat >"$ROOT/etc/systemd/system/networking.service.d/10-lq-timeout.conf" <<'EOF'
[Service]
TimeoutStartSec=30
EOF
# networkd is unused (ifupdown configures the NICs); make sure nothing waits on it.
in_root systemctl mask systemd-networkd-wait-online.service

# No background network traffic from timers in test guests.
for t in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer; do
	in_root systemctl disable "$t" 2>/dev/null || true
done

# SSH: host keys are per-instance. cloud-init regenerates them; as a safety net
# make ssh.service create any missing keys itself before sshd -t runs.
rm -f "$ROOT"/etc/ssh/ssh_host_*
mkdir -p "$ROOT/etc/systemd/system/ssh.service.d"
cat >"$ROOT/etc/systemd/system/ssh.service.d/10-lq-hostkeys.conf" <<'EOF'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
EOF

# qemu-guest-agent: its unit is static and pulled in by udev
# (60-qemu-guest-agent.rules: SYSTEMD_WANTS on the virtio port
# org.qemu.guest_agent.0), so there is nothing to enable; check it's wired up.
if ! grep -rqs 'qemu-guest-agent.service' "$ROOT"/lib/udev/rules.d/ "$ROOT"/usr/lib/udev/rules.d/; then
	echo "build-debian: qemu-guest-agent udev activation rule not found" >&2
	exit 1
fi

# Per-instance identity: empty machine-id is regenerated on first boot.
: >"$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"
rm -f "$ROOT/var/lib/systemd/random-seed"

# The initramfs must be able to mount root=/dev/vda: it needs virtio_blk and
# virtio_pci (MODULES=most includes them; verify rather than assume).
KVER=$(basename "$(ls -d "$ROOT"/lib/modules/*/ | sort -V | tail -n1)")
INITRD="$ROOT/boot/initrd.img-$KVER"
VMLINUZ="$ROOT/boot/vmlinuz-$KVER"
[[ -f $INITRD && -f $VMLINUZ ]] || { echo "build-debian: kernel/initrd for $KVER missing" >&2; exit 1; }
initrd_list=$(in_root lsinitramfs "/boot/initrd.img-$KVER")
for m in virtio_blk virtio_pci; do
	if ! grep -q "/$m\.ko" <<<"$initrd_list" && ! grep -qw "$m" "$ROOT/lib/modules/$KVER/modules.builtin"; then
		echo "build-debian: $m neither in initramfs nor built in" >&2
		exit 1
	fi
done

# Shrink: apt caches/lists, logs, temp files.
in_root apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin \
	"$ROOT"/var/log/*.log "$ROOT"/var/log/apt/* "$ROOT"/tmp/* "$ROOT"/var/tmp/* \
	"$ROOT"/var/lib/cloud/*
mkdir -p "$ROOT/var/lib/apt/lists/partial"

# ---- disk image -----------------------------------------------------------------
echo "build-debian: creating ext4 image ($DISK_SIZE)"
cp "$VMLINUZ" "$WORK/debian-vmlinuz"
cp "$INITRD" "$WORK/debian-initrd.img"
# -d copies the tree (owners, modes, xattrs) into the new filesystem.
mke2fs -q -F -t ext4 -L root -d "$ROOT" "$WORK/disk.raw" "$DISK_SIZE"
qemu-img convert -f raw -O qcow2 "$WORK/disk.raw" "$WORK/debian-12.qcow2"
rm -f "$WORK/disk.raw"
echo "$CMDLINE" >"$WORK/debian-cmdline"

# Publish atomically-ish: outputs first, stamp last.
rm -f "$STAMP"
for f in "${OUTPUTS[@]}"; do mv -f "$WORK/$f" "$OUTDIR/$f"; done
echo "$SELF_SUM" >"$STAMP"
echo "build-debian: done ($KVER)"
ls -l "${OUTPUTS[@]/#/$OUTDIR/}"
