#!/usr/bin/env bash
# Builds the Debian bookworm root filesystem image that the packaging VM test boots with systemd
# as PID 1: debootstrap (minbase) + systemd, dbus, bpftool >= 7.5 from bookworm-backports, jq for
# the test's JSON lines, a non-root user "tester", and a one-shot unit that runs the test payload
# from a second disk (/dev/vdb, ext4, holding run.sh) on the serial console, then powers off.
#
# It boots on the sandbox kernel with src/sandbox/rootdisk.ts's initrd (which loads virtio_blk).
#
# Cached under $SCHEDCTL_CACHE_DIR (default ~/.cache/schedctl)/vm-rootfs/KEY/, KEY being a hash of
# this script (which holds the package list): editing it builds a new image (older ones are
# removed). Prints the image's path on stdout. Needs root (debootstrap, chroot).
set -euo pipefail

CACHE="${SCHEDCTL_CACHE_DIR:-$HOME/.cache/schedctl}"
MIRROR="${SCHEDCTL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
# adduser and libatomic1 are what the schedctl package needs beyond minbase, besides bpftool.
PACKAGES=systemd,systemd-sysv,dbus,adduser,libatomic1,libstdc++6,procps,jq
BACKPORTS_PACKAGES=(bpftool)
IMAGE_SIZE=3G
say() { printf '[build-rootfs] %s\n' "$*" >&2; }

key="$(sha256sum "$0" | cut -c1-16)"
out="$CACHE/vm-rootfs/$key"
image="$out/rootfs.img"

[ "$(id -u)" -eq 0 ] || { say "must run as root (debootstrap, chroot, mke2fs -d keeping owners)"; exit 1; }

if [ -f "$image" ] && [ -f "$out/done" ]; then
  echo "$image"
  exit 0
fi
command -v debootstrap >/dev/null || { say "debootstrap is missing: run scripts/setup.sh"; exit 1; }
command -v mke2fs >/dev/null || { say "mke2fs is missing: apt-get install e2fsprogs"; exit 1; }

mkdir -p "$out"
work="$(mktemp -d "$out/build.XXXXXX")"
dir="$work/root"
cleanup() {
  for m in proc dev; do
    if mountpoint -q "$dir/$m" 2>/dev/null; then umount -l "$dir/$m"; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

start=$SECONDS
say "debootstrap $SUITE ($PACKAGES)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$dir" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2
  exit 1
}
say "debootstrap took $((SECONDS - start)) s"

mount -t proc proc "$dir/proc"
mount --bind /dev "$dir/dev"
cp /etc/resolv.conf "$dir/etc/resolv.conf"
in_root() { chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

# bookworm's bpftool 7.1 cannot register struct_ops links; backports carries 7.5.
cat >"$dir/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-backports main
EOF
say "installing ${BACKPORTS_PACKAGES[*]} from $SUITE-backports"
in_root apt-get update -qq >&2
in_root apt-get install -y -qq --no-install-recommends -t "$SUITE-backports" "${BACKPORTS_PACKAGES[@]}" >&2
in_root bpftool version >&2

in_root useradd --create-home --shell /bin/bash tester
echo schedctl-vm >"$dir/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 schedctl-vm\n' >"$dir/etc/hosts"
tr -d '-' </proc/sys/kernel/random/uuid >"$dir/etc/machine-id"
# One boot is one test: a volatile journal is enough and spares the emulated disk.
mkdir -p "$dir/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' >"$dir/etc/systemd/journald.conf.d/vm.conf"

# The payload runner: mounts the second disk and runs its run.sh with output on the console.
cat >"$dir/usr/local/sbin/vm-payload" <<'EOF'
#!/bin/sh
exec >/dev/ttyS0 2>&1
mkdir -p /mnt/payload
if mount -o ro /dev/vdb /mnt/payload; then
  sh /mnt/payload/run.sh
  echo "SCHEDCTL-EXIT $?"
else
  echo "vm-payload: no payload disk (/dev/vdb)"
fi
sync
systemctl poweroff --force --force
EOF
chmod 755 "$dir/usr/local/sbin/vm-payload"
cat >"$dir/etc/systemd/system/vm-payload.service" <<'EOF'
[Unit]
Description=Run the test payload from /dev/vdb
After=multi-user.target dbus.service systemd-journald.service
Wants=dbus.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/vm-payload
StandardInput=null

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/vm-payload.service "$dir/etc/systemd/system/multi-user.target.wants/vm-payload.service"
# Nothing to log in on, and timers that would wake apt in an offline VM.
for unit in serial-getty@ttyS0.service getty@tty1.service apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-timesyncd.service; do
  ln -sf /dev/null "$dir/etc/systemd/system/$unit"
done

in_root apt-get clean
rm -rf "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/locale/*
: >"$dir/etc/resolv.conf"
umount "$dir/dev" "$dir/proc"

say "making the ext4 image"
truncate -s "$IMAGE_SIZE" "$work/rootfs.img"
mke2fs -q -t ext4 -L schedroot -d "$dir" "$work/rootfs.img"
mv "$work/rootfs.img" "$image"
touch "$out/done"
find "$CACHE/vm-rootfs" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
say "done in $((SECONDS - start)) s: $image"
echo "$image"
