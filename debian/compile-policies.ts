// Compiles every built-in policy with its manifest's default tunables ahead of time (BPF CO-RE,
// against the sandbox kernel's vmlinux.h) with the daemon's own compiler, so the package ships
// the objects under the same content hashes the daemon computes:
//   OUT_DIR/objects/<hash>.bpf.o, and OUT_DIR/index.json listing name, hash, ops name, object.
//   node debian/compile-policies.ts OUT_DIR VMLINUX_H
import { rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { builtinCatalogue } from "../src/policies/catalogue.ts";
import { PolicyCompiler } from "../src/policies/compile.ts";

const [outDir, vmlinuxH] = process.argv.slice(2);
if (!outDir || !vmlinuxH) {
  process.stderr.write("usage: node debian/compile-policies.ts OUT_DIR VMLINUX_H\n");
  process.exit(2);
}
// Absolute: the compiler runs clang inside a work directory under the cache.
const compiler = new PolicyCompiler({ cacheDir: resolve(outDir), vmlinuxH });
const index = [];
for (const policy of builtinCatalogue()) {
  const built = await compiler.compile(policy);
  index.push({
    name: policy.manifest.name,
    hash: built.ref.hash,
    opsName: built.opsName,
    object: `objects/${built.ref.hash}.bpf.o`,
  });
  process.stderr.write(`compiled ${policy.manifest.name} -> ${built.ref.hash.slice(0, 12)}\n`);
}
// The compiler may link vmlinux.h in under the cache; that link points into the build machine.
rmSync(join(outDir, "include"), { recursive: true, force: true });
writeFileSync(join(outDir, "index.json"), `${JSON.stringify(index, null, 2)}\n`);
