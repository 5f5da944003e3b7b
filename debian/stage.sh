#!/bin/sh
# Stages what becomes /usr/lib/schedctl: the compiled JavaScript (laid out like the checkout, so
# paths relative to src/ such as ../../bpf resolve the same), the production node_modules built
# against the bundled runtime, that runtime, and the built-in policies compiled ahead of time.
#   debian/stage.sh STAGE_DIR NODE_DIR
set -eu
stage="$1"
node_dir="$2"
app="$stage/app"
rm -rf "$stage"
mkdir -p "$app/node/bin"

echo "stage: JavaScript" >&2
tsc -p debian/tsconfig.build.json --outDir "$app"
cp -r bpf "$app/bpf"
cp -r days "$app/days"
find "$app/bpf" -name '*.o' -delete

echo "stage: production node_modules against $(node --version)" >&2
cp package.json package-lock.json "$app/"
(cd "$app" && npm ci --omit=dev --no-audit --no-fund --prefer-offline --loglevel=error)
# Only what runs on linux-x64: prebuilt addons for other systems, the addons' build trees and
# sources, node-gyp (usocket lists the build tool as a run-time dependency), and the packages'
# tests, examples, documents, type declarations and lint settings go.
nm="$app/node_modules"
find "$nm" -path '*/prebuilds/*' ! -path '*/prebuilds/linux-x64*' -prune -exec rm -rf {} +
for addon in $(find "$nm" -name binding.gyp -printf '%h\n'); do
  [ -d "$addon/build" ] || continue
  find "$addon/build" -mindepth 1 ! -path "$addon/build/Release" ! -path "$addon/build/Release/*.node" \
    -prune -exec rm -rf {} +
done
rm -rf "$nm/node-gyp" "$nm/better-sqlite3/deps" "$nm/better-sqlite3/src"
find "$nm" -type d \( -name test -o -name tests -o -name example -o -name examples -o -name docs \
  -o -name .github -o -name .husky -o -name benchmark -o -name benchmarks \) -prune -exec rm -rf {} +
find "$nm" -type f \( -name '.eslintrc*' -o -name .npmignore -o -name .gitattributes -o -name '*.d.ts' \
  -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.md' -o -name '*.html' \
  -o -name '*.gyp' -o -name '*.gypi' -o -name '*.py' -o -name '*.bat' -o -name '*.sh' \) -delete
rm -f "$app/package-lock.json"
# Entry points run through the bundled node (the wrappers, require/import), never through a
# "#!/usr/bin/env node" line, which would look for a system Node the package does not depend on.
# Without that line they are no longer scripts: not executable either.
for script in $(grep -rlI -m1 '^#!' "$app/src" "$nm"); do
  sed -i '1{/^#!/d}' "$script"
  chmod a-x "$script"
done

echo "stage: Node runtime $(node --version)" >&2
cp "$node_dir/bin/node" "$app/node/bin/node"
cp "$node_dir/LICENSE" "$app/node/LICENSE"

echo "stage: built-in policies (CO-RE, against ${SCHEDCTL_VMLINUX_H:?SCHEDCTL_VMLINUX_H must name a vmlinux.h})" >&2
node debian/compile-policies.ts "$app/prebuilt" "$SCHEDCTL_VMLINUX_H"
