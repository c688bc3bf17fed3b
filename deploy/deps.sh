#!/usr/bin/env bash
# Installs what lqd and its test suite need on a Debian 12 host. Idempotent: packages
# already present are not fetched again. Run as root.
set -euo pipefail

# What lqd needs at run time.
RUNTIME=(qemu-system-x86 qemu-utils iproute2 dnsmasq-base nftables iptables)
# What the test suite needs: the test-guest builders (tiny: kernel + busybox initramfs;
# debian: debootstrap into an ext4 image) and the tools the tests drive.
TEST=(debootstrap busybox-static kmod cpio e2fsprogs gzip xz-utils zstd ca-certificates curl
	openssh-client iputils-ping netcat-openbsd prometheus chromium)

want=("${RUNTIME[@]}")
if [[ "${1:-}" == "--test" ]]; then
	want+=("${TEST[@]}")
fi

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ "${1:-}" == "--test" ]] && ! command -v npm >/dev/null 2>&1; then
	# The web UI's build and tests need Node.js 20.19+ (Debian 12's own nodejs is 18).
	echo "deps: npm not found; install Node.js 20 (the UI build and its tests need it)" >&2
	exit 1
fi

if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	echo "deps: Go is at /usr/local/go/bin; add it to PATH" >&2
fi
