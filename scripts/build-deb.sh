#!/usr/bin/env bash
# Builds schedctl_VERSION_amd64.deb with dpkg-buildpackage -b, in a copy of the checkout (tracked
# and untracked-but-not-ignored files), so dh_clean never walks the working tree. Prints the path
# of the .deb on stdout.
#   scripts/build-deb.sh [--out DIR] [--lintian]
# DIR defaults to .cache/deb in the checkout. Needs scripts/setup.sh to have run (Node runtime,
# npm dependencies, debhelper, clang, bpftool) and the sandbox kernel's vmlinux.h (fetched and
# cached on first use).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
out="$ROOT/.cache/deb"
lintian=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --lintian) lintian=1; shift ;;
    *) echo "usage: scripts/build-deb.sh [--out DIR] [--lintian]" >&2; exit 2 ;;
  esac
done
say() { printf '[build-deb] %s\n' "$*" >&2; }

node_dir="$(readlink -f "$ROOT/.cache/node")"
[ -x "$node_dir/bin/node" ] || { say "no Node runtime at .cache/node: run scripts/setup.sh"; exit 1; }
export PATH="$node_dir/bin:$PATH"
vmlinux_h="$(node "$ROOT/src/sandbox/kernel-image.ts" | node -e \
  'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).vmlinuxH))')"

version="$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)"
work="$(mktemp -d /tmp/schedctl-deb.XXXXXX)"
trap 'rm -rf "$work"' EXIT
src="$work/schedctl-$version"
mkdir -p "$src"
(cd "$ROOT" && git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$src" 2>/dev/null) || {
  say "cannot copy the checkout (is $ROOT a git checkout?)"
  exit 1
}
# Only the compiler and type definitions are needed from the development dependencies.
ln -s "$ROOT/node_modules" "$src/node_modules"

start=$SECONDS
say "dpkg-buildpackage -b ($version)"
(cd "$src" && NODE_DIR="$node_dir" SCHEDCTL_VMLINUX_H="$vmlinux_h" \
  dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) || {
  tail -40 "$work/build.log" >&2
  exit 1
}
deb="schedctl_${version}_amd64.deb"
mkdir -p "$out"
mv "$work/$deb" "$out/$deb"
say "built $out/$deb in $((SECONDS - start)) s"
if [ $lintian -eq 1 ]; then
  lintian --info --display-info --pedantic "$out/$deb" >&2 || say "lintian reported errors"
fi
echo "$out/$deb"
