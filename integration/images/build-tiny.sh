#!/usr/bin/env bash
# build-tiny.sh OUTDIR
#
# Builds the "tiny" test guest for limiquantix integration tests:
#
#   OUTDIR/vmlinuz     Debian linux-image-cloud-amd64 kernel (bzImage)
#   OUTDIR/initrd.gz   gzip'd newc cpio: static busybox + virtio/ACPI modules.
#                      Runs entirely from the initramfs (no root disk needed).
#
# Guest behaviour (boot with -append "console=ttyS0 [hostname=NAME]"):
#   * loads virtio_pci/net/blk/console/scsi/balloon/rng, button, evdev;
#   * hostname from hostname= on the kernel cmdline, else "tiny";
#   * lo up; udhcpc on every eth* (never blocks boot more than ~3 s);
#   * busybox acpid: ACPI power button (QMP system_powerdown) -> poweroff;
#   * prints "LQ-TINY-BOOTED" on the console when userspace is up;
#   * root shell on ttyS0, respawned by busybox init; poweroff/reboot work.
#
# Nothing is installed on the host: the kernel and busybox-static packages are
# fetched with `apt-get download` (host apt sources; `apt-get update` must have
# been run) into a temp dir and unpacked with dpkg-deb -x.
#
# Cached: if the outputs exist and OUTDIR/.tiny.stamp holds this script's
# sha256, exit 0 immediately. Needs: apt-get, dpkg-deb, depmod/modprobe (kmod),
# cpio, gzip; xz/zstd only if the kernel ships compressed modules.
set -euo pipefail

OUTDIR=${1:?usage: build-tiny.sh OUTDIR}
KERNEL_META=linux-image-cloud-amd64
# Modules to load at boot (dependencies are resolved automatically).
MODULES=(virtio_pci virtio_net virtio_blk virtio_console virtio_scsi sd_mod
	virtio_balloon virtio_rng button evdev)

SELF=$(readlink -f "${BASH_SOURCE[0]}")
SELF_SUM=$(sha256sum "$SELF" | cut -d' ' -f1)
STAMP="$OUTDIR/.tiny.stamp"

# ---- cache check ------------------------------------------------------------
if [[ -f $STAMP && $(cat "$STAMP") == "$SELF_SUM" && -s $OUTDIR/vmlinuz && -s $OUTDIR/initrd.gz ]]; then
	echo "build-tiny: $OUTDIR is up to date"
	exit 0
fi

for tool in apt-get apt-cache dpkg-deb depmod modprobe cpio gzip find sort; do
	command -v "$tool" >/dev/null || { echo "build-tiny: missing $tool" >&2; exit 1; }
done

mkdir -p "$OUTDIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lq-tiny.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ---- fetch packages -----------------------------------------------------------
# The meta package depends on exactly one versioned image package.
KPKG=$(apt-cache depends "$KERNEL_META" | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
[[ -n $KPKG ]] || { echo "build-tiny: cannot resolve $KERNEL_META (apt-get update?)" >&2; exit 1; }
echo "build-tiny: fetching $KPKG busybox-static"
APT_OPTS=()
# As root, apt drops to _apt for downloads, which cannot write our 0700 temp dir.
[[ $(id -u) == 0 ]] && APT_OPTS+=(-o APT::Sandbox::User=root)
mkdir -p "$WORK/debs"
(cd "$WORK/debs" && apt-get "${APT_OPTS[@]}" -q download "$KPKG" busybox-static)
dpkg-deb -x "$WORK"/debs/linux-image-*.deb "$WORK/kernel"
dpkg-deb -x "$WORK"/debs/busybox-static_*.deb "$WORK/busybox"

KDIR=$(ls -d "$WORK"/kernel/lib/modules/*/ 2>/dev/null || ls -d "$WORK"/kernel/usr/lib/modules/*/)
KVER=$(basename "$KDIR")
KMODROOT=$(dirname "$(dirname "$(dirname "$KDIR")")") # dir containing lib/modules
echo "build-tiny: kernel $KVER"

# ---- initramfs tree -------------------------------------------------------------
R="$WORK/root"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,var/run,var/log,mnt,lib/modules}
chmod 1777 "$R/tmp"
install -m 0755 "$WORK/busybox/bin/busybox" "$R/bin/busybox"
# Applet symlinks (what `busybox --install -s` would do, but at build time so
# /bin/sh exists before anything runs). --list-full prints paths like usr/bin/nc.
while read -r applet; do
	[[ $applet == bin/busybox ]] && continue
	mkdir -p "$R/$(dirname "$applet")"
	ln -sf /bin/busybox "$R/$applet"
done < <("$R/bin/busybox" --list-full)

# Kernel modules: resolve dependencies against the unpacked package.
depmod -b "$KMODROOT" "$KVER"
mapfile -t MODFILES < <(
	for m in "${MODULES[@]}"; do
		modprobe --show-depends -d "$KMODROOT" -S "$KVER" "$m" | awk '$1 == "insmod" { print $2 }'
	done | awk '!seen[$0]++'
)
for f in "${MODFILES[@]}"; do
	rel=${f#"$KDIR"}
	dst="$R/lib/modules/$KVER/$rel"
	mkdir -p "$(dirname "$dst")"
	# busybox modprobe/insmod cannot read compressed modules: store plain .ko.
	case $f in
	*.ko.xz) xz -dc "$f" >"${dst%.xz}" ;;
	*.ko.zst) zstd -q -dc "$f" >"${dst%.zst}" ;;
	*.ko.gz) gzip -dc "$f" >"${dst%.gz}" ;;
	*) cp "$f" "$dst" ;;
	esac
done
cp "$KDIR"/modules.builtin* "$KDIR"/modules.order "$R/lib/modules/$KVER/" 2>/dev/null || true
depmod -b "$R" "$KVER"
printf '%s\n' "${MODULES[@]}" >"$R/etc/modules"

# /init: minimal mounts, then busybox init (which reads /etc/inittab).
cat >"$R/init" <<'EOF'
#!/bin/sh
# limiquantix tiny guest: PID 1 entry point of the initramfs.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
exec /bin/busybox init
EOF
chmod 0755 "$R/init"

cat >"$R/etc/inittab" <<'EOF'
# busybox init: sysinit runs to completion before the shell starts.
::sysinit:/etc/init.d/rcS
# Interactive root login shell on the serial console, respawned on exit
# (init opens ttyS0 after setsid(), so it becomes the controlling tty).
ttyS0::respawn:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/init.d/rcK
EOF

mkdir -p "$R/etc/init.d"
cat >"$R/etc/init.d/rcS" <<'EOF'
#!/bin/sh
# limiquantix tiny guest: system initialisation (run once by busybox init).
export PATH=/sbin:/usr/sbin:/bin:/usr/bin

# Drivers (virtio, ACPI power button -> input event device).
while read -r m; do modprobe "$m" 2>/dev/null || echo "tiny: modprobe $m failed"; done </etc/modules

# Hostname: hostname=NAME on the kernel command line, else "tiny".
name=tiny
for arg in $(cat /proc/cmdline); do
	case $arg in hostname=?*) name=${arg#hostname=} ;; esac
done
hostname "$name"
echo "$name" >/etc/hostname
echo "127.0.0.1 localhost $name" >/etc/hosts

# ACPI: power button (QMP system_powerdown) runs /etc/acpi/PWRF/00000080.
# (busybox acpid logs to /var/log/acpid.log and exits if it cannot open it.)
acpid -l /var/log/acpid.log

# Network: loopback, then DHCP on every ethN. udhcpc -b goes to the
# background after ~3 s without a lease, so boot is never blocked for long;
# all NICs are tried in parallel.
ip link set lo up
for dev in /sys/class/net/eth*; do
	[ -e "$dev" ] || continue
	i=${dev##*/}
	ip link set "$i" up
	udhcpc -i "$i" -b -t 3 -T 1 -A 5 -p "/run/udhcpc.$i.pid" \
		-x hostname:"$name" -s /etc/udhcpc/default.script >/dev/null 2>&1 &
done
wait

echo "LQ-TINY-BOOTED"
EOF
cat >"$R/etc/init.d/rcK" <<'EOF'
#!/bin/sh
# limiquantix tiny guest: shutdown (busybox init, on poweroff/reboot).
echo "LQ-TINY-SHUTDOWN"
sync
umount -a -r 2>/dev/null
true
EOF
chmod 0755 "$R/etc/init.d/rcS" "$R/etc/init.d/rcK"

mkdir -p "$R/etc/acpi/PWRF"
cat >"$R/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
# busybox acpid: KEY_POWER from the ACPI button driver -> clean poweroff.
echo "LQ-TINY-POWERBUTTON" >/dev/console
exec /sbin/poweroff
EOF
chmod 0755 "$R/etc/acpi/PWRF/00000080"

mkdir -p "$R/etc/udhcpc"
cat >"$R/etc/udhcpc/default.script" <<'EOF'
#!/bin/sh
# udhcpc event script: configure address, default route and resolv.conf.
case $1 in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound | renew)
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast "$broadcast"} dev "$interface"
	if [ -n "$router" ]; then
		while ip route del default dev "$interface" 2>/dev/null; do :; done
		for r in $router; do
			ip route add default via "$r" dev "$interface" && break
		done
	fi
	: >/etc/resolv.conf
	[ -n "$domain" ] && echo "search $domain" >>/etc/resolv.conf
	for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
	echo "LQ-TINY-DHCP $interface $ip" >/dev/console
	;;
esac
exit 0
EOF
chmod 0755 "$R/etc/udhcpc/default.script"

cat >"$R/etc/passwd" <<'EOF'
root::0:0:root:/root:/bin/sh
EOF
cat >"$R/etc/group" <<'EOF'
root:x:0:
EOF
cat >"$R/etc/profile" <<'EOF'
export PATH=/sbin:/usr/sbin:/bin:/usr/bin HOME=/root
PS1='\h:\w# '
EOF
echo /bin/sh >"$R/etc/shells"

# ---- outputs --------------------------------------------------------------------------
# newc cpio, root-owned, sorted for reproducibility; gzip -9n for stable bytes.
(cd "$R" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) |
	gzip -9n >"$WORK/initrd.gz"
cp "$WORK"/kernel/boot/vmlinuz-"$KVER" "$WORK/vmlinuz"

rm -f "$STAMP"
mv -f "$WORK/vmlinuz" "$OUTDIR/vmlinuz"
mv -f "$WORK/initrd.gz" "$OUTDIR/initrd.gz"
echo "$SELF_SUM" >"$STAMP"
echo "build-tiny: done ($KVER)"
ls -l "$OUTDIR/vmlinuz" "$OUTDIR/initrd.gz"
